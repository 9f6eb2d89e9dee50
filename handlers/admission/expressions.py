"""CEL expressions compiled and evaluated as kube-apiserver's ValidatingAdmissionPolicy does,
on Google's C++ CEL (``cel-expr-python``).

The environment is kube's VAP one as far as that library lets it be: the variables ``object``,
``oldObject``, ``request``, ``params``, ``namespaceObject``, ``authorizer`` (with
``authorizer.requestResource``) and ``variables``, all ``dyn``; optional types; cel-go's strings
extension (kube's version 2, with ``format`` done by the library's own, plus ``reverse``), sets
extension and lists extension (``distinct``, ``flatten``, ``lists.range``, ``reverse``,
``slice``, ``sort``); the math extension; kube's lists, regex, URL, quantity, IP, CIDR and
authorizer libraries (its field and label selectors are accepted, not forwarded). Messages are
kube's and cel-go's where the library words them otherwise.

kube's types: the library holds no Python objects and declares no new types, so a Quantity,
URL, IP, CIDR or authorizer value is a map with one private key (``@kubernetes...``). Two
quantities are equal when their values are, as in kube; results turn them back into
:class:`~handlers.admission.quantity.Quantity`, ``ipaddress`` objects and URL strings. The
library dispatches functions on concrete kinds only, so ``dyn`` parameters are declared once
per kind. Regular expressions are Python's ``re`` standing in for Go's RE2 syntax.

Composited variables are lazy, as in kube: compiling rewrites ``variables.name`` (and
``has(variables.name)``, ``variables.?name``, ``variables['name']``) into a call that evaluates
the variable in the :class:`Context` on first use and remembers its value or its error; an error
reaches only the expressions that read the variable, in kube's words (``composited variable
"name" fails to evaluate: ...``). A read is typed by the variable's expression, as kube types
it (:meth:`Expression.output_type_for`); timestamps, durations and optionals, which Python
functions cannot hand back to CEL, travel as strings or lists and the read converts them.

Not supported, as the library forbids it (new overloads of ``string`` or of the comparison
operators, Python functions returning timestamps, durations or optionals): ``string(ip)``,
``string(cidr)``, kube's ``format.*`` library, ``first()``/``last()``, ``sortBy``,
``min``/``max``/``sum`` over timestamps or durations, literal cross-type comparisons
(``1 < 1.5``; ``object.x < 1.5`` works), two-variable comprehensions; nor semver, cost limits,
or compile-time checks of regex literals. ``request`` and ``namespaceObject`` are ``dyn``, so
their misspelt fields fail when evaluated, not when compiled.

Measured medians (one core): compiling 65-110 µs (then cached); evaluating
``object.spec.priority <= 5`` 3-4 µs in a Context already used, 18 µs with a new Context
(building it and converting the object included); ``quantity(x).isLessThan(quantity(y))``
13 µs; reading an evaluated variable 10 µs; an authorizer chain 35 µs (decision cached).

Threads: expressions are shared by every thread; a Context belongs to one request, and even if
threads share it, a variable is evaluated at most once and the authorizer asked once per check.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import itertools
import math
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from cel_expr_python import cel  # type: ignore[import-untyped]
from cel_expr_python.ext import ext_math, ext_optional, ext_strings  # type: ignore[import-untyped]

from handlers.admission import quantity as quantities
from handlers.api import names

VARIABLES = (
    "object",
    "oldObject",
    "request",
    "params",
    "namespaceObject",
    "authorizer",
    "variables",
)

ALLOW, DENY, NO_OPINION = "allow", "deny", "noOpinion"
"""An authorizer's decisions (kube's ``authorizer.Decision``)."""

CACHE_SIZE = 4096
"""Compiled expressions remembered (least recently used first out)."""


class CompileError(Exception):
    """An expression kube refuses; ``str()`` is kube's message ("compilation failed: ...")."""


class EvaluationError(Exception):
    """A runtime error of an expression, worded as cel-go words it."""


class _Refusal(Exception):
    """Raised by the library functions written here: becomes a CEL error value."""


class Authorizer(Protocol):
    """The requesting user's authorizer: (decision, reason); an exception is an errored check."""

    def __call__(
        self,
        *,
        group: str,
        resource: str,
        subresource: str,
        namespace: str,
        name: str,
        verb: str,
        path: str = "",
    ) -> tuple[str, str]: ...


class UserScopedAuthorizer(Authorizer, Protocol):
    """An Authorizer that can also answer for another user, which
    ``authorizer.serviceAccount(namespace, name)`` needs; without ``for_user``, such checks are
    errored decisions."""

    def for_user(self, user: str, groups: tuple[str, ...]) -> Authorizer: ...


# Messages ---------------------------------------------------------------------------------

_STATUS = re.compile(r"^[A-Z][A-Z_]+: ")
_STATUS_END = re.compile(r" \[[A-Z][A-Z_]+\]$")
_OVERLOAD = re.compile(r"No matching overloads found : (?:\((\w+)\)\.)?([^(]+)\((.*)\)")
_WORDING: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r'Key not found in map : "?(.*?)"?'), lambda m: f"no such key: {m[1]}"),
    (re.compile(r"Index error: index=(-?\d+) size=\d+"), lambda m: f"index out of bounds: {m[1]}"),
    (re.compile(r"divide by zero"), lambda m: "division by zero"),
    (
        re.compile(r"Applying SELECT to non-message type|Invalid container type: .*"),
        lambda m: "no such key",
    ),
)


def _clean(message: str) -> str:
    """The library's message without its status code, worded as cel-go's where they differ."""
    message = _STATUS_END.sub("", _STATUS.sub("", message, count=1))
    if overload := _OVERLOAD.fullmatch(message):
        receiver, function, args = overload.groups()
        if function[0] in "_@!":
            return "no such overload"
        signature = ", ".join(t for t in (receiver, args) if t).replace("int64", "int")
        return f"no such overload: {function}({signature})"
    for pattern, word in _WORDING:
        if found := pattern.fullmatch(message):
            return word(found)
    return message


_UNDECLARED = re.compile(
    r"ERROR: <input>:(\d+):(\d+): undeclared reference to '([^'.]+)\.([^']+)' "
    r"(\(in container '[^']*'\)\n \| )(.*)\n \| \.*\^"
)


