"""Kubernetes' quantity library (policy_checks/cel/library/quantity.py) through the whole
environment: the cases of k8s.io/apiserver `pkg/cel/library/quantity_test.go` and the parse table
of k8s.io/apimachinery `pkg/api/resource/quantity_test.go`, then what those tables leave out (the
int64/decimal forms `isInteger()` shows, Go's int32 wrap-arounds) and hostile inputs.
"""

from __future__ import annotations

from typing import Any

import pytest

from policy_checks.cel.environment import run_expression
from policy_checks.cel.library.quantity import ERR_FORMAT_WRONG, ERR_NUMERIC, ERR_SUFFIX
from tests.celcases import compile_error, runtime_error, value

pytestmark = pytest.mark.fast

MIB = 1 << 20


# quantity_test.go TestQuantity, in its order (the value cases).
KUBERNETES_VALUES = [
    ('quantity("12Mi") == quantity("12582912")', True),
    ('isQuantity("20")', True),
    ('isQuantity("20M")', True),
    ('isQuantity("20Mi")', True),
    ('isQuantity("20Mo")', False),
    ('isQuantity("10Mm")', False),
    ('quantity("200M") == quantity("200M")', True),
    ('quantity("200M") == quantity("0.2G") && quantity("0.2G") == quantity("200M")', True),
    (
        'quantity("2M") == quantity("0.002G") && quantity("2000k") == quantity("2M") && '
        'quantity("0.002G") == quantity("2000k")',
        True,
    ),
    ('quantity("200M") == quantity("0.3G")', False),
    ('quantity("50M").isLessThan(quantity("50Mi"))', True),
    ('quantity("50M").isLessThan(quantity("100M"))', True),
    ('quantity("100M").isLessThan(quantity("50M"))', False),
    ('quantity("50Mi").isGreaterThan(quantity("50M"))', True),
    ('quantity("150Mi").isGreaterThan(quantity("100Mi"))', True),
    ('quantity("50M").isGreaterThan(quantity("100M"))', False),
    ('quantity("200M").compareTo(quantity("0.2G"))', 0),
    ('quantity("50M").compareTo(quantity("50Mi"))', -1),
    ('quantity("50Mi").compareTo(quantity("50M"))', 1),
    ('quantity("50k").add(quantity("20")) == quantity("50.02k")', True),
    ('quantity("50k").add(20).isLessThan(quantity("50020"))', False),
    ('quantity("50k").sub(quantity("20")) == quantity("49.98k")', True),
    ('quantity("50k").sub(20) == quantity("49980")', True),
    ('quantity("50k").add(20).sub(quantity("100k")).asInteger()', -49980),
    ('quantity("50k").add(20).sub(quantity("100k")).sub(-50000).asInteger()', 20),
    ('quantity("50k").asInteger()', 50000),
    ('quantity("9999999999999999999999999999999999999G").isInteger()', False),
    ('quantity("50").isInteger()', True),
    ('quantity("50.703k").asApproximateFloat()', 50703.0),
    (
        '[quantity("9999999999999999999999999999999999999")].all(x, '
        'x.add(quantity("1")).compareTo(x.add(quantity("2"))) == -1)',
        True,
    ),
    # The library's documentation examples.
    ('isQuantity("1.3G")', True),
    ('isQuantity("1.3Gi")', True),
    ('isQuantity("1,3G")', False),
    ('isQuantity("10000k")', True),
    ('isQuantity("200K")', False),
    ('isQuantity("Three")', False),
    ('quantity("50000000G").isInteger()', True),
    ('quantity("50k").isInteger()', True),
    ('quantity("50k").asInteger() == 50000', True),
    ('quantity("50k").sub(20000).asApproximateFloat() == 30000.0', True),
    ('quantity("50k").add(20).sub(quantity("100k")).sub(-50000) == quantity("20")', True),
    ('quantity("200M").compareTo(quantity("0.2G"))', 0),
    ('type(quantity("1")) == kubernetes.Quantity', True),
]


@pytest.mark.parametrize(("expression", "expected"), KUBERNETES_VALUES)
def test_kubernetes_cases(expression: str, expected: Any) -> None:
    assert value(expression) == expected


