"""The bottom floor: the API's shared vocabulary, as k8s.io/apimachinery is kube's.

The group and version served, ``ApiError`` and ``metav1.Status`` (:mod:`.errors`), what a
handler is given and gives back (:mod:`.contract`), a kind's declaration and its strategies
(:mod:`.kind`, :mod:`.strategy`), watch events (:mod:`.watch`), selectors, the structural
schema, object metadata, Table columns, patch formats and query parameters.

Imports: only the standard library, libraries, and ``store`` for the types of stored rows and
changes. Everything above may import it: the kinds and the generic verbs in ``handlers``, and
the front door in ``proxy``. Nothing of the front door lives here.
"""

GROUP = "search.task.example.example.com"
VERSION = "v1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