def _first_undeclared(found: re.Match[str]) -> str:
    """cel-go names the first undeclared identifier of ``a.b.c``, where this library names the
    whole selection at its last dot."""
    line, column, first, rest, middle, source = found.groups()
    dot = int(column) - 1
    selected = f"{first}.{rest}".rpartition(".")[0]
    start = dot - len(selected)
    if start < 0 or source[start:dot] != selected:
        return found[0]
    return (
        f"ERROR: <input>:{line}:{start + 1}: undeclared reference to '{first}' "
        f"{middle}{source}\n | {'.' * start}^"
    )


def _compile_message(error: Exception) -> str:
    message = _STATUS_END.sub("", _STATUS.sub("", str(error), count=1))
    return "compilation failed: " + _UNDECLARED.sub(_first_undeclared, message)


# Values -----------------------------------------------------------------------------------

_QUANTITY, _URL, _IP, _CIDR = "@kubernetes.Quantity", "@kubernetes.URL", "@net.IP", "@net.CIDR"
_AUTHORIZER = "@kubernetes.authorization.Authorizer"
_GROUP_CHECK = "@kubernetes.authorization.GroupCheck"
_RESOURCE_CHECK = "@kubernetes.authorization.ResourceCheck"
_PATH_CHECK = "@kubernetes.authorization.PathCheck"
_DECISION = "@kubernetes.authorization.Decision"
_CONTEXT = "@vap.context"
_TIMESTAMP_TYPE, _DURATION_TYPE = "google.protobuf.Timestamp", "google.protobuf.Duration"
_NO_OVERLOAD = "no such overload"


def _tagged(value: Any, tag: str) -> Any:
    """The payload of a library value of that kind, or a no-such-overload refusal."""
    if type(value) is dict and tag in value:
        return value[tag]
    raise _Refusal(_NO_OVERLOAD)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, bytes | bytearray):
        return "bytes"
    return type(value).__name__


def _equal(a: Any, b: Any) -> bool:
    """CEL's equality: numbers across int/uint/double, never a bool with a number."""
    kind = _kind(a)
    if kind != _kind(b):
        return False
    if kind == "list":
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if kind == "dict":
        return a.keys() == b.keys() and all(_equal(v, b[k]) for k, v in a.items())
    return bool(a == b)


def _compare(a: Any, b: Any) -> int:
    kind = _kind(a)
    if kind != _kind(b) or kind not in ("bool", "number", "bytes", "str", "datetime", "timedelta"):
        raise _Refusal(_NO_OVERLOAD)
    if kind == "number" and (math.isnan(a) or math.isnan(b)):
        raise _Refusal("NaN values cannot be ordered")
    return int((a > b) - (a < b))


def _returnable(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.timedelta):
        raise _Refusal("timestamps and durations cannot be returned by this function here")
    return value


def _from_library(value: Any) -> Any:
    """A plain value of an evaluation's result: library values become Python objects."""
    if type(value) is dict:
        if len(value) == 1:
            (tag, payload), *_ = value.items()
            if type(tag) is str and tag in _PUBLIC:
                return _PUBLIC[tag](payload)
        return {k: _from_library(v) for k, v in value.items()}
    if type(value) is list:
        return [_from_library(v) for v in value]
    if type(value) is bytearray:
        return bytes(value)
    return value


_PUBLIC: dict[str, Callable[[Any], Any]] = {
    _QUANTITY: quantities.parse,
    _URL: str,
    _IP: ipaddress.ip_address,
    _CIDR: ipaddress.ip_interface,
}


# Strings (cel-go's ext.Strings) ---------------------------------------------------------

_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008" + (
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_QUOTED = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_QUOTED |= {"\v": "\\v", "\\": "\\\\", '"': '\\"'}


def _out_of_range(index: int) -> _Refusal:
    return _Refusal(f"index out of range: {index}")


def _char_at(text: str, index: int) -> str:
    if not 0 <= index <= len(text):
        raise _out_of_range(index)
    return text[index : index + 1]


def _index_of(text: str, sub: str, offset: int = 0) -> int:
    if offset < 0:
        raise _out_of_range(offset)
    if not sub:
        return min(offset, len(text))
    return -1 if offset >= len(text) else text.find(sub, offset)


def _last_index_of(text: str, sub: str, offset: int | None = None) -> int:
    if offset is None:
        return text.rfind(sub)
    if offset < 0:
        raise _out_of_range(offset)
    if not sub:
        return min(offset, len(text))
    return -1 if offset >= len(text) else text.rfind(sub, 0, offset + len(sub))


def _split(text: str, sep: str, limit: int = -1) -> list[str]:
    if limit == 0:
        return []
    if sep:
        return text.split(sep, limit - 1 if limit > 0 else -1)
    chars = list(text)
    if 0 < limit < len(chars):
        chars[limit - 1 :] = ["".join(chars[limit - 1 :])]
    return chars


def _substring(text: str, start: int, end: int | None = None) -> str:
    if end is not None and start > end:
        raise _Refusal(f"invalid substring range. start: {start}, end: {end}")
    for index in (start, end):
        if index is not None and not 0 <= index <= len(text):
            raise _out_of_range(index)
    return text[start:end]


def _join(items: list[Any], sep: str = "") -> str:
    for item in items:
        if type(item) is not str:
            raise _Refusal(f"join: invalid input: {item}")
    return sep.join(items)


def _quote(text: str) -> str:
    return '"' + "".join(_QUOTED.get(c, c) for c in text) + '"'


