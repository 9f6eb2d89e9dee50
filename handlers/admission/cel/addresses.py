"""kube's IP and CIDR libraries, with Go's ``netip`` rules and errors: an IP or CIDR travels
in CEL as its canonical text."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from typing import Any

from handlers.admission.cel.messages import go_quote
from handlers.admission.cel.values import CIDR, IP, Refusal, tagged

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class _AddrError(ValueError):
    """Go's ``netip.ParseAddr`` error."""

    def __init__(self, text: str, message: str, at: str = "") -> None:
        where = f" (at {go_quote(at)})" if at else ""
        super().__init__(f"ParseAddr({go_quote(text)}): {message}{where}")


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


def parse_ip(raw: str) -> _Address:
    try:
        address, zone = _go_parse_addr(raw)
    except _AddrError as error:
        message = f"IP Address {go_quote(raw)} parse error during conversion from string: {error}"
        raise Refusal(message) from None
    if zone:
        raise Refusal(f"IP address {go_quote(raw)} with zone value is not allowed")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise Refusal(f"IPv4-mapped IPv6 address {go_quote(raw)} is not allowed")
    return address


def ip(raw: str) -> dict[str, Any]:
    return {IP: str(parse_ip(raw))}


def ip_is_canonical(raw: str) -> bool:
    return str(parse_ip(raw)) == raw


def address_of(value: Any) -> _Address:
    return ipaddress.ip_address(tagged(value, IP))


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


IP_TESTS: dict[str, Callable[[_Address], bool]] = {
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


def parse_cidr(raw: str) -> _Interface:
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
        problem = f"bad bits after slash: {go_quote(bits)}"
    if not problem and ip is not None and int(bits) > ip.max_prefixlen:
        problem = "prefix length out of range"
    if problem or ip is None:
        raise Refusal(f"{_CIDR_ERROR * 2}netip.ParsePrefix({go_quote(raw)}): {problem}")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        raise Refusal(f"{_CIDR_ERROR}IPv4-mapped IPv6 address {go_quote(raw)} is not allowed")
    return ipaddress.ip_interface(f"{ip}/{bits}")


def cidr(raw: str) -> dict[str, Any]:
    interface = parse_cidr(raw)
    return {CIDR: f"{interface.ip}/{interface.network.prefixlen}"}


def interface_of(value: Any) -> _Interface:
    return ipaddress.ip_interface(tagged(value, CIDR))


def contains_ip(cidr: Any, other: Any) -> bool:
    address = parse_ip(other) if type(other) is str else address_of(other)
    network = interface_of(cidr).network
    return address.version == network.version and address in network


def contains_cidr(cidr: Any, other: Any) -> bool:
    inner = (parse_cidr(other) if type(other) is str else interface_of(other)).network
    outer = interface_of(cidr).network
    return (
        inner.version == outer.version
        and outer.prefixlen <= inner.prefixlen
        and inner.network_address in outer
    )
