"""Admission webhooks, as k8s.io/apiserver's MutatingAdmissionWebhook and
ValidatingAdmissionWebhook plugins call them for the cluster's webhook configurations
(admissionregistration.k8s.io/v1): matched by ``rules``, ``namespaceSelector``,
``objectSelector`` and ``matchConditions``; mutating ones one after another, each patch
applied before the next is called (and those that ask re-invoked once when a later one
changed the object); validating ones all at once. A refusal is the webhook's Status, a
webhook that gives no usable answer does what its ``failurePolicy`` says.

Our kinds are not webhook configurations, so the rule that a webhook is never called for
writes of webhook configurations has nothing to apply to here."""

from __future__ import annotations

import base64
import dataclasses
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
import orjson

from handlers.admission.calls import Caller, CallFailed, Endpoint, new_uid, version_for
from handlers.admission.cel.expressions import Context
from handlers.admission.matching import Match, Rule
from handlers.admission.policies import Check, Failure
from handlers.admission.requests import RequestAuthorizer, request_of
from handlers.api.admission import DELETE, Attributes
from handlers.api.errors import ApiError, bad_request, internal_error
from k8s.informer import Informer

log = logging.getLogger("apiserver.admission")
CALLERS = 16
"""Validating webhooks called at once, per process."""
SIDE_EFFECT_FREE = ("None", "NoneOnDryRun")


@dataclass(frozen=True, slots=True)
class Webhook:
    """One webhook of a configuration, read once per change of its configuration."""

    name: str
    endpoint: Endpoint
    match: Match
    conditions: tuple[Check, ...]
    fails: bool
    side_effect_free: bool
    timeout_seconds: int | None
    version: str | None
    reinvoked: bool

    @classmethod
    def of(cls, hook: Mapping[str, Any]) -> Webhook:
        name = str(hook.get("name", ""))
        return cls(
            name,
            Endpoint.of(hook.get("clientConfig") or {}),
            Match(
                tuple(Rule.of(rule) for rule in hook.get("rules") or ()),
                (),
                hook.get("namespaceSelector"),
                hook.get("objectSelector"),
                rules_required=True,
            ),
            tuple(
                Check.of(c.get("expression", ""), f"matchConditions[{n}].expression")
                for n, c in enumerate(hook.get("matchConditions") or [])
            ),
            (hook.get("failurePolicy") or "Fail") == "Fail",
            hook.get("sideEffects") in SIDE_EFFECT_FREE,
            hook.get("timeoutSeconds"),
            version_for(list(hook.get("admissionReviewVersions") or [])),
            hook.get("reinvocationPolicy") == "IfNeeded",
        )

    def applies(self, attributes: Attributes, namespace: Mapping[str, Any] | None) -> bool:
        """Whether the write is this webhook's: its rules and selectors, then its
        conditions (an error in them is a failed call)."""
        if not self.match.matches(attributes, namespace):
            return False
        if not self.conditions:
            return True
        context = Context(
            object=attributes.object,
            oldObject=attributes.old_object,
            request=request_of(attributes),
            params=None,
            namespaceObject=None,
            authorizer=RequestAuthorizer(attributes.authorize),
            variables={},
        )
        try:
            return all(c.evaluate(context) is True for c in self.conditions)
        except Failure as failure:
            raise CallFailed(self.name, f"failed to evaluate match conditions: {failure}") from None


@dataclass(slots=True)
class Outcome:
    """What the webhooks said of one write."""

    warnings: list[str] = field(default_factory=list)
    refusal: ApiError | None = None


class Webhooks:
    """The webhooks of one kind of configuration, as last listed and watched."""

    def __init__(self, configurations: Informer, namespaces: Informer, caller: Caller) -> None:
        self._configurations = configurations
        self._namespaces = namespaces
        self._caller = caller
        self._index: tuple[int, tuple[Webhook, ...]] = (-1, ())
        self._lock = threading.Lock()

    def matching(self, attributes: Attributes) -> list[Webhook]:
        """The webhooks the write is for, in kube's order (configurations by name)."""
        hooks = self._webhooks()
        if not hooks:
            return []
        namespace = self._namespaces.get("", attributes.namespace) if attributes.namespace else None
        found = []
        for hook in hooks:
            try:
                if hook.applies(attributes, namespace):
                    found.append(hook)
            except CallFailed as failed:
                _failed(hook, failed)  # raises when the webhook fails closed
        return found

    def call(self, hook: Webhook, attributes: Attributes, outcome: Outcome) -> dict[str, Any]:
        """The webhook's response (empty when it failed open); its refusal and warnings go
        to ``outcome``."""
        if attributes.dry_run and not hook.side_effect_free:
            raise bad_request(f'admission webhook "{hook.name}" does not support dry run')
        try:
            if hook.version is None:
                raise CallFailed(
                    hook.name, "webhook does not accept known AdmissionReview versions"
                )
            request = {
                **request_of(attributes),
                "uid": new_uid(),
                "object": attributes.object,
                "oldObject": attributes.old_object,
            }
            response = self._caller.review(
                hook.name,
                hook.endpoint,
                request,
                hook.timeout_seconds,
                hook.version,
                attributes.deadline,
            )
        except CallFailed as failed:
            _failed(hook, failed)
            return {}
        outcome.warnings += [str(w) for w in response.get("warnings") or []]
        for key, value in (response.get("auditAnnotations") or {}).items():
            attributes.annotate(f"{hook.name}/{key}", str(value))
        if response.get("allowed") is not True and outcome.refusal is None:
            outcome.refusal = refusal(hook.name, response.get("status"))
        return response

    def _webhooks(self) -> tuple[Webhook, ...]:
        generation = self._configurations.generation
        index = self._index
        if index[0] == generation:
            return index[1]
        with self._lock:
            configurations = sorted(
                self._configurations.items(), key=lambda c: c["metadata"]["name"]
            )
            hooks = tuple(
                Webhook.of(hook) for c in configurations for hook in c.get("webhooks") or []
            )
            self._index = (generation, hooks)
            return hooks