def _formattable(value: Any) -> Any:
    """Timestamps and durations, which cannot go back to CEL, as format's %s prints them."""
    if isinstance(value, datetime.datetime):  # RFC 3339, as Go prints it
        fraction = f".{value.microsecond:06d}".rstrip("0") if value.microsecond else ""
        return value.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"
    if isinstance(value, datetime.timedelta):
        micros = Decimal(value // datetime.timedelta(microseconds=1)).scaleb(-6)
        return f"{micros.normalize():f}s"
    if type(value) is list:
        return [_formattable(v) for v in value]
    if type(value) is dict:
        return {k: _formattable(v) for k, v in value.items()}
    return value


@functools.cache
def _formatter() -> Any:
    env = cel.NewEnv(
        variables={"f": cel.Type.STRING, "a": cel.Type.List(cel.Type.DYN)},
        extensions=[ext_strings.ExtStrings()],
    )
    return env.compile("f.format(a)")


def _format(text: str, args: list[Any]) -> str:
    result = _formatter().eval(data={"f": text, "a": _formattable(args)})
    if result.type().name() == "ERROR":
        raise _Refusal(_clean(result.value()))
    return str(result.value())


# Lists (kube's library and cel-go's ext.Lists) ------------------------------------------


def _is_sorted(items: list[Any]) -> bool:
    return all(_compare(a, b) <= 0 for a, b in itertools.pairwise(items))


def _sum(items: list[Any]) -> Any:
    if not items:
        return 0
    kinds = {type(item) for item in items}
    if kinds == {int}:
        total = sum(items)
        if not -(2**63) <= total < 2**63:
            raise _Refusal("integer overflow")
        return total
    if kinds == {float}:
        return sum(items)
    raise _Refusal(_NO_OVERLOAD)


def _extreme(name: str, prefer: int) -> Callable[[list[Any]], Any]:
    def pick(items: list[Any]) -> Any:
        if not items:
            raise _Refusal(f"{name} called on empty list")
        best = items[0]
        for item in items[1:]:
            if _compare(best, item) == prefer:
                best = item
        return _returnable(best)

    return pick


def _list_index(items: list[Any], value: Any) -> int:
    return next((i for i, item in enumerate(items) if _equal(item, value)), -1)


def _list_last_index(items: list[Any], value: Any) -> int:
    found = [i for i, item in enumerate(items) if _equal(item, value)]
    return found[-1] if found else -1


def _distinct(items: list[Any]) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        if not any(_equal(item, k) for k in kept):
            kept.append(item)
    return kept


def _flatten(items: list[Any], depth: int = 1) -> list[Any]:
    if depth < 0:
        raise _Refusal("level must be non-negative")
    flat: list[Any] = []
    for item in items:
        flat.extend(_flatten(item, depth - 1) if type(item) is list and depth else [item])
    return flat


def _slice(items: list[Any], start: int, end: int) -> list[Any]:
    if start < 0 or end < 0:
        raise _Refusal(f"cannot slice({start}, {end}), negative indexes not supported")
    if start > end:
        raise _Refusal(
            f"cannot slice({start}, {end}), start index must be less than or equal to end index"
        )
    if end > len(items):
        raise _Refusal(f"cannot slice({start}, {end}), list is length {len(items)}")
    return items[start:end]


def _sort(items: list[Any]) -> list[Any]:
    if len({_kind(item) for item in items}) > 1:
        raise _Refusal("list elements must have the same type")
    try:
        return sorted(items, key=functools.cmp_to_key(_compare))
    except _Refusal:
        raise _Refusal("list elements must be comparable") from None


def _includes(items: list[Any], value: Any) -> bool:
    return any(_equal(item, value) for item in items)


# Regex (kube's library; Python's re standing in for Go's RE2 syntax) -----------------------


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern.replace(r"\z", r"\Z"))
    except re.error as error:
        raise _Refusal(f"Illegal regex: error parsing regexp: {error.msg}") from None


def _find(text: str, pattern: str) -> str:
    found = _regex(pattern).search(text)
    return found[0] if found else ""


def _find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    """Go's FindAllString: an empty match right after a previous match does not count."""
    regex, pos, previous_end = _regex(pattern), 0, -1
    found: list[str] = []
    while pos <= len(text) and (limit < 0 or len(found) < limit):
        match = regex.search(text, pos)
        if match is None:
            break
        start, end = match.span()
        if end == start:
            if start != previous_end:
                found.append("")
            pos = end + 1
        else:
            found.append(match[0])
            pos = end
        previous_end = end
    return found


# URLs (kube's library, with Go's net/url rules) -------------------------------------------

_UNRESERVED = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~")
_HOST_OK = frozenset(b"!$&'()*+,;=:[]<>\"") | _UNRESERVED
_PATH_OK = frozenset(b"$&+,/:;=@") | _UNRESERVED
_ENCODED_PATH_OK = frozenset(b"!$&'()*+,;=:@[]%") | _PATH_OK
_USERINFO_OK = frozenset(b"-._:~!$&'()*+,;=%@") | _UNRESERVED
_HEX = frozenset(b"0123456789abcdefABCDEF")


class _URLError(Exception):
    pass


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unescape(text: str, mode: str) -> bytes:
    raw, out, i = text.encode(), bytearray(), 0
    while i < len(raw):
        c = raw[i]
        if c == 0x25:  # %
            if i + 2 >= len(raw) or raw[i + 1] not in _HEX or raw[i + 2] not in _HEX:
                bad = raw[i : i + 3].decode(errors="replace")
                raise _URLError(f"invalid URL escape {_go_quote(bad)}")
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
            continue
        if mode == "host" and c < 0x80 and c not in _HOST_OK:
            raise _URLError(f"invalid character {_go_quote(chr(c))} in host name")
        out.append(0x20 if c == 0x2B and mode == "query" else c)
        i += 1
    return bytes(out)


def _valid_port(port: str) -> bool:
    return not port or (port[0] == ":" and port[1:].isdigit() and port.isascii())


def _host(authority: str) -> str:
    userinfo, at, host = authority.rpartition("@")
    if host.startswith("["):
        close = host.rfind("]")
        if close < 0:
            raise _URLError("missing ']' in host")
        port = host[close + 1 :]
    else:
        port = host[host.rfind(":") :] if ":" in host else ""
    if not _valid_port(port):
        raise _URLError(f"invalid port {_go_quote(port)} after host")
    if at and not all(b in _USERINFO_OK or b >= 0x80 for b in userinfo.encode()):
        raise _URLError("net/url: invalid userinfo")
    return _unescape(host, "host").decode(errors="surrogateescape")


class _Parts(NamedTuple):
    scheme: str
    host: str
    path: str
    query: str


