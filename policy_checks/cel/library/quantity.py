"""Kubernetes' quantity library: `quantity()`, `isQuantity()` and the members of
`kubernetes.Quantity`, ported from k8s.io/apiserver `pkg/cel/library/quantity.go` and
`pkg/cel/quantity.go` (commit 24a394e516bf), over a port of the resource.Quantity they wrap
(k8s.io/apimachinery `pkg/api/resource/{quantity,amount,math,suffix}.go`, commit eed236ceee2c,
the one that apiserver commit requires).

A quantity is held as Kubernetes holds it: an int64 scaled by a power of ten (`int64Amount`) or
an arbitrary decimal (`inf.Dec`), and which one it is shows (`quantity('1000m').isInteger()` is
false, `quantity('1').isInteger()` true, `quantity('1.5Gi').asInteger()` an error). Its value is
the opaque value's text, in Kubernetes' DecimalSI canonical form, so that the engine's equality
is Kubernetes' (`quantity('1') == quantity('1000m')`); which form holds it, and its scale, are the
value's state (`policy_checks.cel.messages`), which equality ignores.

Arithmetic is exact (`decimal` with the precision of the operands) and never expands a number's
digits to reach an exponent: `quantity('1e2000000000')` stays a few bytes, where Go would build a
two-billion-digit integer. A result that needs more than `MAX_DIGITS` digits is an error.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from policy_checks.cel import messages
from policy_checks.cel.library import (
    Function,
    Library,
    function,
    implemented,
    member,
    refusal,
)

QUANTITY = "kubernetes.Quantity"

_QUANTITY_FUNCTIONS = (
    Function("quantity", (function("string_to_quantity", ("string",), QUANTITY, None),)),
    Function("isQuantity", (function("is_quantity_string", ("string",), "bool", None),)),
    # A global function in Kubernetes (cel.Overload, not cel.MemberOverload): `sign(q)`; its
    # documentation's `q.sign()` does not compile there.
    Function("sign", (function("quantity_sign", (QUANTITY,), "int", None),)),
    Function(
        "isGreaterThan",
        (member("quantity_is_greater_than", QUANTITY, (QUANTITY,), "bool", None),),
    ),
    Function("isLessThan", (member("quantity_is_less_than", QUANTITY, (QUANTITY,), "bool", None),)),
    Function("compareTo", (member("quantity_compare_to", QUANTITY, (QUANTITY,), "int", None),)),
    Function("asApproximateFloat", (member("quantity_get_float", QUANTITY, (), "double", None),)),
    Function("asInteger", (member("quantity_get_int", QUANTITY, (), "int", None),)),
    Function("isInteger", (member("quantity_is_integer", QUANTITY, (), "bool", None),)),
    Function(
        "add",
        (
            member("quantity_add", QUANTITY, (QUANTITY,), QUANTITY, None),
            member("quantity_add_int", QUANTITY, ("int",), QUANTITY, None),
        ),
    ),
    Function(
        "sub",
        (
            member("quantity_sub", QUANTITY, (QUANTITY,), QUANTITY, None),
            member("quantity_sub_int", QUANTITY, ("int",), QUANTITY, None),
        ),
    ),
)

# resource.ErrFormatWrong, ErrNumeric and ErrSuffix, word for word.
_SPLIT_RE = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT_WRONG = f"quantities must match the regular expression '{_SPLIT_RE}'"
ERR_NUMERIC = "unable to parse numeric part of quantity"
ERR_SUFFIX = "unable to parse quantity's suffix"
# quantityGetValue's error.
ERR_NOT_INTEGER = "cannot convert value to integer"
# What cel-go's Program.Eval makes of a Go panic (an int32 scale difference that wraps to a
# negative power of ten, which Go then divides by).
ERR_DIVIDE_BY_ZERO = "internal error: runtime error: integer divide by zero"

# A result with more digits than this is refused rather than computed (Go would compute it, in
# time and memory that grow with the digits; a quantity parsed from a 1 MiB string has fewer).
MAX_DIGITS = 1 << 22

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_NANO = -9
_MAX_INT64_FACTORS = 18

# Exact decimal arithmetic: the precision is the largest there is, and rounding of any kind is
# an error (it cannot happen below MAX_DIGITS, which every operation checks first).
_EXACT = decimal.Context(
    prec=decimal.MAX_PREC,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.InvalidOperation, decimal.Inexact, decimal.Overflow, decimal.Underflow],
)


def _wrap32(value: int) -> int:
    """Go's int32 arithmetic: Scale and inf.Scale are int32, and their sums wrap."""
    return (value + (1 << 31)) % (1 << 32) - (1 << 31)


