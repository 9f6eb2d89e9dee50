"""Go's duration syntax (``time.ParseDuration``), for kube's ``?timeout=`` query parameter.

Clients send what Go prints (kubectl's discovery sends ``timeout=32s``), and a value Go would
refuse is refused with Go's words, which kube-apiserver passes on in its 400.
"""

from __future__ import annotations

_NANOSECONDS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek small letter mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_MAX = 1 << 63  # Go's Duration is an int64 of nanoseconds
_NUMBER = frozenset(".0123456789")


def parse_duration(text: str) -> float:
    """Seconds in ``text`` (``"1.5h"``, ``"300ms"``, ``"-2m3s"``, ``"0"``); ValueError with Go's
    message when Go would refuse it."""
    rest = text
    negative = rest[:1] == "-"
    if rest[:1] in ("-", "+"):
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(f"time: invalid duration {_quote(text)}")
    total = 0.0
    while rest:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        whole, rest = rest[:digits], rest[digits:]
        fraction = ""
        if rest[:1] == ".":
            rest = rest[1:]
            digits = len(rest) - len(rest.lstrip("0123456789"))
            fraction, rest = rest[:digits], rest[digits:]
            if not whole and not fraction:
                raise ValueError(f"time: invalid duration {_quote(text)}")
        elif not whole:
            raise ValueError(f"time: invalid duration {_quote(text)}")
        end = next((i for i, c in enumerate(rest) if c in _NUMBER), len(rest))
        if end == 0:
            raise ValueError(f"time: missing unit in duration {_quote(text)}")
        unit, rest = rest[:end], rest[end:]
        if unit not in _NANOSECONDS:
            raise ValueError(f"time: unknown unit {_quote(unit)} in duration {_quote(text)}")
        scale = _NANOSECONDS[unit]
        total += int(whole or "0") * scale
        if fraction:
            total += int(fraction) * scale / 10 ** len(fraction)
        if total > _MAX - (0 if negative else 1):
            raise ValueError(f"time: invalid duration {_quote(text)}")
    return (-total if negative else total) / 1e9


def _quote(text: str) -> str:
    """Go's ``time.quote``: double quotes, ``\\`` and ``"`` escaped, other bytes outside
    printable ASCII as ``\\xNN``."""
    out: list[str] = []
    for char in text:
        if char < " " or char >= "\x80":
            out.extend(f"\\x{byte:02x}" for byte in char.encode())
        else:
            out.append("\\" + char if char in '"\\' else char)
    return '"' + "".join(out) + '"'
