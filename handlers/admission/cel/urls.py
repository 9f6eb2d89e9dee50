"""kube's URL library (``url``, ``isURL`` and a URL's getters), with Go's ``net/url`` rules
and errors: a URL travels in CEL as its text, parsed again by each getter (and cached)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

from handlers.admission.cel.messages import go_quote
from handlers.admission.cel.values import URL, Refusal, tagged

_UNRESERVED = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~")
_HOST_OK = frozenset(b"!$&'()*+,;=:[]<>\"") | _UNRESERVED
_PATH_OK = frozenset(b"$&+,/:;=@") | _UNRESERVED
_ENCODED_PATH_OK = frozenset(b"!$&'()*+,;=:@[]%") | _PATH_OK
_USERINFO_OK = frozenset(b"-._:~!$&'()*+,;=%@") | _UNRESERVED
_HEX = frozenset(b"0123456789abcdefABCDEF")


class _URLError(Exception):
    pass


def _unescape(text: str, mode: str) -> bytes:
    raw, out, i = text.encode(), bytearray(), 0
    while i < len(raw):
        c = raw[i]
        if c == 0x25:  # %
            if i + 2 >= len(raw) or raw[i + 1] not in _HEX or raw[i + 2] not in _HEX:
                bad = raw[i : i + 3].decode(errors="replace")
                raise _URLError(f"invalid URL escape {go_quote(bad)}")
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
            continue
        if mode == "host" and c < 0x80 and c not in _HOST_OK:
            raise _URLError(f"invalid character {go_quote(chr(c))} in host name")
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
        raise _URLError(f"invalid port {go_quote(port)} after host")
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


def url(raw: str) -> dict[str, Any]:
    try:
        _go_parse(raw, request=True)
        _url_parts(raw)
    except _URLError as error:
        message = f"parse {go_quote(raw)}: {error}"
        raise Refusal(f"URL parse error during conversion from string: {message}") from None
    return {URL: raw}


def is_url(raw: str) -> bool:
    try:
        _go_parse(raw, request=True)
    except _URLError:
        return False
    return True


def split_host_port(host: str) -> tuple[str, str]:
    colon = host.rfind(":")
    name, port = (
        (host[:colon], host[colon + 1 :])
        if colon >= 0 and _valid_port(host[colon:])
        else (host, "")
    )
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name, port


def escaped_path(raw: str) -> str:
    if all(b in _ENCODED_PATH_OK for b in raw.encode()):
        return raw
    return "".join(chr(b) if b in _PATH_OK else f"%{b:02X}" for b in _unescape(raw, "path"))


def query(raw: str) -> dict[str, list[str]]:
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


def url_part(pick: Callable[[_Parts], Any]) -> Callable[[Any], Any]:
    return lambda value: pick(_url_parts(tagged(value, URL)))
