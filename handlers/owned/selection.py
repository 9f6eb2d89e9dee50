"""A request's label and field selectors as the store-side filter of rows (list, watch and
deletecollection select alike)."""

from __future__ import annotations

from handlers.api.contract import ApiRequest
from handlers.api.selectors import parse_field_selector, parse_label_selector
from store import Predicate, Row


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
