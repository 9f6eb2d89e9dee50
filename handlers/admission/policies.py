"""ValidatingAdmissionPolicy, as k8s.io/apiserver's plugin applies the cluster's policies
(admissionregistration.k8s.io/v1) to a write: each policy whose ``matchConstraints`` match,
through each of its bindings whose ``matchResources`` match, once per parameter object;
``matchConditions``, then ``validations`` (with ``variables``), in CEL; a failed validation
does what the binding's ``validationActions`` say (Deny, Warn, Audit), an error what the
policy's ``failurePolicy`` says. Expressions are compiled once per policy generation."""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from handlers.admission.cel import expressions
from handlers.admission.cel.expressions import CompileError, Context, EvaluationError, Expression
from handlers.admission.matching import Match, selects
from handlers.admission.requests import RequestAuthorizer, request_of
from handlers.api.admission import Attributes
from handlers.api.errors import ApiError
from k8s import paths
from k8s.client import Cluster, ClusterError
from k8s.informer import Informer

REASON_CODES = {"Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413, "Invalid": 422}
"""The reasons a validation may give, and the code each answers with (kube's reasonToCode)."""
log = logging.getLogger("apiserver.admission")
AUDIT_KEY = "validation.policy.admission.k8s.io/validation_failure"
PARAM_SYNC_SECONDS = 2.0
EXPRESSIONS = (
    ("matchConditions", "expression"),
    ("variables", "expression"),
    ("validations", "expression"),
    ("validations", "messageExpression"),
    ("auditAnnotations", "valueExpression"),
)
"""Where a policy holds CEL."""
_BOUND = re.compile(r"\b(oldObject|request|params|namespaceObject|authorizer)\b")


@dataclass(frozen=True, slots=True)
class Check:
    """An expression compiled, or why it could not be (kube's "compilation error: ...")."""

    text: str
    field: str
    """Where the policy holds it (``spec.validations[0].expression``)."""
    compiled: Expression | None
    error: str = ""

    @classmethod
    def of(cls, text: str, field: str) -> Check:
        try:
            return cls(text, field, expressions.compile(text))
        except CompileError as error:
            return cls(text, field, None, f"compilation error: {error}")

    def evaluate(self, context: Context) -> Any:
        """The value; raises :class:`Failure` worded as kube words an expression's error."""
        if self.compiled is None:
            raise Failure(self.error)
        try:
            return self.compiled.evaluate(context)
        except EvaluationError as error:
            raise Failure(f"expression '{self.text}' resulted in error: {error}") from None


class Failure(Exception):
    """An expression that could not give a value: the policy's failurePolicy decides."""


@dataclass(frozen=True, slots=True)
class Compiled:
    """A policy's expressions, compiled for one resourceVersion of it."""

    version: str
    match: Match
    """What ``matchConstraints`` match."""
    reads: frozenset[str]
    """The variables its expressions name besides ``object``: the others are left null
    rather than converted for the library on every write."""
    conditions: tuple[Check, ...]
    validations: tuple[tuple[Mapping[str, Any], Check, Check | None], ...]
    variables: Mapping[str, Expression]
    variable_errors: tuple[str, ...]
    audits: tuple[tuple[str, Check], ...]
    together: Check | None
    """The validations as one list, to learn in one evaluation that all of them hold (the
    usual case); when one does not, each is evaluated alone to word what failed."""

    @classmethod
    def of(cls, policy: Mapping[str, Any]) -> Compiled:
        spec = policy.get("spec") or {}

        def checks(key: str, member: str) -> list[tuple[Mapping[str, Any], Check]]:
            return [
                (item, Check.of(item.get(member, ""), f"spec.{key}[{n}].{member}"))
                for n, item in enumerate(spec.get(key) or [])
            ]

        variables = checks("variables", "expression")
        messages = {
            n: Check.of(v["messageExpression"], f"spec.validations[{n}].messageExpression")
            for n, v in enumerate(spec.get("validations") or [])
            if v.get("messageExpression")
        }
        validations = checks("validations", "expression")
        texts = [
            item.get(member, "")
            for key, member in EXPRESSIONS
            for item in spec.get(key) or []
            if isinstance(item, Mapping)
        ]
        compiled = cls(
            _version(policy),
            Match.of(spec.get("matchConstraints"), rules_required=True),
            frozenset(_BOUND.findall(" ".join(str(t) for t in texts))),
            tuple(check for _, check in checks("matchConditions", "expression")),
            tuple((v, check, messages.get(n)) for n, (v, check) in enumerate(validations)),
            {v.get("name", ""): c.compiled for v, c in variables if c.compiled is not None},
            tuple(c.error for _, c in variables if c.compiled is None),
            tuple(
                (a.get("key", ""), check)
                for a, check in checks("auditAnnotations", "valueExpression")
            ),
            _together([check for _, check in validations]),
        )
        everything = [c for _, c in variables] + [
            *compiled.conditions,
            *(check for _, check, _ in compiled.validations),
            *messages.values(),
            *(check for _, check in compiled.audits),
        ]
        for check in everything:
            if check.compiled is None:  # what kube would have refused the policy for
                log.warning(
                    'ValidatingAdmissionPolicy "%s" is invalid: %s: Invalid value: "%s": %s',
                    policy["metadata"].get("name"),
                    check.field,
                    check.text,
                    check.error.removeprefix("compilation error: "),
                )
        return compiled


@dataclass
class Review:
    """One write under review, and what the policies decided about it so far."""

    attributes: Attributes
    namespace: Mapping[str, Any] | None
    denial: ApiError | None = None
    warnings: list[str] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)

    @functools.cached_property
    def request(self) -> dict[str, Any]:
        """The ``request`` variable, made once for every policy that reads it."""
        return request_of(self.attributes)


