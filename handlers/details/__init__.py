"""details: the tutorial's search (part 3), ``GET .../details?q=<query>``, over the cluster's
Tasks and this server's CustomTasks and ClusterTasks (the index: :mod:`store.fulltext`, the
query language: :mod:`store.search`, the Task indexer: :mod:`k8s.taskindex`).

A resource without a kind, as the tutorial lists it: ``get`` on its collection path. Its
answer is the tutorial's plain text (the matching keys joined by commas) for every client that
accepts text, a ``SearchHitList`` of hits (:mod:`.hits`) for one that asks for JSON, or a Table.
"""

from handlers.api.kind import Kind
from handlers.details.hits import COLUMNS, key

KIND = Kind(
    plural="details",
    singular="",
    kind="",
    namespaced=False,
    description=(
        "Full-text search of the details of Tasks (example.example.com/v1), CustomTasks and "
        "ClusterTasks: GET with ?q=<query>."
    ),
    spec_schema={},
    columns=COLUMNS,
    categories=(),
    list_name="SearchHitList",
    plain=key,
)