def _go_parse(raw: str, request: bool) -> _Parts:
    """Go's ``url.ParseRequestURI`` (``request``) or ``url.Parse``."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise _URLError("net/url: invalid control character in URL")
    if not request:
        raw = raw.partition("#")[0]
    if not raw and request:
        raise _URLError("empty url")
    if raw == "*":
        return _Parts("", "", "*", "")
    scheme, rest = "", raw
    for i, c in enumerate(raw):
        if c.isascii() and c.isalpha():
            continue
        if c.isascii() and (c.isdigit() or c in "+-.") and i:
            continue
        if c == ":" and i:
            scheme, rest = raw[:i].lower(), raw[i + 1 :]
        elif c == ":":
            raise _URLError("missing protocol scheme")
        break
    if rest.endswith("?") and rest.count("?") == 1:
        rest, query = rest[:-1], ""
    else:
        rest, _, query = rest.partition("?")
    if not rest.startswith("/"):
        if scheme:
            return _Parts(scheme, "", "", query)
        if request:
            raise _URLError("invalid URI for request")
        if ":" in rest.partition("/")[0]:
            raise _URLError("first path segment in URL cannot contain colon")
    host = ""
    if (scheme or (not request and not rest.startswith("///"))) and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        host, rest = _host(authority), slash + path
    _unescape(rest, "path")
    return _Parts(scheme, host, rest, query)


@functools.lru_cache(maxsize=1024)
def _url_parts(raw: str) -> _Parts:
    return _go_parse(raw, request=False)


def _url(raw: str) -> dict[str, Any]:
    try:
        _go_parse(raw, request=True)
        _url_parts(raw)
    except _URLError as error:
        message = f"parse {_go_quote(raw)}: {error}"
        raise _Refusal(f"URL parse error during conversion from string: {message}") from None
    return {_URL: raw}


def _is_url(raw: str) -> bool:
    try:
        _go_parse(raw, request=True)
    except _URLError:
        return False
    return True


def _split_host_port(host: str) -> tuple[str, str]:
    colon = host.rfind(":")
    name, port = (
        (host[:colon], host[colon + 1 :])
        if colon >= 0 and _valid_port(host[colon:])
        else (host, "")
    )
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name, port


def _escaped_path(raw: str) -> str:
    if all(b in _ENCODED_PATH_OK for b in raw.encode()):
        return raw
    return "".join(chr(b) if b in _PATH_OK else f"%{b:02X}" for b in _unescape(raw, "path"))


def _query(raw: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for pair in raw.split("&"):
        if not pair or ";" in pair:
            continue
        key, _, value = pair.partition("=")
        try:
            k, v = (_unescape(s, "query").decode(errors="replace") for s in (key, value))
        except _URLError:
            continue
        found.setdefault(k, []).append(v)
    return found


def _url_part(pick: Callable[[_Parts], Any]) -> Callable[[Any], Any]:
    return lambda value: pick(_url_parts(_tagged(value, _URL)))


# IP addresses and CIDRs (kube's libraries, with Go's netip rules) ---------------------------

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class _AddrError(ValueError):
    """Go's ``netip.ParseAddr`` error."""

    def __init__(self, text: str, message: str, at: str = "") -> None:
        where = f" (at {_go_quote(at)})" if at else ""
        super().__init__(f"ParseAddr({_go_quote(text)}): {message}{where}")


def _ipv4_fields(text: str, part: str) -> bytes:
    fields: list[int] = []
    value = digits = 0
    for i, c in enumerate(part):
        if "0" <= c <= "9":
            if digits == 1 and value == 0:
                raise _AddrError(text, "IPv4 field has octet with leading zero")
            value, digits = value * 10 + ord(c) - 48, digits + 1
            if value > 255:
                raise _AddrError(text, "IPv4 field has value >255")
        elif c == ".":
            if i == 0 or i == len(part) - 1 or part[i - 1] == ".":
                raise _AddrError(text, "IPv4 field must have at least one digit", part[i:])
            if len(fields) == 3:
                raise _AddrError(text, "IPv4 address too long")
            fields.append(value)
            value = digits = 0
        else:
            raise _AddrError(text, "unexpected character", part[i:])
    if len(fields) < 3:
        raise _AddrError(text, "IPv4 address too short")
    return bytes([*fields, value])


def _ipv6(text: str) -> tuple[ipaddress.IPv6Address, str]:
    rest, _, zone = text.partition("%")
    if "%" in text and not zone:
        raise _AddrError(text, "zone must be a non-empty string")
    ip, ellipsis, i = bytearray(16), -1, 0
    if rest.startswith("::"):
        ellipsis, rest = 0, rest[2:]
        if not rest:
            return ipaddress.IPv6Address(0), zone
    while i < 16:
        off = acc = 0
        while off < len(rest) and rest[off] in "0123456789abcdefABCDEF":
            acc = acc * 16 + int(rest[off], 16)
            if off > 3:
                raise _AddrError(text, "each group must have 4 or less digits", rest)
            if acc > 0xFFFF:
                raise _AddrError(text, "IPv6 field has value >=2^16", rest)
            off += 1
        if not off:
            raise _AddrError(text, "each colon-separated field must have at least one digit", rest)
        if rest[off : off + 1] == ".":
            if ellipsis < 0 and i != 12:
                message = "embedded IPv4 address must replace the final 2 fields of the address"
                raise _AddrError(text, message, rest)
            if i + 4 > 16:
                message = "too many hex fields to fit an embedded IPv4 at the end of the address"
                raise _AddrError(text, message, rest)
            ip[i : i + 4], rest, i = _ipv4_fields(text, rest), "", i + 4
            break
        ip[i : i + 2], rest, i = acc.to_bytes(2, "big"), rest[off:], i + 2
        if not rest:
            break
        if rest[0] != ":":
            raise _AddrError(text, "unexpected character, want colon", rest)
        if len(rest) == 1:
            raise _AddrError(text, "colon must be followed by more characters", rest)
        rest = rest[1:]
        if rest[0] == ":":
            if ellipsis >= 0:
                raise _AddrError(text, "multiple :: in address", rest)
            ellipsis, rest = i, rest[1:]
            if not rest:
                break
    if rest:
        raise _AddrError(text, "trailing garbage after address", rest)
    if i < 16:
        if ellipsis < 0:
            raise _AddrError(text, "address string too short")
        ip[ellipsis + 16 - i :], ip[ellipsis : ellipsis + 16 - i] = ip[ellipsis:i], bytes(16 - i)
    elif ellipsis >= 0:
        raise _AddrError(text, "the :: must expand to at least one field of zeros", rest)
    return ipaddress.IPv6Address(bytes(ip)), zone


