"""Kubernetes' semver library (policy_checks/cel/library/semver.py) through the whole environment:
the cases of k8s.io/apiserver `pkg/cel/library/semver_test.go` (all at SemverVersion(1), the
base environment's), blang/semver's parse errors word for word, and hostile inputs.
"""

from __future__ import annotations

from typing import Any

import pytest

from policy_checks.cel.environment import run_expression
from tests.celcases import compile_error, runtime_error, value

pytestmark = pytest.mark.fast

MIB = 1 << 20


KUBERNETES_VALUES = [
    ('semver("1.2.3") == semver("1.2.3")', True),
    ('isSemver("1.2.3-beta.1+build.1")', True),
    ('isSemver("")', False),
    ('isSemver("v1.0.0")', False),
    ('isSemver(" 1.0.0")', False),
    ('isSemver("1. 0.0")', False),
    ('isSemver("1.0.0 ")', False),
    ('isSemver("01.01.01")', False),
    ('isSemver("1")', False),
    ('isSemver("1.1")', False),
    ('isSemver("", true)', False),
    ('isSemver(" 1.0.0", true)', False),
    ('isSemver("1. 0.0", true)', False),
    ('isSemver("1.0.0 ", true)', False),
    ('isSemver("v1.0.0", true)', True),
    ('isSemver("01.01.01", true)', True),
    ('isSemver("1", true)', True),
    ('isSemver("1.1", true)', True),
    ('semver("v01.01", true) == semver("1.1.0")', True),
    ('semver("1.2.3") == semver("1.2.3")', True),
    ('semver("1.2.3") == semver("1.0.0")', False),
    ('semver("1.0.0").isLessThan(semver("1.2.3"))', True),
    ('semver("1.0.0").isLessThan(semver("1.0.0"))', False),
    ('semver("1.2.3").isGreaterThan(semver("1.0.0"))', True),
    ('semver("1.0.0").isGreaterThan(semver("1.0.0"))', False),
    ('semver("1.2.3").compareTo(semver("1.2.3"))', 0),
    ('semver("1.0.0").compareTo(semver("1.2.3"))', -1),
    ('semver("1.2.3").compareTo(semver("1.0.0"))', 1),
    ('semver("1.2.3").major()', 1),
    ('semver("1.2.3").minor()', 2),
    ('semver("1.2.3").patch()', 3),
    # cost_test.go and the library's documentation.
    ('semver("1234.56789012345.67890123456789").patch()', 67890123456789),
    ('semver("0.1.0-alpha.1").minor()', 1),
    ('semver("1.0", true) == semver("1.0.0")', True),
    ('semver("1.2.3").compareTo(semver("0.1.2"))', 1),
    ('type(semver("1.0.0")) == kubernetes.Semver', True),
]


@pytest.mark.parametrize(("expression", "expected"), KUBERNETES_VALUES)
def test_kubernetes_cases(expression: str, expected: Any) -> None:
    assert value(expression) == expected


# SemVer 2.0.0 precedence, as blang/semver's Compare has it; build metadata never counts.
PRECEDENCE = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.1.0",
    "2.0.0",
    "18446744073709551615.0.0",
]


@pytest.mark.parametrize("index", range(len(PRECEDENCE) - 1))
def test_precedence(index: int) -> None:
    low, high = PRECEDENCE[index], PRECEDENCE[index + 1]
    assert value("semver(a).compareTo(semver(b))", a=low, b=high) == -1
    assert value("semver(b).isGreaterThan(semver(a))", a=low, b=high)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('semver("1.0.0+a") == semver("1.0.0+b")', True),  # Version.EQ ignores build metadata
        ('semver("1.0.0+a").compareTo(semver("1.0.0"))', 0),
        ('semver("1.0.0-1") == semver("1.0.0-01a")', False),
        ('semver("1.0.0-2").isLessThan(semver("1.0.0-a"))', True),  # numbers before words
        # major() is Go's int64 of the uint64: past 2**63 - 1 it wraps.
        ('semver("18446744073709551615.9223372036854775808.0").major()', -1),
        ('semver("18446744073709551615.9223372036854775808.0").minor()', -(2**63)),
    ],
)
def test_equality_ordering_and_numbers(expression: str, expected: Any) -> None:
    assert value(expression) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("v1.0", "No Major.Minor.Patch elements found"),
        ("", "Version string empty"),
        ("a.0.0", 'Invalid character(s) found in major number "a"'),
        ("01.0.0", 'Major number must not contain leading zeroes "01"'),
        ("1.01.0", 'Minor number must not contain leading zeroes "01"'),
        ("1.0.01", 'Patch number must not contain leading zeroes "01"'),
        ("1.0.x", 'Invalid character(s) found in patch number "x"'),
        ("1..0", 'strconv.ParseUint: parsing "": invalid syntax'),
        ("18446744073709551616.0.0", 'parsing "18446744073709551616": value out of range'),
        ("1.0.0-", "Prerelease is empty"),
        ("1.0.0-a..b", "Prerelease is empty"),
        ("1.0.0-01", 'Numeric PreRelease version must not contain leading zeroes "01"'),
        ("1.0.0-é", 'Invalid character(s) found in prerelease "é"'),
        ("1.0.0-\x01", 'Invalid character(s) found in prerelease "\\x01"'),
        ("1.0.0+", "Build meta data is empty"),
        ("1.0.0+a_b", 'Invalid character(s) found in build meta data "a_b"'),
        ("1.0.0-a_b+c_d", 'Invalid character(s) found in prerelease "a_b"'),
        ("1.0.x-a_b", 'Invalid character(s) found in patch number "x"'),
    ],
)
def test_parse_errors_are_blang_semver_messages(text: str, message: str) -> None:
    assert message in runtime_error("semver(s)", s=text)
    assert value("isSemver(s)", s=text) is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1-rc", "short version cannot contain PreRelease/Build meta data"),
        ("1.0-rc.1", 'Invalid character(s) found in minor number "0-rc"'),
        ("v", 'strconv.ParseUint: parsing "": invalid syntax'),
        ("vv1.0.0", 'Invalid character(s) found in major number "0v1"'),  # zero-led
        ("00é", 'Invalid character(s) found in major number "0é"'),  # Go's len is in bytes
    ],
)
def test_normalize_errors(text: str, message: str) -> None:
    assert message in runtime_error("semver(s, true)", s=text)


def test_a_literal_that_cannot_parse_is_refused_when_compiling() -> None:
    assert compile_error("semver('x') == semver('1.0.0')") == "No Major.Minor.Patch elements found"
    # With the normalize flag the literal is read when the condition runs.
    assert value("semver('v1', true) == semver('1.0.0')")
    assert "No Major.Minor.Patch" in runtime_error("semver('x.y', false).major() == 1")
    assert value("isSemver('x')") is False


HOSTILE = [
    "9" * 20 + ".0.0",
    "1" * MIB + ".0.0",
    "1.0.0-" + "a" * MIB,
    "1.0.0-" + "1" * MIB,
    "1.0.0+" + "." * MIB,
    "1." * MIB,
    "v" + "0" * MIB,
    "." * MIB,
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: f"{t[:10]}...{len(t)}")
def test_hostile_versions_return(text: str) -> None:
    for normalize in ("false", "true"):
        outcome = run_expression(
            f"isSemver(s, {normalize}) ? semver(s, {normalize}).major() : -1", {"s": text}
        )
        assert outcome.stage == "value", outcome


def test_twenty_digits_is_out_of_range() -> None:
    message = runtime_error("semver(s)", s="9" * 20 + ".0.0")
    assert 'strconv.ParseUint: parsing "99999999999999999999": value out of range' in message