@dataclass(frozen=True, slots=True)
class Bound:
    """A policy, compiled, with its bindings and what each binding matches."""

    policy: Mapping[str, Any]
    compiled: Compiled
    bindings: tuple[tuple[Mapping[str, Any], Match], ...]


class ValidatingAdmissionPolicy:
    """The plugin: reads policies and bindings from informers, parameters from informers
    of each ``paramKind`` made on first use. Policies are indexed with their bindings once
    per change of either, so a write pays for the policies that match it, not for all."""

    def __init__(
        self,
        policies: Informer,
        bindings: Informer,
        namespaces: Informer,
        cluster: Cluster,
        stop: threading.Event,
    ) -> None:
        self._policies = policies
        self._bindings = bindings
        self._namespaces = namespaces
        self._params = ParamSources(cluster, stop)
        self._index: tuple[tuple[int, int], tuple[Bound, ...]] = ((-1, -1), ())
        self._lock = threading.Lock()

    def validate(self, attributes: Attributes) -> tuple[str, ...]:
        bound = self._bound()
        if not bound:
            return ()
        namespace = self._namespaces.get("", attributes.namespace) if attributes.namespace else None
        review = Review(attributes, namespace)
        for each in bound:
            if each.compiled.match.matches(attributes, namespace):
                for binding, match in each.bindings:
                    if match.matches(attributes, namespace):
                        self._apply(each, binding, review)
        if review.audit:
            attributes.annotate(AUDIT_KEY, json.dumps(review.audit, separators=(",", ":")))
        if review.denial is not None:
            raise review.denial
        return tuple(review.warnings)

    def _bound(self) -> tuple[Bound, ...]:
        """The policies with their bindings, as of the last change of either (a policy
        compiled again only when its resourceVersion moved)."""
        generations = (self._policies.generation, self._bindings.generation)
        index = self._index
        if index[0] == generations:
            return index[1]
        with self._lock:
            known = {b.policy["metadata"]["name"]: b.compiled for b in self._index[1]}
            by_policy: dict[str, list[tuple[Mapping[str, Any], Match]]] = {}
            for binding in self._bindings.items():
                spec = binding.get("spec") or {}
                match = Match.of(spec.get("matchResources"), rules_required=False)
                by_policy.setdefault(spec.get("policyName", ""), []).append((binding, match))
            bound = []
            for policy in self._policies.items():
                name = policy["metadata"]["name"]
                compiled = known.get(name)
                if compiled is None or compiled.version != _version(policy):
                    compiled = Compiled.of(policy)
                bound.append(Bound(policy, compiled, tuple(by_policy.get(name, ()))))
            self._index = (generations, tuple(bound))
            return self._index[1]

    def _apply(self, bound: Bound, binding: Mapping[str, Any], review: Review) -> None:
        """Evaluate the policy through one binding, for each of its parameter objects."""
        attributes, policy, compiled = review.attributes, bound.policy, bound.compiled
        spec, binding_spec = policy.get("spec") or {}, binding.get("spec") or {}
        fails = (spec.get("failurePolicy") or "Fail") == "Fail"
        actions = binding_spec.get("validationActions") or []
        try:
            params = self._params.of(
                spec.get("paramKind"), binding_spec.get("paramRef"), attributes
            )
        except Failure as failure:
            if fails or isinstance(failure, MissingParams):
                _decide(policy, binding, actions, (0, str(failure), ""), review)
            return
        reads = compiled.reads
        for param in params:
            context = Context(
                object=attributes.object,
                oldObject=attributes.old_object if "oldObject" in reads else None,
                request=review.request if "request" in reads else None,
                params=param if "params" in reads else None,
                namespaceObject=review.namespace if "namespaceObject" in reads else None,
                authorizer=RequestAuthorizer(attributes.authorize)
                if "authorizer" in reads
                else None,
                variables=compiled.variables,
            )
            for violation in _failures(compiled, context, fails):
                _decide(policy, binding, actions, violation, review)
            for key, check in compiled.audits:
                try:
                    value = check.evaluate(context)
                except Failure:
                    continue
                if isinstance(value, str):
                    attributes.annotate(f"{policy['metadata']['name']}/{key}", value)