def _failed(hook: Webhook, failed: CallFailed) -> None:
    """failurePolicy: Fail refuses the write (500, kube's words); Ignore lets it through."""
    if hook.fails:
        raise internal_error(str(failed))
    log.warning("%s: failing open (failurePolicy: Ignore)", failed)


def refusal(name: str, status: Any) -> ApiError:
    """kube's ToStatusErr: the webhook's own Status, its message prefixed with who denied,
    and never a code below 400."""
    status = status if isinstance(status, dict) else {}
    denied = f'admission webhook "{name}" denied the request'
    if status.get("message"):
        message = f"{denied}: {status['message']}"
    elif status.get("reason"):
        message = f"{denied}: {status['reason']}"
    else:
        message = f"{denied} without explanation"
    code = status.get("code") if isinstance(status.get("code"), int) else 0
    return ApiError(
        code if code >= 400 else 403,
        str(status.get("reason") or ""),
        message,
        status.get("details") if isinstance(status.get("details"), dict) else None,
    )


class ValidatingWebhooks:
    """ValidatingAdmissionWebhook: every matching webhook called at once."""

    def __init__(self, webhooks: Webhooks) -> None:
        self._webhooks = webhooks
        self._pool = ThreadPoolExecutor(CALLERS, thread_name_prefix="validating-webhook")

    def validate(self, attributes: Attributes) -> tuple[str, ...]:
        hooks = self._webhooks.matching(attributes)
        if not hooks:
            return ()
        outcomes = [Outcome() for _ in hooks]
        calls = [
            self._pool.submit(self._webhooks.call, hook, attributes, outcome)
            for hook, outcome in zip(hooks[1:], outcomes[1:], strict=True)
        ]
        self._webhooks.call(hooks[0], attributes, outcomes[0])  # the first on this thread
        for call in calls:
            call.result()
        warnings = [w for outcome in outcomes for w in outcome.warnings]
        for outcome in outcomes:  # the first refusal in the webhooks' order
            if outcome.refusal is not None:
                raise outcome.refusal
        return tuple(warnings)


class MutatingWebhooks:
    """MutatingAdmissionWebhook: matching webhooks called in order, each seeing the object
    as the ones before it patched it; those with ``reinvocationPolicy: IfNeeded`` are called
    once more when a later one changed the object after them."""

    def __init__(self, webhooks: Webhooks) -> None:
        self._webhooks = webhooks

    def mutate(self, attributes: Attributes) -> tuple[Attributes, tuple[str, ...]]:
        hooks = self._webhooks.matching(attributes)
        if not hooks:
            return attributes, ()
        outcome = Outcome()
        changes = 0
        seen: dict[str, int] = {}  # webhook -> the changes made before it was called
        for hook in hooks:
            seen[hook.name] = changes
            attributes, changed = self._call(hook, attributes, outcome)
            changes += changed
        again = [h for h in hooks if h.reinvoked and seen[h.name] < changes and changes]
        for hook in again:
            attributes, _ = self._call(hook, attributes, outcome)
        return attributes, tuple(outcome.warnings)

    def _call(
        self, hook: Webhook, attributes: Attributes, outcome: Outcome
    ) -> tuple[Attributes, bool]:
        """The write as the webhook leaves it, and whether it changed it."""
        response = self._webhooks.call(hook, attributes, outcome)
        if outcome.refusal is not None:
            raise outcome.refusal
        patch = response.get("patch")
        if not patch or attributes.operation == DELETE or attributes.object is None:
            return attributes, False
        try:
            if response.get("patchType") != "JSONPatch":
                raise ValueError(f"unsupported patch type {response.get('patchType')!r}")
            operations = orjson.loads(base64.b64decode(patch))
            patched = jsonpatch.apply_patch(attributes.object, operations)
        except (
            ValueError,
            TypeError,
            jsonpatch.JsonPatchException,
            jsonpatch.JsonPointerException,
        ) as error:
            _failed(hook, CallFailed(hook.name, f"received invalid webhook response: {error}"))
            return attributes, False
        if patched == attributes.object:
            return attributes, False
        return dataclasses.replace(attributes, object=patched), True