def _go_parse_addr(text: str) -> tuple[_Address, str]:
    """Go's ``netip.ParseAddr``: (address, zone), or its error."""
    for c in text:
        if c == ".":
            return ipaddress.IPv4Address(_ipv4_fields(text, text)), ""
        if c == ":":
            return _ipv6(text)
        if c == "%":
            raise _AddrError(text, "missing IPv6 address")
    raise _AddrError(text, "unable to parse IP")


def _parse_ip(raw: str) -> _Address:
    try:
        address, zone = _go_parse_addr(raw)
    except _AddrError as error:
        message = f"IP Address {_go_quote(raw)} parse error during conversion from string: {error}"
        raise _Refusal(message) from None
    if zone:
        raise _Refusal(f"IP address {_go_quote(raw)} with zone value is not allowed")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise _Refusal(f"IPv4-mapped IPv6 address {_go_quote(raw)} is not allowed")
    return address


def _ip(raw: str) -> dict[str, Any]:
    return {_IP: str(_parse_ip(raw))}


def _succeeds(parse: Callable[[str], Any]) -> Callable[[str], bool]:
    def check(raw: str) -> bool:
        try:
            parse(raw)
        except _Refusal:
            return False
        return True

    return check


def _ip_is_canonical(raw: str) -> bool:
    return str(_parse_ip(raw)) == raw


def _address(value: Any) -> _Address:
    return ipaddress.ip_address(_tagged(value, _IP))


_network = functools.cache(ipaddress.ip_network)


def _in(address: _Address, v4: str, v6: str) -> bool:
    return address in _network(v4 if address.version == 4 else v6)


def _is_global_unicast(address: _Address) -> bool:
    if address.version == 4 and int(address) in (0, 0xFFFFFFFF):
        return False
    return not (
        int(address) == 0
        or _in(address, "127.0.0.0/8", "::1/128")
        or _in(address, "224.0.0.0/4", "ff00::/8")
        or _in(address, "169.254.0.0/16", "fe80::/10")
    )


_IP_TESTS: dict[str, Callable[[_Address], bool]] = {
    "isUnspecified": lambda a: int(a) == 0,
    "isLoopback": lambda a: _in(a, "127.0.0.0/8", "::1/128"),
    "isLinkLocalMulticast": lambda a: (
        _in(a, "224.0.0.0/24", "::/128") if a.version == 4 else int(a) >> 112 & 0xFF0F == 0xFF02
    ),
    "isLinkLocalUnicast": lambda a: _in(a, "169.254.0.0/16", "fe80::/10"),
    "isGlobalUnicast": _is_global_unicast,
}

_Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
_BITS = re.compile(r"[0-9]|[1-9][0-9]+")
_CIDR_ERROR = "network address parse error during conversion from string: "


def _parse_cidr(raw: str) -> _Interface:
    """Go's ``netip.ParsePrefix`` (kube words its errors with the prefix twice)."""
    address, slash, bits = raw.rpartition("/")
    problem = "" if slash else "no '/'"
    if not problem:
        try:
            ip, zone = _go_parse_addr(address)
        except _AddrError as error:
            ip, zone, problem = None, "", str(error)
    if not problem and zone:
        problem = "IPv6 zones cannot be present in a prefix"
    if not problem and not (_BITS.fullmatch(bits) and bits.isascii()):
        problem = f"bad bits after slash: {_go_quote(bits)}"
    if not problem and ip is not None and int(bits) > ip.max_prefixlen:
        problem = "prefix length out of range"
    if problem or ip is None:
        raise _Refusal(f"{_CIDR_ERROR * 2}netip.ParsePrefix({_go_quote(raw)}): {problem}")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        raise _Refusal(f"{_CIDR_ERROR}IPv4-mapped IPv6 address {_go_quote(raw)} is not allowed")
    return ipaddress.ip_interface(f"{ip}/{bits}")


def _cidr(raw: str) -> dict[str, Any]:
    interface = _parse_cidr(raw)
    return {_CIDR: f"{interface.ip}/{interface.network.prefixlen}"}


def _interface(value: Any) -> _Interface:
    return ipaddress.ip_interface(_tagged(value, _CIDR))


def _contains_ip(cidr: Any, other: Any) -> bool:
    address = _parse_ip(other) if type(other) is str else _address(other)
    network = _interface(cidr).network
    return address.version == network.version and address in network


def _contains_cidr(cidr: Any, other: Any) -> bool:
    inner = (_parse_cidr(other) if type(other) is str else _interface(other)).network
    outer = _interface(cidr).network
    return (
        inner.version == outer.version
        and outer.prefixlen <= inner.prefixlen
        and inner.network_address in outer
    )


# Quantities (kube's library) ------------------------------------------------------------


def _quantity(raw: str) -> dict[str, Any]:
    try:
        return _as_value(quantities.parse(raw))
    except quantities.QuantityError as error:
        raise _Refusal(str(error)) from None


def _as_value(q: quantities.Quantity) -> dict[str, Any]:
    return {_QUANTITY: q.canonical()}


def _q(value: Any) -> quantities.Quantity:
    return quantities.parse(_tagged(value, _QUANTITY))


def _q_or_int(value: Any) -> quantities.Quantity:
    return quantities.Quantity.from_int(value) if type(value) is int else _q(value)


def _as_integer(value: Any) -> int:
    number = _q(value).as_int64()
    if number is None:
        raise _Refusal("cannot convert value to integer")
    return number


# Authorizer (kube's library) ------------------------------------------------------------


def _authz_value(value: Any) -> dict[str, Any]:
    if type(value) is dict and _AUTHORIZER in value:
        return value
    raise _Refusal(_NO_OVERLOAD)


def _authz_path(authz: Any, path: str) -> dict[str, Any]:
    authz = _authz_value(authz)
    if not path.strip():
        raise _Refusal("path must not be empty")
    return {_PATH_CHECK: authz[_AUTHORIZER], "user": authz["user"], "path": path}


def _authz_group(authz: Any, group: str) -> dict[str, Any]:
    authz = _authz_value(authz)
    return {_GROUP_CHECK: authz[_AUTHORIZER], "user": authz["user"], "group": group}


