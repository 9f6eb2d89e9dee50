"""The public API: :func:`compile` an expression once, :meth:`Expression.evaluate` it in the
:class:`Context` of one admission request.

Threads: expressions are shared by every thread; a Context belongs to one request, and even if
threads share it, a variable is evaluated at most once and the authorizer asked once per check.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from handlers.admission.cel.authorizer import Authorizer, Decisions, authorizer_variable
from handlers.admission.cel.contexts import register
from handlers.admission.cel.environment import VARIABLES, environment
from handlers.admission.cel.messages import clean, compile_message
from handlers.admission.cel.values import DURATION_TYPE, TIMESTAMP_TYPE, Refusal, from_library
from handlers.admission.cel.variables import CONTEXT, read_kind, rewrite

__all__ = [
    "CACHE_SIZE",
    "VARIABLES",
    "CompileError",
    "Context",
    "EvaluationError",
    "Expression",
    "compile",
]

CACHE_SIZE = 4096
"""Compiled expressions remembered (least recently used first out)."""


class CompileError(Exception):
    """An expression kube refuses; ``str()`` is kube's message ("compilation failed: ...")."""


class EvaluationError(Exception):
    """A runtime error of an expression, worded as cel-go words it."""


_SCALARS = {"bool": bool, "int": int, "double": float}
_Programs = tuple[Any, Any]
"""The program, and for an optional-typed expression a program giving [value] or []."""
_Typed = tuple[str, _Programs]


@dataclass(frozen=True)
class Expression:
    """A compiled expression; shared by every request and thread (see :func:`compile`)."""

    text: str
    output_type: str = field(compare=False)
    """Its type as kube's type checker names it ("bool", "string", "dyn", "list(int)"...),
    composited variables taken as ``dyn`` (see :meth:`output_type_for`)."""
    _programs: _Programs = field(repr=False, compare=False)
    _reads: tuple[str, ...] = field(repr=False, compare=False)
    """The composited variables it reads."""
    _variants: dict[tuple[str, ...], _Typed] = field(
        default_factory=dict, repr=False, compare=False
    )
    """Compiled for variables of known kinds (see ``variables.read_kind``), by the kinds of
    ``_reads``."""

    def evaluate(self, context: Context) -> Any:
        """The value, as plain Python; raises EvaluationError."""
        output, (program, unwrap) = self._for(context)
        result = _run(unwrap or program, context)
        scalar = _SCALARS.get(output)
        if scalar is not None:
            value = result.plain_value()
            if type(value) is scalar:
                return value
        value = _plain(result)
        if unwrap is not None:
            value = value[0] if value else None
        return from_library(value)

    def output_type_for(self, variables: Mapping[str, Expression]) -> str:
        """Its type where ``variables`` are the policy's composited variables, which kube types
        by their expressions (``variables.name`` is a string if ``name``'s expression is);
        raises CompileError if, so typed, kube would refuse it."""
        return self._output_type(variables, frozenset())

    def _output_type(self, variables: Mapping[str, Expression], seen: frozenset[str]) -> str:
        kinds = []
        for name in self._reads:
            expression = variables.get(name)
            if expression is None or name in seen:
                kinds.append("")
            else:
                kinds.append(read_kind(expression._output_type(variables, seen | {name})))
        return self._typed(tuple(kinds))[0]

    def _typed(self, kinds: tuple[str, ...]) -> _Typed:
        if not any(kinds):
            return self.output_type, self._programs
        found = self._variants.get(kinds)
        if found is None:
            typed = dict(zip(self._reads, kinds, strict=True))
            output, programs, _ = _compile_programs(self.text, typed)
            found = self._variants.setdefault(kinds, (output, programs))
        return found

    def _for(self, context: Context) -> _Typed:
        try:
            return self._typed(context._kinds(self._reads))
        except CompileError as error:
            raise EvaluationError(str(error)) from None

    def _variable_value(self, context: Context) -> Any:
        """The value as a composited variable holds it (an optional as [value] or [])."""
        program, unwrap = self._for(context)[1]
        return _plain(_run(unwrap or program, context))


def _run(program: Any, context: Context) -> Any:
    try:
        return program.eval(context._bindings())
    except RuntimeError as error:  # values the library refuses to convert
        raise EvaluationError(clean(str(error))) from None


def _plain(result: Any) -> Any:
    if result.type().name() == "ERROR":
        raise EvaluationError(clean(result.value()))
    try:
        return result.plain_value()
    except TypeError:  # an optional where the checker saw dyn
        raise EvaluationError(f"unsupported result type: {result.type().name()}") from None