def _wrap64(value: int) -> int:
    return (value + (1 << 63)) % (1 << 64) - (1 << 63)


def _fits64(value: int) -> bool:
    return _INT64_MIN <= value <= _INT64_MAX


@dataclass(frozen=True)
class Quantity:
    """A resource.Quantity: `value` exactly, and how Kubernetes holds it. With `dec` false, an
    int64Amount: `value == mantissa * 10**scale`, an int64 mantissa and an int32 `scale`. With
    `dec` true, an inf.Dec: `value == unscaled * 10**-scale`, `scale` its int32 inf.Scale."""

    value: Decimal
    dec: bool
    scale: int

    @property
    def mantissa(self) -> int:
        """The int64Amount's int64 (int64 form only: at most 19 digits)."""
        return int(self.value.scaleb(-self.scale, _EXACT))

    @property
    def unscaled(self) -> Decimal:
        """The inf.Dec's unscaled integer, kept as a decimal: its exponent is not expanded."""
        return self.value.scaleb(self.scale, _EXACT)

    @property
    def inf_scale(self) -> int:
        """The scale of its inf.Dec form (int64Amount.AsDec: inf.Scale(-scale), wrapping)."""
        return self.scale if self.dec else _wrap32(-self.scale)

    def sign(self) -> int:
        return 0 if self.value.is_zero() else (-1 if self.value.is_signed() else 1)


def _int_amount(mantissa: int, scale: int) -> Quantity:
    return Quantity(_zero_signless(Decimal(mantissa).scaleb(scale, _EXACT)), False, scale)


def _dec(value: Decimal, inf_scale: int) -> Quantity:
    return Quantity(_zero_signless(value), True, inf_scale)


def _zero_signless(value: Decimal) -> Decimal:
    # big.Int has no negative zero: -0 is 0.
    return _EXACT.abs(value) if value.is_zero() else value


# -- parsing: resource.ParseQuantity ------------------------------------------------------------


@dataclass(frozen=True)
class _Split:
    positive: bool
    value: bytes
    num: bytes
    denom: bytes
    suffix: bytes


def _split(text: bytes) -> _Split:
    """parseQuantityString, a linear scanner over the UTF-8 bytes; raises with ErrFormatWrong.
    `num` has no leading zeros ("0" when there is none), `value` is the numeral with its sign."""
    positive, pos, end = True, 0, len(text)
    if text[:1] in (b"-", b"+"):
        positive = text[:1] != b"-"
        pos += 1
    pos = _ZEROS.match(text, pos).end()  # type: ignore[union-attr]
    if pos >= end:
        return _Split(positive, b"0", b"0", b"", b"")
    start, pos = pos, _DIGIT_RUN.match(text, pos).end()  # type: ignore[union-attr]
    if pos >= end:
        return _Split(positive, text, text[start:], b"", b"")
    num = text[start:pos] or b"0"
    denom = b""
    if text[pos] == ord("."):
        start = pos + 1
        pos = _DIGIT_RUN.match(text, start).end()  # type: ignore[union-attr]
        denom = text[start:pos]
        if pos >= end:
            return _Split(positive, text, num, denom, b"")
    value, suffix_start = text[:pos], pos
    pos = _SUFFIX_RUN.match(text, pos).end()  # type: ignore[union-attr]
    if pos < end and text[pos] in b"-+":
        pos += 1
    if _DIGIT_RUN.match(text, pos).end() < end:  # type: ignore[union-attr]
        raise ValueError(ERR_FORMAT_WRONG)
    return _Split(positive, value, num, denom, text[suffix_start:])