# The runtime errors of the table: a literal is refused when compiling (CONTRACT 8), so the
# string comes from a variable here; the compile-time refusal is pinned below.
@pytest.mark.parametrize(
    ("text", "message"),
    [("10Mo", ERR_FORMAT_WRONG), ("10Mm", ERR_SUFFIX), ("200K", ERR_SUFFIX)],
)
def test_an_unparsable_quantity_is_an_error_with_kubernetes_message(
    text: str, message: str
) -> None:
    assert message in runtime_error("quantity(s)", s=text)
    assert not value("isQuantity(s)", s=text)
    assert ERR_FORMAT_WRONG.startswith("quantities must match the regular expression '^(")


def test_as_integer_beyond_int64_is_kubernetes_error() -> None:
    expression = 'quantity("9999999999999999999999999999999999999G").asInteger()'
    assert "cannot convert value to integer" in runtime_error(expression)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("isQuantity([1, 2, 3])", "found no matching overload for 'isQuantity' applied to"),
        # `sign` is a global function in Kubernetes (cel.Overload), whatever its comment says.
        ('quantity("1").sign()', "undeclared reference to 'sign'"),
    ],
)
def test_compile_errors(expression: str, message: str) -> None:
    assert message in compile_error(expression)


@pytest.mark.parametrize(("text", "expected"), [("-50k", -1), ("0", 0), ("0.001m", 1)])
def test_sign_is_a_global_function(text: str, expected: int) -> None:
    assert value("sign(quantity(s))", s=text) == expected


@pytest.mark.parametrize(
    ("literal", "message"),
    [("1x", ERR_FORMAT_WRONG), ("10Mm", ERR_SUFFIX), ("", ERR_FORMAT_WRONG), ("Ei", ERR_NUMERIC)],
)
def test_a_quantity_literal_that_cannot_parse_is_refused_when_compiling(
    literal: str, message: str
) -> None:
    assert compile_error(f"quantity('{literal}') == quantity('1')") == message
    # isQuantity's argument is what it tests: never refused.
    assert value(f"isQuantity('{literal}')") is False


# quantity_test.go TestQuantityParse: every input, and the value it is (mantissa, exponent).
# fmt: off
PARSED = [
    ("0", 0, 0), ("0n", 0, 0), ("0u", 0, 0), ("0m", 0, 0), ("0Ki", 0, 0), ("0k", 0, 0),
    ("0Mi", 0, 0), ("0M", 0, 0), ("0Gi", 0, 0), ("0G", 0, 0), ("0Ti", 0, 0), ("0T", 0, 0),
    ("1", 1, 0), ("1Ki", 1024, 0), ("8Ki", 8 * 1024, 0), ("7Mi", 7 * 1024**2, 0),
    ("6Gi", 6 * 1024**3, 0), ("5Ti", 5 * 1024**4, 0), ("4Pi", 4 * 1024**5, 0),
    ("3Ei", 3 * 1024**6, 0), ("10Ti", 10 * 1024**4, 0), ("100Ti", 100 * 1024**4, 0),
    ("5n", 5, -9), ("4u", 4, -6), ("3m", 3, -3), ("9", 9, 0), ("8k", 8, 3), ("50k", 5, 4),
    ("7M", 7, 6), ("6G", 6, 9), ("5T", 5, 12), ("40T", 4, 13), ("300T", 3, 14), ("2P", 2, 15),
    ("1E", 1, 18), ("1E-3", 1, -3), ("1e3", 1, 3), ("1E6", 1, 6), ("1e9", 1, 9),
    ("1E12", 1, 12), ("1e15", 1, 15), ("1E18", 1, 18), ("1e14", 1, 14), ("1e13", 1, 13),
    ("100.035k", 100035, 0), ("0.001", 1, -3), ("0.0005k", 5, -1), ("0.005", 5, -3),
    ("0.05", 5, -2), ("0.5", 5, -1), ("0.00050k", 5, -1), ("0.00500", 5, -3),
    ("0.05000", 5, -2), ("0.50000", 5, -1), ("0.5e0", 5, -1), ("0.5e-1", 5, -2),
    ("0.5e-2", 5, -3), ("10.035M", 10035, 3), ("1.2e3", 12, 2), ("1.3E+6", 13, 5),
    ("1.40e9", 14, 8), ("1.53E12", 153, 10), ("1.6e15", 16, 14), ("1.7E18", 17, 17),
    ("9.01", 901, -2), ("8.1k", 81, 2), ("7.123456M", 7123456, 0),
    ("6.987654321G", 6987654321, 0), ("5.444T", 5444, 9), ("40.1T", 401, 11),
    ("300.2T", 3002, 11), ("2.5P", 25, 14), ("1.01E", 101, 16),
    # Things that saturate or round (up, to the nano).
    ("3.001n", 4, -9), ("1.1E-9", 2, -9), ("0.0000000001", 1, -9), ("0.0000000005", 1, -9),
    ("0.00000000050", 1, -9), ("0.5e-9", 1, -9), ("0.9n", 1, -9), ("0.00000012345", 124, -9),
    ("0.00000012354", 124, -9), ("9Ei", 2**63 - 1, 0), ("9223372036854775807Ki", 2**63 - 1, 0),
    ("12E", 12, 18),
    ("100.035Ki", 10243584, -2), ("0.5Mi", 512 * 1024, 0), ("0.05Gi", 536870912, -1),
    ("0.025Ti", 274877906944, -1),
    # "Things written by trolls".
    ("0.000000000001Ki", 2, -9), (".001", 1, -3), (".0001k", 100, -3), ("1.", 1, 0),
    ("1.G", 1, 9),
    # parseQuantityString's own table, and what its scanner accepts beyond it.
    (".", 0, 0), ("-.", 0, 0), ("+", 0, 0), ("-", 0, 0), ("Mi", 0, 0), ("e5", 0, 0),
]
# fmt: on