def _authz_service_account(authz: Any, namespace: str, name: str) -> dict[str, Any]:
    context = _authz_value(authz)[_AUTHORIZER]
    if names.dns1123_subdomain(name):
        raise _Refusal("Invalid service account name")
    if names.dns1123_label(namespace):
        raise _Refusal("Invalid service account namespace")
    return {_AUTHORIZER: context, "user": [namespace, name]}


def _group_resource(check: Any, resource: str) -> dict[str, Any]:
    if not resource.strip():
        raise _Refusal("resource must not be empty")
    return {
        _RESOURCE_CHECK: _tagged(check, _GROUP_CHECK),
        "user": check["user"],
        "group": check["group"],
        "resource": resource,
        "subresource": "",
        "namespace": "",
        "name": "",
        "fieldSelector": "",
        "labelSelector": "",
    }


def _resource_with(key: str) -> Callable[[Any, str], dict[str, Any]]:
    def set_field(check: Any, value: str) -> dict[str, Any]:
        _tagged(check, _RESOURCE_CHECK)
        return {**check, key: value}

    return set_field


def _check(check: Any, verb: str) -> dict[str, Any]:
    if type(check) is dict and _RESOURCE_CHECK in check:
        context, path = check[_RESOURCE_CHECK], ""
        keys = ("group", "resource", "subresource", "namespace", "name")
        attributes: tuple[str, ...] = tuple(check[k] for k in keys)
    else:
        context, path = _tagged(check, _PATH_CHECK), check["path"]
        attributes = ("", "", "", "", "")
    return _context(context)._authorize(check["user"], attributes, verb, path)


def _decision(pick: Callable[[dict[str, Any]], Any]) -> Callable[[Any], Any]:
    def read(decision: Any) -> Any:
        _tagged(decision, _DECISION)
        return pick(decision)

    return read


# Composited variables -------------------------------------------------------------------


def _reader(form: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    return lambda handle, name: form(_context(_tagged(handle, _CONTEXT)), name)


def _plain_variable(context: Context, name: str) -> Any:
    kind, value = context._variable(name)
    if kind.startswith("optional_type"):
        return value[0]
    if isinstance(value, datetime.datetime | datetime.timedelta):
        raise _Refusal(f'composited variable "{name}" holds a timestamp or duration of type dyn')
    return value


def _has_variable(context: Context, name: str) -> bool:
    if name not in context._variables:
        return False
    context._variable(name)
    return True


def _timestamp_variable(context: Context, name: str) -> str:
    return str(_formattable(context._variable(name)[1]))


def _duration_variable(context: Context, name: str) -> str:
    return f"{context._variable(name)[1] // datetime.timedelta(microseconds=1)}us"


# The environment ------------------------------------------------------------------------

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
        _member("charAt", [_S, _I], _S, _char_at),
        _function(
            "indexOf",
            (True, [_S, _S], _I, _index_of),
            (True, [_S, _S, _I], _I, _index_of),
            (True, [_LIST, _ANY], _I, _list_index),
        ),
        _function(
            "lastIndexOf",
            (True, [_S, _S], _I, _last_index_of),
            (True, [_S, _S, _I], _I, _last_index_of),
            (True, [_LIST, _ANY], _I, _list_last_index),
        ),
        _member("lowerAscii", [_S], _S, lambda s: s.translate(_LOWER)),
        _member("upperAscii", [_S], _S, lambda s: s.translate(_UPPER)),
        _function(
            "replace",
            (True, [_S, _S, _S], _S, lambda s, old, new: s.replace(old, new)),
            (True, [_S, _S, _S, _I], _S, lambda s, old, new, n: s.replace(old, new, max(n, -1))),
        ),
        _function(
            "split",
            (True, [_S, _S], _T.List(_S), _split),
            (True, [_S, _S, _I], _T.List(_S), _split),
        ),
        _function(
            "substring", (True, [_S, _I], _S, _substring), (True, [_S, _I, _I], _S, _substring)
        ),
        _member("trim", [_S], _S, lambda s: s.strip(_GO_SPACE)),
        _function("join", (True, [_LIST], _S, _join), (True, [_LIST, _S], _S, _join)),
        _function(
            "reverse",
            (True, [_S], _S, lambda s: s[::-1]),
            (True, [_LIST], _LIST, lambda v: v[::-1]),
        ),
        _member("format", [_S, _LIST], _S, _format),
        _global("strings.quote", [_S], _S, _quote),
        # kube's lists, cel-go's lists and sets
        _member("isSorted", [_LIST], _B, _is_sorted),
        _member("sum", [_LIST], _T.DYN, _sum),
        _member("min", [_LIST], _T.DYN, _extreme("min", 1)),
        _member("max", [_LIST], _T.DYN, _extreme("max", -1)),
        _member("includes", [_LIST, _ANY], _B, _includes),
        _member("distinct", [_LIST], _LIST, _distinct),
        _function(
            "flatten", (True, [_LIST], _LIST, _flatten), (True, [_LIST, _I], _LIST, _flatten)
        ),
        _member("slice", [_LIST, _I, _I], _LIST, _slice),
        _member("sort", [_LIST], _LIST, _sort),
        _global("lists.range", [_I], _T.List(_I), lambda n: list(range(n))),
        _global("sets.contains", [_LIST, _LIST], _B, lambda a, b: all(_includes(a, x) for x in b)),
        _global(
            "sets.equivalent",
            [_LIST, _LIST],
            _B,
            lambda a, b: all(_includes(b, x) for x in a) and all(_includes(a, x) for x in b),
        ),
        _global(
            "sets.intersects", [_LIST, _LIST], _B, lambda a, b: any(_includes(b, x) for x in a)
        ),
        # regex
        _member("find", [_S, _S], _S, _find),
        _function(
            "findAll",
            (True, [_S, _S], _T.List(_S), _find_all),
            (True, [_S, _S, _I], _T.List(_S), _find_all),
        ),
        # URLs
        _global("url", [_S], m, _url),
        _global("isURL", [_S], _B, _is_url),
        _member("getScheme", [m], _S, _url_part(lambda p: p.scheme)),
        _member("getHost", [m], _S, _url_part(lambda p: p.host)),
        _member("getHostname", [m], _S, _url_part(lambda p: _split_host_port(p.host)[0])),
        _member("getPort", [m], _S, _url_part(lambda p: _split_host_port(p.host)[1])),
        _member("getEscapedPath", [m], _S, _url_part(lambda p: _escaped_path(p.path))),
        _member("getQuery", [m], _T.Map(_S, _T.List(_S)), _url_part(lambda p: _query(p.query))),
        # quantities
        _global("quantity", [_S], m, _quantity),
        _global("isQuantity", [_S], _B, _succeeds(_quantity)),
        _function(
            "sign",
            (False, [m], _I, lambda q: _q(q).sign()),
            (True, [m], _I, lambda q: _q(q).sign()),
        ),
        _member("isGreaterThan", [m, m], _B, lambda a, b: _q(a).compare(_q(b)) > 0),
        _member("isLessThan", [m, m], _B, lambda a, b: _q(a).compare(_q(b)) < 0),
        _member("compareTo", [m, m], _I, lambda a, b: _q(a).compare(_q(b))),
        _member("asApproximateFloat", [m], _D, lambda q: _q(q).as_approximate_float()),
        _member("asInteger", [m], _I, _as_integer),
        _member("isInteger", [m], _B, lambda q: _q(q).as_int64() is not None),
        _function(
            "add",
            (True, [m, m], m, lambda a, b: _as_value(_q(a).add(_q_or_int(b)))),
            (True, [m, _I], m, lambda a, b: _as_value(_q(a).add(_q_or_int(b)))),
        ),
        _function(
            "sub",
            (True, [m, m], m, lambda a, b: _as_value(_q(a).sub(_q_or_int(b)))),
            (True, [m, _I], m, lambda a, b: _as_value(_q(a).sub(_q_or_int(b)))),
        ),
        # IPs and CIDRs
        _function(
            "ip",
            (False, [_S], m, _ip),
            (True, [m], m, lambda c: {_IP: str(_interface(c).ip)}),
        ),
        _global("isIP", [_S], _B, _succeeds(_parse_ip)),
        _global("ip.isCanonical", [_S], _B, _ip_is_canonical),
        _member("family", [m], _I, lambda a: _address(a).version),
        *(_member(n, [m], _B, lambda a, t=test: t(_address(a))) for n, test in _IP_TESTS.items()),
        _global("cidr", [_S], m, _cidr),
        _global("isCIDR", [_S], _B, _succeeds(_parse_cidr)),
        _function(
            "containsIP", (True, [m, _S], _B, _contains_ip), (True, [m, m], _B, _contains_ip)
        ),
        _function(
            "containsCIDR", (True, [m, _S], _B, _contains_cidr), (True, [m, m], _B, _contains_cidr)
        ),
        _member("prefixLength", [m], _I, lambda c: _interface(c).network.prefixlen),
        _member("masked", [m], m, lambda c: {_CIDR: str(_interface(c).network)}),
        # authorizer
        _member("path", [m, _S], m, _authz_path),
        _member("group", [m, _S], m, _authz_group),
        _member("serviceAccount", [m, _S, _S], m, _authz_service_account),
        _member("resource", [m, _S], m, _group_resource),
        *(
            _member(key, [m, _S], m, _resource_with(key))
            for key in ("subresource", "namespace", "name", "fieldSelector", "labelSelector")
        ),
        _member("check", [m, _S], m, _check),
        _member("allowed", [m], _B, _decision(lambda d: d[_DECISION] == ALLOW)),
        _member("reason", [m], _S, _decision(lambda d: d["reason"])),
        _member("errored", [m], _B, _decision(lambda d: bool(d["error"]))),
        _member("error", [m], _S, _decision(lambda d: d["error"])),
        # composited variables (see _rewrite)
        _global("_vap_variable", [m, _S], _T.DYN, _reader(_plain_variable)),
        _global("_vap_has_variable", [m, _S], _B, _reader(_has_variable)),
        _global("_vap_present", [m, _S], _B, _reader(lambda c, n: bool(c._variable(n)[1]))),
        _global("_vap_timestamp", [m, _S], _S, _reader(_timestamp_variable)),
        _global("_vap_duration", [m, _S], _S, _reader(_duration_variable)),
    ]
    return decls