# Runs of bytes, matched at a position (in C: a 1 MiB string is a few milliseconds).
_ZEROS = re.compile(b"0*")
_DIGIT_RUN = re.compile(b"[0-9]*")
_SUFFIX_RUN = re.compile(b"[eEinumkKMGTP]*")


_SUFFIXES: dict[bytes, tuple[int, int, str]] = {
    b"": (10, 0, "DecimalSI"),
    b"n": (10, -9, "DecimalSI"),
    b"u": (10, -6, "DecimalSI"),
    b"m": (10, -3, "DecimalSI"),
    b"k": (10, 3, "DecimalSI"),
    b"M": (10, 6, "DecimalSI"),
    b"G": (10, 9, "DecimalSI"),
    b"T": (10, 12, "DecimalSI"),
    b"P": (10, 15, "DecimalSI"),
    b"E": (10, 18, "DecimalSI"),
    b"Ki": (2, 10, "BinarySI"),
    b"Mi": (2, 20, "BinarySI"),
    b"Gi": (2, 30, "BinarySI"),
    b"Ti": (2, 40, "BinarySI"),
    b"Pi": (2, 50, "BinarySI"),
    b"Ei": (2, 60, "BinarySI"),
}


def _go_parse_int64(text: bytes) -> int | None:
    """strconv.ParseInt(text, 10, 64): an optional sign and decimal digits, in range."""
    digits = text[1:] if text[:1] in (b"+", b"-") else text
    if not digits or _DIGIT_RUN.match(digits).end() != len(digits):  # type: ignore[union-attr]
        return None
    significant = digits.lstrip(b"0")
    if len(significant) > 19:  # before int(): a 1 MiB exponent is refused in linear time
        return None
    value = int(significant or b"0")
    value = -value if text[:1] == b"-" else value
    return value if _fits64(value) else None


def _interpret(suffix: bytes) -> tuple[int, int, str]:
    """quantitySuffixer.interpret: base, exponent and format; raises with ErrSuffix."""
    found = _SUFFIXES.get(suffix)
    if found is not None:
        return found
    if len(suffix) > 1 and suffix[:1] in (b"e", b"E"):
        parsed = _go_parse_int64(suffix[1:])
        if parsed is not None:
            return 10, _wrap32(parsed), "DecimalExponent"  # int32(parsed), as Go converts it
    raise ValueError(ERR_SUFFIX)


def _inf_set_string(value: bytes) -> tuple[Decimal, int]:
    """inf.Dec.SetString of a numeral `_split` made: its value and scale (the digits after the
    point). Raises with ErrNumeric when it has no digit ("." and "-" are numerals to `_split`)."""
    negative = value[:1] == b"-"
    body = value[1:] if value[:1] in (b"+", b"-") else value
    whole, point, fraction = body.partition(b".")
    digits = whole + fraction
    if not digits:
        raise ValueError(ERR_NUMERIC)
    scale = len(fraction) if point else 0
    numeral = f"{'-' if negative else ''}{digits.decode()}E{-scale}"
    return Decimal(numeral), scale