def _numeral(mantissa: int, exponent: int) -> str:
    return f"{mantissa}e{exponent}" if exponent else str(mantissa)


@pytest.mark.parametrize(("text", "mantissa", "exponent"), PARSED)
def test_kubernetes_parse_table(text: str, mantissa: int, exponent: int) -> None:
    expected = _numeral(mantissa, exponent)
    assert value("quantity(s) == quantity(e)", s=text, e=expected)
    assert value("quantity(s).compareTo(quantity(e))", s=text, e=expected) == 0
    # The negative and the explicitly positive form of each.
    if not text.startswith(("-", "+")):
        assert value("quantity(s) == quantity(e)", s="+" + text, e=expected)
        negative = _numeral(-mantissa, exponent)
        assert value("quantity(s) == quantity(e)", s="-" + text, e=negative)


@pytest.mark.parametrize(
    "text",
    ["1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-", " 1", "1 ", ""],
)
def test_kubernetes_invalid_quantities(text: str) -> None:
    assert value("isQuantity(s)", s=text) is False


# Which form Kubernetes holds a quantity in: isInteger() is true only for an int64Amount whose
# scale is not negative (AsInt64), whatever the value is.
FORMS = [
    ("1", True),
    ("1000m", False),  # int64Amount{1000, -3}
    ("1.0", False),  # int64Amount{10, -1}
    ("1.5k", True),  # int64Amount{15, 2}
    ("1e3", True),
    ("1Gi", True),
    ("10Ti", True),
    ("100Ti", False),  # too many digits for the BinarySI fast path: inf.Dec
    ("1Pi", False),
    ("1Ei", False),
    ("0.5Ki", False),  # a fraction of a binary suffix: inf.Dec, though it is 512
    ("9Ei", False),  # capped, as an inf.Dec
    ("1.0000000000000000000", False),  # 20 digits: inf.Dec
    ("10000000000e-10", False),  # a scale below the nano: inf.Dec
    ("0", True),
    ("-0", True),
    ("9223372036854775807", False),  # 19 digits
    ("922337203685477580", True),
    ("922337203685477580k", False),  # overflows on AsInt64
]


