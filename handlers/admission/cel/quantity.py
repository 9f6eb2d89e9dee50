"""Kubernetes resource quantities ("1.5Gi", "500m", "1e3"), parsed as apimachinery's
``resource.ParseQuantity`` parses them, for the ``quantity()`` functions of CEL expressions.

No maintained Python library parses them, hence this small parser. Values are exact: an
integer mantissa times a power of ten (binary suffixes multiply by powers of two, which stay
finite decimals). As apimachinery, parsing rounds a non-zero value up (away from zero) to a
multiple of 1n and caps a binary-suffixed value at 2^63-1.

apimachinery keeps two representations (an int64 amount or an ``inf.Dec``), and a few of its
answers depend on which one a value landed in: ``quantity("1.0").isInteger()`` is false there.
Here a quantity is only its value (which is what equality compares in kube too): a value is an
integer if it has no fraction and fits an int64.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

FORMAT_WRONG = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
NUMERIC = "unable to parse numeric part of quantity"
SUFFIX = "unable to parse quantity's suffix"

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXPONENT = {e: s for s, e in _DECIMAL.items()}
_BINARY_BY_EXPONENT = {e: s for s, e in _BINARY.items()}
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_INT64_MAX = 2**63 - 1
_MAX_EXPONENT = 1000
"""Beyond this, values would take unbounded time and memory to compute; kube's are no better."""


class QuantityError(ValueError):
    """The string is not a quantity; the message is apimachinery's."""