def parse(text: str) -> Quantity:
    """resource.ParseQuantity; raises ValueError with its error."""
    raw = text.encode()
    if not raw:
        raise ValueError(ERR_FORMAT_WRONG)
    if raw == b"0":
        return _int_amount(0, 0)
    split = _split(raw)
    base, exponent, form = _interpret(split.suffix)

    mantissa, scale = 1, 0
    if form != "BinarySI":
        scale = exponent
        precision = _MAX_INT64_FACTORS - (len(split.num) + len(split.denom))
    elif exponent >= 0 and not split.denom:
        mantissa = 1 << exponent
        # int32(float32(exponent)*3/10) is exact for the exponents 10..60.
        precision = 15 - len(split.num) - exponent * 3 // 10 - 1
    else:
        precision = -1

    if precision >= 0:
        scale = _wrap32(scale - len(split.denom))
        if scale >= _NANO:
            # At most 18 digits (precision >= 0): ParseInt cannot fail here.
            product = int(split.num + split.denom) * mantissa
            if _fits64(product):
                return _int_amount(product if split.positive else -product, scale)

    amount, inf_scale = _inf_set_string(split.value)
    if base == 10:
        # SetScale(Scale() + Scale(exponent).infScale()), in int32.
        inf_scale = _wrap32(inf_scale + _wrap32(-exponent))
        amount = amount.scaleb(-inf_scale - _exponent(amount), _EXACT)
    else:
        amount = _EXACT.multiply(amount, 1 << exponent)
    negative = amount.is_signed() and not amount.is_zero()
    amount = _EXACT.abs(amount)
    if not amount.is_zero():
        # Rounded up to the nano (under the theory that who asks for some of a resource should
        # get some), which makes the scale 9.
        inf_scale = -_NANO
        if _exponent(amount) < _NANO:
            amount = amount.quantize(_ONE_NANO, rounding=decimal.ROUND_UP, context=_ROUNDING)
    if form == "BinarySI" and amount > _INT64_MAX:
        amount, inf_scale = Decimal(_INT64_MAX), 0  # a simple cap, at the largest int64
    return _dec(_EXACT.minus(amount) if negative else amount, inf_scale)


def _exponent(value: Decimal) -> int:
    """The power of ten of a finite decimal's last digit."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return exponent


_ONE_NANO = Decimal("1e-9")
# Rounding is allowed here, and only here (to the nano, up).
_ROUNDING = decimal.Context(
    prec=decimal.MAX_PREC,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.InvalidOperation, decimal.Overflow],
)


# -- the int64 arithmetic of amount.go and math.go ----------------------------------------------


def _positive_scale(base: int, scale: int) -> int | None:
    """positiveScaleInt64: base * 10**scale, None on overflow. A negative scale (a difference of
    scales that wrapped) leaves base as it is, as Go's loop then never runs."""
    if scale <= 0 or base == 0:
        return base
    if scale > 19:
        return None
    product = base * 10**scale
    return product if _fits64(product) else None


def _divide_by_scale(base: int, scale: int) -> tuple[int, int, bool]:
    """divideByScaleInt64: Go's truncating quotient and remainder by 10**scale."""
    if scale == 0:
        return base, 0, True
    if scale >= 18:
        return 0, base, False
    if scale < 0:  # pow10Int64 gives 0 for it, and Go divides by it
        raise ValueError(ERR_DIVIDE_BY_ZERO)
    divisor = 10**scale
    quotient = abs(base) // divisor * (1 if base >= 0 else -1)
    return quotient, base - quotient * divisor, True


def _int_compare(a: Quantity, b: Quantity) -> int:
    """int64Amount.Cmp."""
    a_value, b_value = a.mantissa, b.mantissa
    if a.scale > b.scale:
        result, remainder, exact = _divide_by_scale(b_value, _wrap32(a.scale - b.scale))
        if not exact:
            return _compare_values(a.value, b.value)
        if result == a_value:
            return 0 if remainder == 0 else (-1 if remainder > 0 else 1)
        b_value = result
    elif a.scale < b.scale:
        result, remainder, exact = _divide_by_scale(a_value, _wrap32(b.scale - a.scale))
        if not exact:
            return _compare_values(a.value, b.value)
        if result == b_value:
            return 0 if remainder == 0 else (1 if remainder > 0 else -1)
        a_value = result
    return (a_value > b_value) - (a_value < b_value)


def _compare_values(a: Decimal, b: Decimal) -> int:
    return (a > b) - (a < b)


def compare(a: Quantity, b: Quantity) -> int:
    """Quantity.Cmp."""
    if not a.dec and not b.dec:
        return _int_compare(a, b)
    return _compare_values(a.value, b.value)


