"""The admission chain of an aggregated server, as k8s.io/apiserver's recommended options
order it (MutatingAdmissionWebhook; then NamespaceLifecycle, ValidatingAdmissionPolicy,
ValidatingAdmissionWebhook), each plugin reading the cluster through informers of this
process.

Without a cluster to read (dev, with no kubeconfig setting), there is no chain: see
:data:`handlers.api.admission.NO_ADMISSION`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Protocol

from prometheus_client import Counter, Histogram

from handlers.admission.calls import Caller
from handlers.admission.lifecycle import NamespaceLifecycle
from handlers.admission.policies import ValidatingAdmissionPolicy
from handlers.admission.webhooks import MutatingWebhooks, ValidatingWebhooks, Webhooks
from handlers.api.admission import Attributes
from handlers.api.errors import ApiError
from k8s import paths
from k8s.client import Cluster
from k8s.informer import Informer


class Mutating(Protocol):
    def mutate(self, attributes: Attributes) -> tuple[Attributes, tuple[str, ...]]:
        """The write as the plugin leaves it, and the warnings to send; raises the refusal."""
        ...


class Validating(Protocol):
    def validate(self, attributes: Attributes) -> tuple[str, ...]:
        """The warnings to send; raises the refusal."""
        ...


DURATION = Histogram(
    "task_search_admission_duration_seconds",
    "Time each admission plugin took, by plugin, operation, type (admit or validate) and "
    "whether it refused the write.",
    ("plugin", "operation", "type", "rejected"),
    buckets=(0.005, 0.025, 0.1, 0.5, 1.0, 2.5),  # kube's admission controller buckets
)
REFUSALS = Counter(
    "task_search_admission_refusals_total",
    "Writes an admission plugin refused, by plugin, operation and type (admit or validate).",
    ("plugin", "operation", "type"),
)


class Chain:
    """Plugins run in order, each under its kube name; the first refusal ends the write."""

    def __init__(
        self,
        mutating: Sequence[tuple[str, Mutating]],
        validating: Sequence[tuple[str, Validating]],
        informers: Sequence[Informer],
    ) -> None:
        self._mutating = tuple(mutating)
        self._validating = tuple(validating)
        self._informers = tuple(informers)

    def mutate(self, attributes: Attributes) -> tuple[Attributes, tuple[str, ...]]:
        warnings: tuple[str, ...] = ()
        for name, plugin in self._mutating:
            with _measured(name, attributes.operation, "admit"):
                attributes, said = plugin.mutate(attributes)
            warnings += said
        return attributes, warnings

    def validate(self, attributes: Attributes) -> tuple[str, ...]:
        warnings: tuple[str, ...] = ()
        for name, plugin in self._validating:
            with _measured(name, attributes.operation, "validate"):
                warnings += plugin.validate(attributes)
        return warnings

    def unready(self) -> str:
        """Names the collections not listed yet (``/readyz`` fails until they are)."""
        waiting = [i.path for i in self._informers if not i.synced.is_set()]
        return f"admission has not read {', '.join(waiting)} yet" if waiting else ""


def connect(cluster: Cluster, stop: threading.Event) -> Chain:
    """The chain reading ``cluster``, its informers started (until ``stop`` is set)."""
    namespaces = Informer(cluster, paths.namespaces(), stop).start()
    policies = Informer(cluster, paths.VALIDATING_POLICIES, stop).start()
    bindings = Informer(cluster, paths.VALIDATING_POLICY_BINDINGS, stop).start()
    mutating = Informer(cluster, paths.MUTATING_WEBHOOKS, stop).start()
    validating = Informer(cluster, paths.VALIDATING_WEBHOOKS, stop).start()
    caller = Caller()
    return Chain(
        [("MutatingAdmissionWebhook", MutatingWebhooks(Webhooks(mutating, namespaces, caller)))],
        [
            ("NamespaceLifecycle", NamespaceLifecycle(namespaces, cluster)),
            (
                "ValidatingAdmissionPolicy",
                ValidatingAdmissionPolicy(policies, bindings, namespaces, cluster, stop),
            ),
            (
                "ValidatingAdmissionWebhook",
                ValidatingWebhooks(Webhooks(validating, namespaces, caller)),
            ),
        ],
        [namespaces, policies, bindings, mutating, validating],
    )


@contextlib.contextmanager
def _measured(plugin: str, operation: str, step: str) -> Iterator[None]:
    """Time one plugin's step; a refusal (the ApiError it raises) is counted as one."""
    started = time.perf_counter()
    rejected = "false"
    try:
        yield
    except ApiError:
        rejected = "true"
        REFUSALS.labels(plugin, operation, step).inc()
        raise
    finally:
        DURATION.labels(plugin, operation, step, rejected).observe(time.perf_counter() - started)
