"""A request's label and field selectors as the store-side filter of rows (list, watch and
deletecollection select alike), and the term of them an index can answer (list)."""

from __future__ import annotations

from handlers.api.contract import ApiRequest
from handlers.api.selectors import parse_field_selector, parse_label_selector
from store import FIELD, LABEL, Predicate, Row, Term


def matcher(request: ApiRequest) -> Predicate | None:
    """The filter for the request's selectors (400 when one is bad), or None when they select
    everything."""
    labels = parse_label_selector(request.param("labelSelector"))
    fields = parse_field_selector(request.param("fieldSelector"), request.kind.field_selectors)
    if not labels.requirements and not fields.requirements:
        return None

    def match(row: Row) -> bool:
        if labels.requirements and not labels.matches(row.labels()):
            return False
        values = {**row.fields(), "metadata.name": row.name, "metadata.namespace": row.namespace}
        return fields.matches(lambda field: values.get(field, ""))

    return match


def narrowing(request: ApiRequest) -> Term | None:
    """The selector term the store's terms index answers best, if any: a label pinned to one
    value, else a selectable field pinned to one, else a label pinned to a few (``in``).
    Negations and existence match too many objects for an index to save anything."""
    labels = parse_label_selector(request.param("labelSelector"))
    fields = parse_field_selector(request.param("fieldSelector"), request.kind.field_selectors)
    pinned = [r for r in labels.requirements if r.operator in ("=", "in")]
    candidates = [Term(LABEL, r.key, r.values) for r in pinned if len(r.values) == 1]
    candidates += [
        Term(FIELD, r.field, (r.value,))
        for r in fields.requirements
        if not r.negated and r.field in request.kind.selectable_fields
    ]
    candidates += [Term(LABEL, r.key, tuple(sorted(set(r.values)))) for r in pinned]
    return candidates[0] if candidates else None