def _int_add(a: Quantity, b_mantissa: int, b_scale: int) -> Quantity | None:
    """int64Amount.Add: None where Go reports an overflow (and falls back to inf.Dec)."""
    a_mantissa = a.mantissa
    if b_mantissa == 0:
        return a
    if a_mantissa == 0:
        return _int_amount(b_mantissa, b_scale)
    if a.scale == b_scale:
        total, scale = a_mantissa + b_mantissa, a.scale
    elif a.scale > b_scale:
        scaled = _positive_scale(a_mantissa, _wrap32(a.scale - b_scale))
        if scaled is None:
            return None
        total, scale = scaled + b_mantissa, b_scale
    else:
        scaled = _positive_scale(b_mantissa, _wrap32(b_scale - a.scale))
        if scaled is None:
            return None
        total, scale = a_mantissa + scaled, a.scale
    return _int_amount(total, scale) if _fits64(total) else None


def _dec_add(a: Quantity, b: Quantity, sign: int) -> Quantity:
    """inf.Dec's Add (sign 1) or Sub (-1): exact, at the larger of the two scales."""
    inf_scale = max(a.inf_scale, b.inf_scale)
    for operand in (a, b):
        if not operand.value.is_zero() and operand.value.adjusted() + inf_scale + 2 > MAX_DIGITS:
            raise ValueError(f"quantity too large to compute: more than {MAX_DIGITS} digits")
    total = _EXACT.add(a.value, b.value) if sign > 0 else _EXACT.subtract(a.value, b.value)
    return _dec(total, inf_scale)


def add(a: Quantity, b: Quantity) -> Quantity:
    """A copy of `a`, Quantity.Add(b)."""
    if not a.dec and not b.dec:
        result = _int_add(a, b.mantissa, b.scale)
        if result is not None:
            return result
    return _dec_add(a, b, 1)


def sub(a: Quantity, b: Quantity) -> Quantity:
    """A copy of `a`, Quantity.Sub(b): int64Amount.Sub adds the negated mantissa, which for the
    smallest int64 is itself again (Go's negation wraps)."""
    if not a.dec and not b.dec:
        result = _int_add(a, _wrap64(-b.mantissa), b.scale)
        if result is not None:
            return result
    return _dec_add(a, b, -1)


def as_int64(q: Quantity) -> int | None:
    """Quantity.AsInt64: only an int64Amount of a non-negative scale, without overflow."""
    if q.dec:
        return None
    if q.scale == 0:
        return q.mantissa
    if q.scale < 0:
        return None
    return _positive_scale(q.mantissa, q.scale)


_POW10 = tuple(float(f"1e{n}") for n in range(32))
_POW10_POS32 = tuple(float(f"1e{n}") for n in range(0, 320, 32))
_POW10_NEG32 = tuple(float(f"1e-{n}") for n in range(0, 352, 32))