def _together(validations: list[Check]) -> Check | None:
    """Several validations that compile, as one list expression."""
    if len(validations) < 2 or any(v.compiled is None for v in validations):
        return None
    together = Check.of("[" + ", ".join(f"({v.text})" for v in validations) + "]", "")
    return together if together.compiled is not None else None


def _version(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"].get("resourceVersion", ""))


def _decide(
    policy: Mapping[str, Any],
    binding: Mapping[str, Any],
    actions: list[str],
    violation: Violation,
    review: Review,
) -> None:
    """One failed validation, as the binding's actions ask."""
    index, message, reason = violation
    policy_name, binding_name = policy["metadata"]["name"], binding["metadata"]["name"]
    if "Deny" in actions and review.denial is None:
        text = (
            f"ValidatingAdmissionPolicy '{policy_name}' with binding '{binding_name}' "
            f"denied request: {message}"
        )
        error = review.attributes.forbidden(text)
        if reason:
            error.reason = reason
            error.code = REASON_CODES.get(reason, error.code)
        error.details["causes"] = [{"message": text}]
        review.denial = error
    if "Warn" in actions:
        review.warnings.append(
            f"Validation failed for ValidatingAdmissionPolicy '{policy_name}' with binding "
            f"'{binding_name}': {message}"
        )
    if "Audit" in actions:
        review.audit.append(
            {
                "message": message,
                "policy": policy_name,
                "binding": binding_name,
                "expressionIndex": index,
                "validationActions": actions,
            }
        )


Violation = tuple[int, str, str]
"""A failed validation: its index, its message and its reason (``""``: an error)."""


def _failures(compiled: Compiled, context: Context, fails: bool) -> list[Violation]:
    """The failed validations (none when a match condition is false, nor the errors that
    ``failurePolicy: Ignore`` ignores)."""
    try:
        if compiled.variable_errors:
            raise Failure(compiled.variable_errors[0])
        for condition in compiled.conditions:
            if condition.evaluate(context) is not True:
                return []
    except Failure as failure:
        return [(0, str(failure), "")] if fails else []
    if compiled.together is not None:
        try:
            if all(held is True for held in compiled.together.evaluate(context)):
                return []
        except Failure:
            pass  # each alone says which failed
    found: list[Violation] = []
    for index, (validation, check, message_check) in enumerate(compiled.validations):
        try:
            if check.evaluate(context) is True:
                continue
        except Failure as failure:
            if fails:
                found.append((index, str(failure), ""))
            continue
        found.append(
            (
                index,
                _message(validation, check, message_check, context),
                validation.get("reason") or "Invalid",
            )
        )
    return found


def _message(
    validation: Mapping[str, Any], check: Check, message_check: Check | None, context: Context
) -> str:
    """messageExpression's string if it gives a one-line one, else message, else the
    expression that failed (kube's order)."""
    if message_check is not None:
        try:
            value = message_check.evaluate(context)
        except Failure:
            value = None
        if isinstance(value, str) and value.strip() and "\n" not in value.strip():
            return value.strip()
    if (validation.get("message") or "").strip():
        return str(validation["message"]).strip()
    return f"failed expression: {check.text.strip()}"


class MissingParams(Failure):
    """No parameter object, and the binding says to deny then."""


class ParamSources:
    """Informers of parameter kinds, one per kind, made when a binding first needs it."""

    def __init__(self, cluster: Cluster, stop: threading.Event) -> None:
        self._cluster = cluster
        self._stop = stop
        self._sources: dict[tuple[str, str], tuple[Informer, bool]] = {}
        self._lock = threading.Lock()

    def of(
        self,
        kind: Mapping[str, Any] | None,
        ref: Mapping[str, Any] | None,
        attributes: Attributes,
    ) -> list[Any]:
        """The parameter objects a binding's ``paramRef`` names (``[None]`` without a
        ``paramKind``)."""
        if not kind:
            return [None]
        if not ref:
            raise Failure("failed to configure binding: paramRef is required when paramKind is set")
        informer, namespaced = self._source(kind)
        if not informer.synced.wait(PARAM_SYNC_SECONDS):
            raise Failure("failed to configure binding: the parameters have not been read yet")
        namespace = ""
        if namespaced:
            namespace = ref.get("namespace") or attributes.namespace
            if not namespace:
                raise Failure(
                    "failed to configure binding: cannot use namespaced paramRef in policy "
                    "binding that matches cluster-scoped resources"
                )
        if ref.get("name"):
            found = informer.get(namespace, ref["name"])
            params = [found] if found is not None else []
        else:
            params = [
                obj
                for obj in informer.items()
                if str((obj.get("metadata") or {}).get("namespace") or "") == namespace
                and selects(
                    ref.get("selector") or {}, (obj.get("metadata") or {}).get("labels") or {}
                )
            ]
        if params:
            return params
        if (ref.get("parameterNotFoundAction") or "Deny") == "Deny":
            raise MissingParams(
                "failed to configure binding: no params found for policy binding with `Deny` "
                "parameterNotFoundAction"
            )
        return []

    def _source(self, kind: Mapping[str, Any]) -> tuple[Informer, bool]:
        key = (str(kind.get("apiVersion", "")), str(kind.get("kind", "")))
        with self._lock:
            if key not in self._sources:
                path, namespaced = self._discover(*key)
                self._sources[key] = (Informer(self._cluster, path, self._stop).start(), namespaced)
            return self._sources[key]

    def _discover(self, api_version: str, kind: str) -> tuple[str, bool]:
        """The collection of ``kind`` and whether it is namespaced, from discovery."""
        base = paths.group_version(api_version)
        try:
            listed = self._cluster.get(base)
        except ClusterError as error:
            raise Failure(f"failed to configure binding: {error.message}") from None
        for resource in listed.get("resources") or []:
            if resource.get("kind") == kind and "/" not in resource.get("name", ""):
                return f"{base}/{resource['name']}", bool(resource.get("namespaced"))
        raise Failure(f'failed to configure binding: no resource of kind "{kind}" in {api_version}')