def _split(text: str) -> tuple[bool, str, str, str]:
    """(positive, integer digits, fraction digits, suffix), scanning as apimachinery does."""
    positive, pos, end = True, 0, len(text)
    if text[:1] in ("-", "+"):
        positive, pos = text[0] == "+", 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    start = pos
    while pos < end and text[pos].isdigit() and text[pos].isascii():
        pos += 1
    num = text[start:pos] or "0"
    denom = ""
    if pos < end and text[pos] == ".":
        start = pos = pos + 1
        while pos < end and text[pos].isdigit() and text[pos].isascii():
            pos += 1
        denom = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in "0123456789":
        pos += 1
    if pos < end:
        raise QuantityError(FORMAT_WRONG)
    return positive, num, denom, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) of a suffix."""
    if suffix in _DECIMAL:
        return 10, _DECIMAL[suffix], DECIMAL_SI
    if suffix in _BINARY:
        return 2, _BINARY[suffix], BINARY_SI
    digits = suffix[1:]
    sign_free = digits[1:] if digits[:1] in ("+", "-") else digits
    if len(suffix) > 1 and suffix[0] in "eE" and sign_free.isdigit() and sign_free.isascii():
        exponent = int(digits)
        if not -(2**63) <= exponent < 2**63:
            raise QuantityError(SUFFIX)
        return 10, (exponent + 2**31) % 2**32 - 2**31, DECIMAL_EXPONENT  # Go's int32() of it
    raise QuantityError(SUFFIX)


def _normal(mantissa: int, exponent: int) -> tuple[int, int]:
    """Trailing zeros of the mantissa moved into the exponent (zero is 0e0)."""
    if mantissa == 0:
        return 0, 0
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    return mantissa, exponent


@functools.total_ordering
@dataclass(frozen=True, eq=False)
class Quantity:
    """A value ``mantissa * 10**exponent`` (normalized) and the format it prints in. Equality,
    ordering and hashing compare values only, as kube's ``Quantity.Cmp``."""

    mantissa: int
    exponent: int
    format: str = DECIMAL_SI

    @classmethod
    def parse(cls, text: str) -> Quantity:
        if not text:
            raise QuantityError(FORMAT_WRONG)
        positive, num, denom, suffix = _split(text)
        base, exponent, fmt = _interpret(suffix)
        digits = int(num + denom)
        scale = -len(denom)
        if base == 10:
            scale += exponent
        else:
            digits <<= exponent
        if not digits:
            return cls(0, 0, fmt)
        if scale > _MAX_EXPONENT:
            raise QuantityError(NUMERIC)
        if scale < -9:  # rounds up to a multiple of 1n, away from zero
            shift = -9 - scale
            digits = 1 if shift > len(str(digits)) else -(-digits // 10**shift)
            scale = -9
        if fmt == BINARY_SI:
            if (digits * 10**scale if scale >= 0 else digits // 10**-scale) >= _INT64_MAX:
                digits, scale = _INT64_MAX, 0
            elif scale < 0 and digits < 10**-scale:
                fmt = DECIMAL_SI  # a fraction of one prints as DecimalSI
        if not positive:
            digits = -digits
        return cls(*_normal(digits, scale), fmt)

    @classmethod
    def from_int(cls, value: int) -> Quantity:
        return cls(*_normal(value, 0), DECIMAL_EXPONENT)

    def _aligned(self, other: Quantity) -> tuple[int, int, int]:
        low = min(self.exponent, other.exponent)
        return (
            self.mantissa * 10 ** (self.exponent - low),
            other.mantissa * 10 ** (other.exponent - low),
            low,
        )

    def compare(self, other: Quantity) -> int:
        """-1, 0 or 1, as kube's ``compareTo``."""
        a, b, _ = self._aligned(other)
        return (a > b) - (a < b)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return (self.mantissa, self.exponent) == (other.mantissa, other.exponent)

    def __lt__(self, other: Quantity) -> bool:
        return self.compare(other) < 0

    def __hash__(self) -> int:
        return hash((self.mantissa, self.exponent))

    def add(self, other: Quantity) -> Quantity:
        """The sum; takes the other's format when this one is zero (as apimachinery's Add)."""
        a, b, low = self._aligned(other)
        return Quantity(*_normal(a + b, low), other.format if not self.mantissa else self.format)

    def sub(self, other: Quantity) -> Quantity:
        return self.add(Quantity(-other.mantissa, other.exponent, other.format))

    def sign(self) -> int:
        return (self.mantissa > 0) - (self.mantissa < 0)

    def as_int64(self) -> int | None:
        """The value as an int64, or None if it has a fraction or does not fit."""
        if not 0 <= self.exponent <= 19:
            return None
        value = self.mantissa * 10**self.exponent
        return value if -(2**63) <= value <= _INT64_MAX else None

    def as_approximate_float(self) -> float:
        try:
            if self.exponent >= 0:
                return float(self.mantissa * 10**self.exponent)
            return float(self.mantissa / 10**-self.exponent)
        except OverflowError:
            return math.copysign(math.inf, self.mantissa)

    def canonical(self, fmt: str = DECIMAL_SI) -> str:
        """apimachinery's canonical string in ``fmt`` (the largest suffix that keeps the
        mantissa an integer); BinarySI falls back to DecimalSI below 1024 or for fractions."""
        if not self.mantissa:
            return "0"
        if fmt == BINARY_SI and self.exponent >= 0:
            value = self.mantissa * 10**self.exponent
            if abs(value) >= 1024:
                power = 0
                while power < 60 and value % 1024 == 0:
                    value //= 1024
                    power += 10
                return f"{value}{_BINARY_BY_EXPONENT.get(power, '')}"
        exponent = self.exponent - self.exponent % 3
        mantissa = self.mantissa * 10 ** (self.exponent - exponent)
        if fmt == DECIMAL_EXPONENT:
            return f"{mantissa}e{exponent}" if exponent else str(mantissa)
        if exponent > 18:
            mantissa, exponent = mantissa * 10 ** (exponent - 18), 18
        return f"{mantissa}{_DECIMAL_BY_EXPONENT[exponent]}"

    def __str__(self) -> str:
        return self.canonical(self.format)

    def __repr__(self) -> str:
        return f"Quantity({str(self)!r})"


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Quantity:
    """``text`` as a quantity; raises QuantityError with apimachinery's message. Remembers the
    last few thousand texts: policies read the same few quantities over and over."""
    return Quantity.parse(text)