def _go_pow10(n: int) -> float:
    """Go's math.Pow10, table for table: its roundings are the float's."""
    if 0 <= n <= 308:
        return _POW10_POS32[n // 32] * _POW10[n % 32]
    if -323 <= n <= 0:
        return _POW10_NEG32[-n // 32] / _POW10[-n % 32]
    return float("inf") if n > 0 else 0.0


def approximate_float(q: Quantity) -> float:
    """Quantity.AsApproximateFloat64: the mantissa as a float64, times Pow10 of the exponent."""
    if q.dec:
        base = float(q.unscaled)  # big.Float's Float64: nearest, ±Inf beyond the range
        exponent = _wrap32(-q.scale)
    else:
        base, exponent = float(q.mantissa), q.scale
    if exponent == 0:
        return base
    return base * _go_pow10(exponent)


# -- the opaque value ---------------------------------------------------------------------------

_DECIMAL_SI = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_SUFFIX_EXPONENTS = {suffix: exponent for exponent, suffix in _DECIMAL_SI.items() if suffix}
_STATE_BITS = 33  # one for the form, 32 for the int32 scale


def canonical_text(value: Decimal) -> str:
    """The value in Kubernetes' DecimalSI canonical form (mantissa without trailing thousands,
    exponent a multiple of 3, as a suffix): one text a value, whatever form holds it. Past the
    suffixes Kubernetes prints nothing, which would be ambiguous: `e<exponent>` then."""
    if value.is_zero():
        return "0"
    # Scientific notation of the value without trailing zeros: "-1.5E+3", "1E-9".
    mantissa, _, power = format(_EXACT.normalize(value), "E").partition("E")
    sign = mantissa.startswith("-")
    text = mantissa.lstrip("-").replace(".", "")
    exponent = int(power) - (len(text) - 1)
    text += "0" * (exponent % 3)
    exponent -= exponent % 3
    suffix = _DECIMAL_SI.get(exponent, f"e{exponent}")
    return f"{'-' if sign else ''}{text}{suffix}"


def _value_of(text: str) -> Decimal:
    numeral = text.rstrip("numkMGTPE")
    if numeral != text:
        return Decimal(numeral).scaleb(_SUFFIX_EXPONENTS[text[len(numeral) :]], _EXACT)
    return Decimal(text)  # digits, with an `e<exponent>` past the suffixes


def to_value(q: Quantity) -> object:
    state = int(q.dec) | (q.scale & 0xFFFFFFFF) << 1
    return messages.opaque(QUANTITY, canonical_text(q.value), state)


def from_value(message: object) -> Quantity:
    state = messages.state_of(message)
    return Quantity(_value_of(messages.text_of(message)), bool(state & 1), _wrap32(state >> 1))


# -- the functions ------------------------------------------------------------------------------


def _quantity(text: str) -> object:
    return to_value(parse(text))


def _is_quantity(text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def _sign(q: object) -> int:
    return from_value(q).sign()


def _is_greater_than(q: object, other: object) -> bool:
    return compare(from_value(q), from_value(other)) == 1


def _is_less_than(q: object, other: object) -> bool:
    return compare(from_value(q), from_value(other)) == -1


def _compare_to(q: object, other: object) -> int:
    return compare(from_value(q), from_value(other))


def _as_approximate_float(q: object) -> float:
    return approximate_float(from_value(q))


def _as_integer(q: object) -> int:
    value = as_int64(from_value(q))
    if value is None:
        raise ValueError(ERR_NOT_INTEGER)
    return value


def _is_integer(q: object) -> bool:
    return as_int64(from_value(q)) is not None


def _add(q: object, other: object) -> object:
    return to_value(add(from_value(q), from_value(other)))


def _add_int(q: object, other: int) -> object:
    # resource.NewQuantity(other, DecimalExponent): an int64Amount of scale 0.
    return to_value(add(from_value(q), _int_amount(other, 0)))


def _sub(q: object, other: object) -> object:
    return to_value(sub(from_value(q), from_value(other)))


def _sub_int(q: object, other: int) -> object:
    return to_value(sub(from_value(q), _int_amount(other, 0)))


# A `quantity('...')` literal that Kubernetes would refuse when it runs, refused when the
# condition compiles, with Kubernetes' message.
_refused = refusal(parse)


_IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    "string_to_quantity": _quantity,
    "is_quantity_string": _is_quantity,
    "quantity_sign": _sign,
    "quantity_is_greater_than": _is_greater_than,
    "quantity_is_less_than": _is_less_than,
    "quantity_compare_to": _compare_to,
    "quantity_get_float": _as_approximate_float,
    "quantity_get_int": _as_integer,
    "quantity_is_integer": _is_integer,
    "quantity_add": _add,
    "quantity_add_int": _add_int,
    "quantity_sub": _sub,
    "quantity_sub_int": _sub_int,
}

messages.declare_opaque(QUANTITY, state_bits=_STATE_BITS)

LIBRARY = Library(
    "kubernetes.quantity",
    implemented(_QUANTITY_FUNCTIONS, _IMPLEMENTATIONS),
    opaque_types=(QUANTITY,),
    constants={"quantity": (0, _refused)},
)
