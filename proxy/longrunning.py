"""Which requests are long-running, and so free of the in-flight limit and the request timeout.

kube's generic API servers count only the ``watch`` verb (``BasicLongRunningRequestCheck`` with
the verbs {watch} and no subresources, the default of k8s.io/apiserver's server config);
kube-apiserver adds ``proxy`` and the exec/attach/log/portforward subresources, none of which
this server has. A watch holds its thread for up to an hour: counting it would starve short
requests, and cutting it at the request timeout would break every informer.
"""

from __future__ import annotations

from proxy.requestinfo import RequestInfo

LONG_RUNNING_VERBS = frozenset({"watch"})


def is_long_running(info: RequestInfo) -> bool:
    """True for a watch, however it was asked for (``?watch=true`` or ``/watch/``)."""
    return info.verb in LONG_RUNNING_VERBS