_TYPE_NAMES = {"TIMESTAMP": TIMESTAMP_TYPE, "DURATION": DURATION_TYPE}


def _kube_type_name(name: str) -> str:
    """cel-go's spelling of a type the library names ("LIST<INT>" is "list(int)")."""
    for ours, kubes in _TYPE_NAMES.items():
        name = name.replace(ours, kubes)
    return re.sub(r"[A-Z_]{2,}", lambda m: m[0].lower(), name).replace("<", "(").replace(">", ")")


def _compile_programs(
    text: str, kinds: Mapping[str, str]
) -> tuple[str, _Programs, tuple[str, ...]]:
    """(output type, programs, variables read) of ``text``, its variables read as ``kinds``
    says."""
    env = environment()
    rewritten, reads = rewrite(text, kinds)
    try:
        try:
            program = env.compile(rewritten)
        except RuntimeError:
            if rewritten != text:
                env.compile(text)  # words the error in the terms of the text as written
            raise
        output = _kube_type_name(program.return_type().name())
        unwrap = None
        if output.startswith("optional_type"):
            unwrap = env.compile(f"({rewritten}).optMap(_vap_o, [_vap_o]).orValue([])")
    except RuntimeError as error:
        raise CompileError(compile_message(error)) from None
    return output, (program, unwrap), reads


def _compile(text: str) -> Expression:
    return Expression(text, *_compile_programs(text, {}))


_CACHE: OrderedDict[str, Expression] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def compile(text: str) -> Expression:
    """The compiled expression (the same object for the same text while it stays cached);
    raises CompileError."""
    with _CACHE_LOCK:
        found = _CACHE.get(text)
        if found is not None:
            _CACHE.move_to_end(text)
            return found
    expression = _compile(text)
    with _CACHE_LOCK:
        found = _CACHE.setdefault(text, expression)
        _CACHE.move_to_end(text)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return found


_BUSY = object()


class Context:
    """Everything one admission request binds: built once per request and policy, shared by all
    its expressions."""

    def __init__(
        self,
        *,
        object: Any,
        oldObject: Any,  # noqa: N803
        request: Any,
        params: Any,
        namespaceObject: Any,  # noqa: N803
        authorizer: Authorizer | None,
        variables: Mapping[str, Expression],
    ) -> None:
        self._variables = variables
        self._data = {
            "object": object,
            "oldObject": oldObject,
            "request": request,
            "params": params,
            "namespaceObject": namespaceObject,
        }
        self._activation: Any = None
        self._values: dict[str, Any] = {}
        self._read_kinds: dict[str, str] = {}
        self._decisions = Decisions(authorizer)
        self._lock = threading.RLock()
        self._key = register(self)

    def _bindings(self) -> Any:
        """The bindings, converted for the library once per Context."""
        if self._activation is None:
            data = dict(self._data, variables={CONTEXT: self._key}, authorizer=None)
            if self._decisions.authorizer is not None:
                data["authorizer"] = authorizer_variable(self._key, self._data["request"])
            self._activation = environment().Activation(data)
        return self._activation

    def _kinds(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """How expressions read these variables (see ``variables.read_kind``)."""
        if not names:
            return names
        kinds = []
        for name in names:
            kind = self._read_kinds.get(name)
            if kind is None:
                expression = self._variables.get(name)
                try:
                    output = expression.output_type_for(self._variables) if expression else ""
                except CompileError:
                    output = ""  # the variable's readers fail when their own variant compiles
                kind = self._read_kinds[name] = read_kind(output)
            kinds.append(kind)
        return tuple(kinds)

    def _variable(self, name: str) -> tuple[str, Any]:
        """A composited variable's (kind, value), evaluated on first use."""
        with self._lock:
            found = self._values.get(name)
            if found is None:
                expression = self._variables.get(name)
                if expression is None:
                    raise Refusal(f"no such key: {name}")
                self._values[name] = _BUSY
                try:
                    found = (True, expression._variable_value(self))
                except EvaluationError as error:
                    found = (False, f'composited variable "{name}" fails to evaluate: {error}')
                except BaseException:
                    del self._values[name]
                    raise
                self._values[name] = found
            elif found is _BUSY:
                raise Refusal(f'composited variable "{name}" refers to itself')
        ok, value = found
        if not ok:
            raise Refusal(value)
        return self._kinds((name,))[0], value

    def _authorize(
        self, user: list[str] | None, attributes: tuple[str, ...], verb: str, path: str
    ) -> dict[str, Any]:
        return self._decisions.decide(user, attributes, verb, path)