_ENV_LOCK = threading.Lock()
_ENV: Any = None


def _environment() -> Any:
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


# Rewriting reads of composited variables --------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<space>\s+|//[^\n]*)
    |(?P<string>(?:[rR][bB]?|[bB][rR])(?:'''.*?'''|\"\"\".*?\"\"\"|'[^'\n]*'|"[^"\n]*")
      |[bB]?(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^'\\\n])*'
      |"(?:\\.|[^"\\\n])*"))
    |(?P<number>0[xX][0-9a-fA-F]+[uU]?|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[uU]?|\.\d+(?:[eE][+-]?\d+)?)
    |(?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)
    |(?P<quoted>`[^`]*`)
    |(?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)

_CASTS = frozenset({"bool", "int", "uint", "double", "string", "bytes"})


def _read(kind: str, name: str) -> str:
    """How an expression reads a variable of that kind: typed as kube types it, and, since
    Python functions cannot hand timestamps, durations or optionals to CEL, these travel as
    strings or lists."""
    plain = f"_vap_variable(variables, {name})"
    if kind in _CASTS:
        return f"{kind}({plain})"
    if kind == _TIMESTAMP_TYPE:
        return f"timestamp(_vap_timestamp(variables, {name}))"
    if kind == _DURATION_TYPE:
        return f"duration(_vap_duration(variables, {name}))"
    if kind.startswith("optional_type"):
        return f"(_vap_present(variables, {name}) ? optional.of({plain}) : optional.none())"
    return plain


def _read_kind(output_type: str) -> str:
    """The kind of read (see _read) of a variable with that output type."""
    if output_type.startswith("optional_type") or output_type in _CASTS:
        return output_type
    return output_type if output_type in (_TIMESTAMP_TYPE, _DURATION_TYPE) else ""


_SIMPLE_STRING = re.compile(r"""(['"])[_a-zA-Z][_a-zA-Z0-9]*\1""")


class _Token(NamedTuple):
    kind: str
    text: str
    start: int
    end: int


def _rewrite(text: str, kinds: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """``text`` with its reads of ``variables.<name>`` going through the Context (the form of
    a read depending on the variable's kind, see _read), and the names read."""
    if "variables" not in text:
        return text, ()
    tokens = [
        _Token(m.lastgroup or "", m[0], m.start(), m.end())
        for m in _TOKEN.finditer(text)
        if m.lastgroup != "space"
    ]
    edits: list[tuple[int, int, str]] = []
    names: dict[str, None] = {}
    for i, token in enumerate(tokens):
        if token.text != "variables" or (i and tokens[i - 1].text == "."):
            continue
        texts = [t.text for t in tokens[i + 1 : i + 5]]
        kinds_after = [t.kind for t in tokens[i + 1 : i + 5]]
        if texts[:2] == [".", "?"] and kinds_after[2:3] == ["ident"]:
            last, name, optional = i + 3, texts[2], True
        elif texts[:1] == ["."] and kinds_after[1:2] == ["ident"]:
            last, name, optional = i + 2, texts[1], False
        elif texts[:1] == ["["] and texts[2:3] == ["]"] and _SIMPLE_STRING.fullmatch(texts[1]):
            last, name, optional = i + 3, texts[1][1:-1], False
        else:
            continue
        names[name] = None
        quoted = f'"{name}"'
        around = [t.text for t in tokens[max(i - 3, 0) : i]]
        closing = tokens[last + 1 : last + 2]
        presence = around[-2:] == ["has", "("] and around[-3:-2] != ["."]
        if presence and not optional and [t.text for t in closing] == [")"]:
            has = f"_vap_has_variable(variables, {quoted})"
            edits.append((tokens[i - 2].start, closing[0].end, has))
            continue
        read = _read(kinds.get(name, ""), quoted)
        edits.append((token.start, tokens[last].end, f"optional.of({read})" if optional else read))
    for start, end, replacement in reversed(edits):
        text = text[:start] + replacement + text[end:]
    return text, tuple(names)


# Expressions ----------------------------------------------------------------------------

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
    """Compiled for variables of known kinds (see _read), by the kinds of ``_reads``."""

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
        return _from_library(value)

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
                kinds.append(_read_kind(expression._output_type(variables, seen | {name})))
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
        raise EvaluationError(_clean(str(error))) from None


def _plain(result: Any) -> Any:
    if result.type().name() == "ERROR":
        raise EvaluationError(_clean(result.value()))
    try:
        return result.plain_value()
    except TypeError:  # an optional where the checker saw dyn
        raise EvaluationError(f"unsupported result type: {result.type().name()}") from None


_TYPE_NAMES = {"TIMESTAMP": _TIMESTAMP_TYPE, "DURATION": _DURATION_TYPE}


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
    env = _environment()
    rewritten, reads = _rewrite(text, kinds)
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
        raise CompileError(_compile_message(error)) from None
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


# Contexts -------------------------------------------------------------------------------

_CONTEXTS: weakref.WeakValueDictionary[int, Context] = weakref.WeakValueDictionary()
_IDS = itertools.count(1)
_BUSY = object()


def _context(key: int) -> Context:
    found = _CONTEXTS.get(key)
    if found is None:
        raise _Refusal("the admission request of this value is over")
    return found


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
        self._authorizer = authorizer
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
        self._decisions: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._key = next(_IDS)
        _CONTEXTS[self._key] = self

    def _bindings(self) -> Any:
        """The bindings, converted for the library once per Context."""
        if self._activation is None:
            data = dict(self._data, variables={_CONTEXT: self._key}, authorizer=None)
            if self._authorizer is not None:
                data["authorizer"] = {_AUTHORIZER: self._key, "user": None}
                data["authorizer"]["requestResource"] = self._request_resource()
            self._activation = _environment().Activation(data)
        return self._activation

    def _request_resource(self) -> dict[str, Any]:
        """kube's ``authorizer.requestResource``: a check of the request's own resource."""
        request = self._data["request"] if isinstance(self._data["request"], dict) else {}
        resource = request.get("resource") or {}
        return {
            _RESOURCE_CHECK: self._key,
            "user": None,
            "group": resource.get("group", ""),
            "resource": resource.get("resource", ""),
            "subresource": request.get("subResource") or "",
            "namespace": request.get("namespace") or "",
            "name": request.get("name") or "",
            "fieldSelector": "",
            "labelSelector": "",
        }

    def _kinds(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """How expressions read these variables (see _read)."""
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
                kind = self._read_kinds[name] = _read_kind(output)
            kinds.append(kind)
        return tuple(kinds)

    def _variable(self, name: str) -> tuple[str, Any]:
        """A composited variable's (kind, value), evaluated on first use."""
        with self._lock:
            found = self._values.get(name)
            if found is None:
                expression = self._variables.get(name)
                if expression is None:
                    raise _Refusal(f"no such key: {name}")
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
                raise _Refusal(f'composited variable "{name}" refers to itself')
        ok, value = found
        if not ok:
            raise _Refusal(value)
        return self._kinds((name,))[0], value

    def _authorize(
        self, user: list[str] | None, attributes: tuple[str, ...], verb: str, path: str
    ) -> dict[str, Any]:
        """A decision of the authorizer, asked once per distinct check of this Context."""
        key = (tuple(user or ()), attributes, verb, path)
        with self._lock:
            known = self._decisions.get(key)
        if known is not None:
            return known
        decision, reason, error = NO_OPINION, "", ""
        try:
            authorizer = self._authorizer_for(user)
            group, resource, subresource, namespace, name = attributes
            decision, reason = authorizer(
                group=group,
                resource=resource,
                subresource=subresource,
                namespace=namespace,
                name=name,
                verb=verb,
                path=path,
            )
        except Exception as failure:  # any failure of the authorizer is an errored decision
            error = str(failure) or type(failure).__name__
        found = {_DECISION: decision, "reason": reason, "error": error}
        with self._lock:
            return self._decisions.setdefault(key, found)

    def _authorizer_for(self, user: list[str] | None) -> Authorizer:
        authorizer = self._authorizer
        if authorizer is None:
            raise _Refusal("no authorizer")
        if not user:
            return authorizer
        namespace, name = user
        for_user = getattr(authorizer, "for_user", None)
        if for_user is None:
            raise RuntimeError("the authorizer cannot check for service accounts")
        groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}")
        scoped: Authorizer = for_user(f"system:serviceaccount:{namespace}:{name}", groups)
        return scoped