@pytest.mark.parametrize(("text", "integer"), FORMS)
def test_is_integer_shows_the_form_kubernetes_holds(text: str, integer: bool) -> None:
    assert value("quantity(s).isInteger()", s=text) is integer
    if not integer:
        assert "cannot convert value to integer" in runtime_error("quantity(s).asInteger()", s=text)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # Equal values in different forms are equal...
        ('quantity("1") == quantity("1000m")', True),
        ('quantity("512") == quantity("0.5Ki")', True),
        ('[quantity("1")].exists(q, q == quantity("1.0"))', True),
        ('quantity("1000m") in [quantity("1")]', True),
        # ...and the results of arithmetic keep Kubernetes' forms.
        ('quantity("1").add(quantity("1000m")).isInteger()', False),  # {2000, -3}
        ('quantity("1000m").sub(quantity("1000m")).add(quantity("5")).isInteger()', True),
        ('quantity("1.5Gi").sub(quantity("0.5Gi")).isInteger()', False),  # inf.Dec stays
        ('quantity("1.5Gi").sub(quantity("0.5Gi")) == quantity("1Gi")', True),
        ('quantity("1k").add(1).asInteger()', 1001),
        ('quantity("9223372036854775807").isInteger()', False),
        ('quantity("9223372036854775806").add(1).isInteger()', False),  # inf.Dec from the start
        ('quantity("922337203685477580").add(9223372036854775807).isInteger()', False),  # overflow
        ('quantity("100m").asApproximateFloat()', 0.1),
        ('quantity("1.5Gi").asApproximateFloat()', 1610612736.0),
        ('quantity("1e400").asApproximateFloat() > 1.7e308', True),  # +Inf
        ('quantity("-1e400").asApproximateFloat() < -1.7e308', True),
        ('quantity("1Ei").asApproximateFloat()', float(2**60)),
    ],
)
def test_forms_and_arithmetic(expression: str, expected: Any) -> None:
    assert value(expression) == expected


def test_go_int32_scales_wrap_as_in_kubernetes() -> None:
    # 1e2147483647 + 1n: the difference of the scales wraps in int32 and positiveScaleInt64
    # then leaves the mantissa alone: Kubernetes answers 2n.
    assert value('quantity("1e2147483647").add(quantity("1n")) == quantity("2n")')
    # Cmp divides by pow10Int64 of the wrapped difference, 0: Go panics, cel-go reports it.
    message = runtime_error('quantity("1e2147483647").compareTo(quantity("1n"))')
    assert "internal error: runtime error: integer divide by zero" in message
    # An exponent beyond int32 is truncated to it: 2**32 + 5 is 5.
    assert value('quantity("1e4294967301") == quantity("100k")')


# Hostile inputs: each must return, quickly (no wall-clock assertion: that they return at all).
HOSTILE_TEXTS = [
    "9" * 20,
    "1" + "0" * 19,
    "9" * MIB,
    "0." + "0" * MIB + "1",
    "1." + "5" * MIB + "Ki",
    "1" * MIB + "e2147483647",
    "1e" + "9" * MIB,
    "1e" + "0" * MIB + "5",
    "1" * MIB + "x",
    "-" * MIB,
    "." * MIB,
    "1e-2147483648",
]


@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=lambda t: f"{t[:12]}...{len(t)}")
def test_hostile_quantities_return(text: str) -> None:
    outcome = run_expression(
        "isQuantity(s) ? [quantity(s).isInteger(), quantity(s).asApproximateFloat() != 0.0,"
        " quantity(s).compareTo(quantity('1')) != 2, quantity(s) == quantity(s)] : []",
        {"s": text},
    )
    assert outcome.stage == "value", outcome


def test_twenty_digits() -> None:
    assert value('quantity("99999999999999999999").asApproximateFloat()') == 1e20
    assert value('quantity("99999999999999999999").isInteger()') is False
    assert value('isQuantity("1e99999999999999999999")') is False  # ParseInt's range


def test_a_mebibyte_of_digits_adds_and_compares() -> None:
    big = "9" * MIB
    assert value("quantity(s).add(1).compareTo(quantity(s))", s=big) == 1
    assert value("quantity(s).sub(quantity(s)) == quantity('0')", s=big)


def test_a_result_too_large_to_compute_is_an_error_not_a_hang() -> None:
    # Go would build a two-billion-digit integer here.
    message = runtime_error('quantity("1.5e2147483000").add(quantity("1.5n"))')
    assert "too large" in message
