"""The environment: kube's VAP variables, all ``dyn``; the library's optional types and math
extension; and the functions of kube's libraries and cel-go's extensions written here."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any

from cel_expr_python import cel  # type: ignore[import-untyped]
from cel_expr_python.ext import ext_math, ext_optional  # type: ignore[import-untyped]

from handlers.admission.cel import (
    addresses,
    authorizer,
    lists,
    quantities,
    regex,
    strings,
    urls,
    values,
    variables,
)

VARIABLES = (
    "object",
    "oldObject",
    "request",
    "params",
    "namespaceObject",
    "authorizer",
    "variables",
)

_T = cel.Type
_MAP = _T.Map(_T.STRING, _T.DYN)
"""Library values (quantities, URLs, IPs, CIDRs, authorizer checks, decisions)."""
_LIST = _T.List(_T.DYN)
_ANY = object()
"""A parameter taking any value: the library dispatches on concrete kinds only."""
_KINDS: tuple[Any, ...] = (_T.INT, _T.UINT, _T.DOUBLE, _T.BOOL, _T.STRING, _T.BYTES, _T.NULL, _LIST)
_KINDS += (_T.Map(_T.DYN, _T.DYN), _T.TIMESTAMP, _T.DURATION)
_S, _I, _B, _D = _T.STRING, _T.INT, _T.BOOL, _T.DOUBLE

_Overload = tuple[bool, Sequence[Any], Any, Callable[..., Any]]
"""(member?, parameters, result, implementation)."""


def _function(name: str, *overloads: _Overload) -> Any:
    built: list[Any] = []
    for member, params, result, impl in overloads:
        for kinds in itertools.product(*[_KINDS if p is _ANY else (p,) for p in params]):
            built.append(
                cel.Overload(
                    f"{name}#{len(built)}", result, list(kinds), is_member=member, impl=impl
                )
            )
    return cel.FunctionDecl(name, built)


def _member(name: str, params: Sequence[Any], result: Any, impl: Callable[..., Any]) -> Any:
    return _function(name, (True, params, result, impl))


def _global(name: str, params: Sequence[Any], result: Any, impl: Callable[..., Any]) -> Any:
    return _function(name, (False, params, result, impl))


def _declarations() -> list[Any]:
    m = _MAP
    decls = [
        # strings
        _member("charAt", [_S, _I], _S, strings.char_at),
        _function(
            "indexOf",
            (True, [_S, _S], _I, strings.index_of),
            (True, [_S, _S, _I], _I, strings.index_of),
            (True, [_LIST, _ANY], _I, lists.list_index),
        ),
        _function(
            "lastIndexOf",
            (True, [_S, _S], _I, strings.last_index_of),
            (True, [_S, _S, _I], _I, strings.last_index_of),
            (True, [_LIST, _ANY], _I, lists.list_last_index),
        ),
        _member("lowerAscii", [_S], _S, lambda s: s.translate(strings.LOWER)),
        _member("upperAscii", [_S], _S, lambda s: s.translate(strings.UPPER)),
        _function(
            "replace",
            (True, [_S, _S, _S], _S, lambda s, old, new: s.replace(old, new)),
            (True, [_S, _S, _S, _I], _S, lambda s, old, new, n: s.replace(old, new, max(n, -1))),
        ),
        _function(
            "split",
            (True, [_S, _S], _T.List(_S), strings.split),
            (True, [_S, _S, _I], _T.List(_S), strings.split),
        ),
        _function(
            "substring",
            (True, [_S, _I], _S, strings.substring),
            (True, [_S, _I, _I], _S, strings.substring),
        ),
        _member("trim", [_S], _S, lambda s: s.strip(strings.GO_SPACE)),
        _function("join", (True, [_LIST], _S, strings.join), (True, [_LIST, _S], _S, strings.join)),
        _function(
            "reverse",
            (True, [_S], _S, lambda s: s[::-1]),
            (True, [_LIST], _LIST, lambda v: v[::-1]),
        ),
        _member("format", [_S, _LIST], _S, strings.formatted),
        _global("strings.quote", [_S], _S, strings.quote),
        # kube's lists, cel-go's lists and sets
        _member("isSorted", [_LIST], _B, lists.is_sorted),
        _member("sum", [_LIST], _T.DYN, lists.sum_of),
        _member("min", [_LIST], _T.DYN, lists.extreme("min", 1)),
        _member("max", [_LIST], _T.DYN, lists.extreme("max", -1)),
        _member("includes", [_LIST, _ANY], _B, lists.includes),
        _member("distinct", [_LIST], _LIST, lists.distinct),
        _function(
            "flatten",
            (True, [_LIST], _LIST, lists.flatten),
            (True, [_LIST, _I], _LIST, lists.flatten),
        ),
        _member("slice", [_LIST, _I, _I], _LIST, lists.slice_of),
        _member("sort", [_LIST], _LIST, lists.sort),
        _global("lists.range", [_I], _T.List(_I), lambda n: list(range(n))),
        _global(
            "sets.contains", [_LIST, _LIST], _B, lambda a, b: all(lists.includes(a, x) for x in b)
        ),
        _global(
            "sets.equivalent",
            [_LIST, _LIST],
            _B,
            lambda a, b: (
                all(lists.includes(b, x) for x in a) and all(lists.includes(a, x) for x in b)
            ),
        ),
        _global(
            "sets.intersects", [_LIST, _LIST], _B, lambda a, b: any(lists.includes(b, x) for x in a)
        ),
        # regex
        _member("find", [_S, _S], _S, regex.find),
        _function(
            "findAll",
            (True, [_S, _S], _T.List(_S), regex.find_all),
            (True, [_S, _S, _I], _T.List(_S), regex.find_all),
        ),
        # URLs
        _global("url", [_S], m, urls.url),
        _global("isURL", [_S], _B, urls.is_url),
        _member("getScheme", [m], _S, urls.url_part(lambda p: p.scheme)),
        _member("getHost", [m], _S, urls.url_part(lambda p: p.host)),
        _member("getHostname", [m], _S, urls.url_part(lambda p: urls.split_host_port(p.host)[0])),
        _member("getPort", [m], _S, urls.url_part(lambda p: urls.split_host_port(p.host)[1])),
        _member("getEscapedPath", [m], _S, urls.url_part(lambda p: urls.escaped_path(p.path))),
        _member(
            "getQuery", [m], _T.Map(_S, _T.List(_S)), urls.url_part(lambda p: urls.query(p.query))
        ),
        # quantities
        _global("quantity", [_S], m, quantities.quantity),
        _global("isQuantity", [_S], _B, values.succeeds(quantities.quantity)),
        _function(
            "sign",
            (False, [m], _I, lambda q: quantities.of(q).sign()),
            (True, [m], _I, lambda q: quantities.of(q).sign()),
        ),
        _member(
            "isGreaterThan", [m, m], _B, lambda a, b: quantities.of(a).compare(quantities.of(b)) > 0
        ),
        _member(
            "isLessThan", [m, m], _B, lambda a, b: quantities.of(a).compare(quantities.of(b)) < 0
        ),
        _member("compareTo", [m, m], _I, lambda a, b: quantities.of(a).compare(quantities.of(b))),
        _member("asApproximateFloat", [m], _D, lambda q: quantities.of(q).as_approximate_float()),
        _member("asInteger", [m], _I, quantities.as_integer),
        _member("isInteger", [m], _B, lambda q: quantities.of(q).as_int64() is not None),
        _function(
            "add",
            (True, [m, m], m, quantities.add),
            (True, [m, _I], m, quantities.add),
        ),
        _function(
            "sub",
            (True, [m, m], m, quantities.sub),
            (True, [m, _I], m, quantities.sub),
        ),
        # IPs and CIDRs
        _function(
            "ip",
            (False, [_S], m, addresses.ip),
            (True, [m], m, lambda c: {values.IP: str(addresses.interface_of(c).ip)}),
        ),
        _global("isIP", [_S], _B, values.succeeds(addresses.parse_ip)),
        _global("ip.isCanonical", [_S], _B, addresses.ip_is_canonical),
        _member("family", [m], _I, lambda a: addresses.address_of(a).version),
        *(
            _member(n, [m], _B, lambda a, t=test: t(addresses.address_of(a)))
            for n, test in addresses.IP_TESTS.items()
        ),
        _global("cidr", [_S], m, addresses.cidr),
        _global("isCIDR", [_S], _B, values.succeeds(addresses.parse_cidr)),
        _function(
            "containsIP",
            (True, [m, _S], _B, addresses.contains_ip),
            (True, [m, m], _B, addresses.contains_ip),
        ),
        _function(
            "containsCIDR",
            (True, [m, _S], _B, addresses.contains_cidr),
            (True, [m, m], _B, addresses.contains_cidr),
        ),
        _member("prefixLength", [m], _I, lambda c: addresses.interface_of(c).network.prefixlen),
        _member("masked", [m], m, lambda c: {values.CIDR: str(addresses.interface_of(c).network)}),
        # authorizer
        _member("path", [m, _S], m, authorizer.authz_path),
        _member("group", [m, _S], m, authorizer.authz_group),
        _member("serviceAccount", [m, _S, _S], m, authorizer.authz_service_account),
        _member("resource", [m, _S], m, authorizer.group_resource),
        *(
            _member(key, [m, _S], m, authorizer.resource_with(key))
            for key in ("subresource", "namespace", "name", "fieldSelector", "labelSelector")
        ),
        _member("check", [m, _S], m, authorizer.ask),
        _member(
            "allowed",
            [m],
            _B,
            authorizer.decision_reader(lambda d: d[authorizer.DECISION] == authorizer.ALLOW),
        ),
        _member("reason", [m], _S, authorizer.decision_reader(lambda d: d["reason"])),
        _member("errored", [m], _B, authorizer.decision_reader(lambda d: bool(d["error"]))),
        _member("error", [m], _S, authorizer.decision_reader(lambda d: d["error"])),
        # composited variables (see variables.rewrite)
        _global("_vap_variable", [m, _S], _T.DYN, variables.reader(variables.plain_variable)),
        _global("_vap_has_variable", [m, _S], _B, variables.reader(variables.has_variable)),
        _global("_vap_present", [m, _S], _B, variables.reader(variables.present_variable)),
        _global("_vap_timestamp", [m, _S], _S, variables.reader(variables.timestamp_variable)),
        _global("_vap_duration", [m, _S], _S, variables.reader(variables.duration_variable)),
    ]
    return decls


_ENV_LOCK = threading.Lock()
_ENV: Any = None


def environment() -> Any:
    """The one environment, built on first use (it takes a few milliseconds)."""
    global _ENV
    if _ENV is None:
        with _ENV_LOCK:
            if _ENV is None:
                _ENV = cel.NewEnv(
                    variables=dict.fromkeys(VARIABLES, _T.DYN),
                    extensions=[ext_optional.ExtOptional(), ext_math.ExtMath()],
                    functions=_declarations(),
                )
    return _ENV
