"""Kubernetes' CIDR library (policy_checks/cel/library/cidr.py) against Kubernetes' own tests:
k8s.io/apiserver `pkg/cel/library/cidr_test.go` (TestCIDR) and the examples of `cidr.go`'s doc
comment, at commit 24a394e516bfda066d7e2221d7d92c052de27c54; Go's `netip.ParsePrefix` wording
where Kubernetes passes it on; and hostile inputs.
"""

from __future__ import annotations

import pytest

from policy_checks.cel.environment import ENVIRONMENTS
from tests.celcases import Equals, Fails, check, plain, run

pytestmark = pytest.mark.fast

_WHY = "network address parse error during conversion from string: "

# TestCIDR, case by case (name, expression, expectation).
KUBERNETES_TEST_CIDR = [
    ("parse ipv4", 'cidr("192.168.0.0/24")', Equals('cidr("192.168.0.0/24")')),
    (
        "parse invalid ipv4",
        'cidr("192.168.0.0/")',
        Fails(
            _WHY + _WHY + 'netip.ParsePrefix("192.168.0.0/"): bad bits after slash: ""',
            "192.168.0.0/",
        ),
    ),
    (
        "contains IP ipv4 (IP)",
        'cidr("192.168.0.0/24").containsIP(ip("192.168.0.1"))',
        True,
    ),
    (
        "does not contain IP ipv4 (IP)",
        'cidr("192.168.0.0/24").containsIP(ip("192.168.1.1"))',
        False,
    ),
    ("contains IP ipv4 (string)", 'cidr("192.168.0.0/24").containsIP("192.168.0.1")', True),
    (
        "does not contain IP ipv4 (string)",
        'cidr("192.168.0.0/24").containsIP("192.168.1.1")',
        False,
    ),
    (
        "contains CIDR ipv4 (CIDR)",
        'cidr("192.168.0.0/24").containsCIDR(cidr("192.168.0.0/25"))',
        True,
    ),
    (
        "contains CIDR ipv4 (CIDR) (/32)",
        'cidr("192.168.0.0/24").containsCIDR(cidr("192.168.0.1/32"))',
        True,
    ),
    (
        "does not contain IP ipv4 (CIDR)",
        'cidr("192.168.0.0/24").containsCIDR(cidr("192.168.0.0/23"))',
        False,
    ),
    (
        "does not contain IP ipv4 (CIDR) (/32)",
        'cidr("192.168.0.0/24").containsCIDR(cidr("192.169.0.1/32"))',
        False,
    ),
    (
        "contains CIDR ipv4 (string)",
        'cidr("192.168.0.0/24").containsCIDR("192.168.0.0/25")',
        True,
    ),
    (
        "does not contain CIDR ipv4 (string)",
        'cidr("192.168.0.0/24").containsCIDR("192.168.0.0/23")',
        False,
    ),
    ("returns IP ipv4", 'cidr("192.168.0.0/24").ip()', Equals('ip("192.168.0.0")')),
    ("masks masked ipv4", 'cidr("192.168.0.0/24").masked()', Equals('cidr("192.168.0.0/24")')),
    (
        "masks unmasked ipv4",
        'cidr("192.168.0.1/24").masked()',
        Equals('cidr("192.168.0.0/24")'),
    ),
    ("returns prefix length ipv4", 'cidr("192.168.0.0/24").prefixLength()', 24),
    ("parse ipv6", 'cidr("2001:db8::/32")', Equals('cidr("2001:db8::/32")')),
    (
        "parse invalid ipv6",
        'cidr("2001:db8::/")',
        Fails(
            _WHY + _WHY + 'netip.ParsePrefix("2001:db8::/"): bad bits after slash: ""',
            "2001:db8::/",
        ),
    ),
    (
        "contains IP ipv6 (IP)",
        'cidr("2001:db8::/32").containsIP(ip("2001:db8::1"))',
        True,
    ),
    (
        "does not contain IP ipv6 (IP)",
        'cidr("2001:db8::/32").containsIP(ip("2001:dc8::1"))',
        False,
    ),
    ("contains IP ipv6 (string)", 'cidr("2001:db8::/32").containsIP("2001:db8::1")', True),
    (
        "does not contain IP ipv6 (string)",
        'cidr("2001:db8::/32").containsIP("2001:dc8::1")',
        False,
    ),
    (
        "contains CIDR ipv6 (CIDR)",
        'cidr("2001:db8::/32").containsCIDR(cidr("2001:db8::/33"))',
        True,
    ),
    (
        "does not contain IP ipv6 (CIDR)",
        'cidr("2001:db8::/32").containsCIDR(cidr("2001:db8::/31"))',
        False,
    ),
    (
        "contains CIDR ipv6 (string)",
        'cidr("2001:db8::/32").containsCIDR("2001:db8::/33")',
        True,
    ),
    (
        "does not contain CIDR ipv6 (string)",
        'cidr("2001:db8::/32").containsCIDR("2001:db8::/31")',
        False,
    ),
    ("returns IP ipv6", 'cidr("2001:db8::/32").ip()', Equals('ip("2001:db8::")')),
    ("masks masked ipv6", 'cidr("2001:db8::/32").masked()', Equals('cidr("2001:db8::/32")')),
    (
        "masks unmasked ipv6",
        'cidr("2001:db8:1::/32").masked()',
        Equals('cidr("2001:db8::/32")'),
    ),
    ("returns prefix length ipv6", 'cidr("2001:db8::/32").prefixLength()', 32),
    ("converting a CIDR to a string", 'string(cidr("192.168.0.0/24"))', "192.168.0.0/24"),
    ("type of CIDR is net.CIDR", 'type(cidr("192.168.0.0/24")) == net.CIDR', True),
]

# The examples of cidr.go's doc comment. Its "cidr('192.168.0.1/16') // error, because there
# are non-0 bits after the prefix" is not what the code does (parseCIDR keeps the host bits, as
# its own test "masks unmasked ipv4" shows): the code is followed.
KUBERNETES_DOC_EXAMPLES = [
    ("isCIDR('192.168.0.0/16')", True),
    ("isCIDR('::1/128')", True),
    ("isCIDR('192.168.0.0/33')", False),
    ("isCIDR('::1/129')", False),
    ("isCIDR('192.168.0.1/16')", True),
    ("cidr('192.168.0.0/24').containsIP(ip('192.168.0.1'))", True),
    ("cidr('192.168.0.0/24').containsIP(ip('192.168.1.1'))", False),
    ("cidr('192.168.0.0/24').containsIP('192.168.0.1')", True),
    ("cidr('192.168.0.0/24').containsIP('192.168.1.1')", False),
    ("cidr('192.168.0.0/16').containsCIDR(cidr('192.168.10.0/24'))", True),
    ("cidr('192.168.1.0/24').containsCIDR(cidr('192.168.2.0/24'))", False),
    ("cidr('192.168.0.0/16').containsCIDR('192.168.10.0/24')", True),
    ("cidr('192.168.1.0/24').containsCIDR('192.168.2.0/24')", False),
    ("cidr('192.168.0.1/24').ip() == ip('192.168.0.1')", True),
    ("cidr('192.168.0.1/24').ip().family()", 4),
    ("cidr('::1/128').ip() == ip('::1')", True),
    ("cidr('::1/128').ip().family()", 6),
    ("cidr('192.168.0.0/24').masked() == cidr('192.168.0.0/24')", True),
    ("cidr('192.168.0.1/24').masked() == cidr('192.168.0.0/24')", True),
    ("cidr('192.168.0.0/24') == cidr('192.168.0.0/24').masked()", True),
    ("cidr('192.168.0.1/24') == cidr('192.168.0.1/24').masked()", False),
    ("cidr('192.168.0.0/16').prefixLength()", 16),
    ("cidr('::1/128').prefixLength()", 128),
]


@pytest.mark.parametrize(("name", "expression", "expected"), KUBERNETES_TEST_CIDR)
def test_kubernetes_cidr_test(name: str, expression: str, expected: object) -> None:
    check(expression, expected)


@pytest.mark.parametrize(("expression", "expected"), KUBERNETES_DOC_EXAMPLES)
def test_kubernetes_doc_examples(expression: str, expected: object) -> None:
    check(expression, expected)


REFUSED = [
    ("192.168.0.0", "netip.ParsePrefix(\"192.168.0.0\"): no '/'"),
    ("192.168.0.0/33", 'netip.ParsePrefix("192.168.0.0/33"): prefix length out of range'),
    ("::1/129", 'netip.ParsePrefix("::1/129"): prefix length out of range'),
    ("10.0.0.0/08", 'netip.ParsePrefix("10.0.0.0/08"): bad bits after slash: "08"'),
    ("10.0.0.0/+8", 'netip.ParsePrefix("10.0.0.0/+8"): bad bits after slash: "+8"'),
    ("10.0.0.0/-1", 'netip.ParsePrefix("10.0.0.0/-1"): bad bits after slash: "-1"'),
    ("10.0.0.0/ 8", 'netip.ParsePrefix("10.0.0.0/ 8"): bad bits after slash: " 8"'),
    ("10.0.0.0/8 ", 'netip.ParsePrefix("10.0.0.0/8 "): bad bits after slash: "8 "'),
    ("10.0.0.0/٨", 'netip.ParsePrefix("10.0.0.0/٨"): bad bits after slash: "٨"'),
    (
        "10.0.0.0/99999999999999999999",
        'netip.ParsePrefix("10.0.0.0/99999999999999999999"): bad bits after slash: '
        '"99999999999999999999"',
    ),
    (
        "10.0.0.0/9223372036854775807",
        'netip.ParsePrefix("10.0.0.0/9223372036854775807"): prefix length out of range',
    ),
    (
        "10.0.0/8",
        'netip.ParsePrefix("10.0.0/8"): ParseAddr("10.0.0"): IPv4 address too short',
    ),
    (
        "fe80::1%eth0/64",
        'netip.ParsePrefix("fe80::1%eth0/64"): IPv6 zones cannot be present in a prefix',
    ),
    (
        "1.2.3.4/24/8",
        'netip.ParsePrefix("1.2.3.4/24/8"): ParseAddr("1.2.3.4/24"): unexpected character '
        '(at "/24")',
    ),
]


@pytest.mark.parametrize(("text", "why"), REFUSED)
def test_refused_with_kubernetes_words(text: str, why: str) -> None:
    outcome = run("cidr(s)", s=text)
    assert (outcome.stage, plain(outcome.message)) == ("runtime", _WHY + _WHY + why)
    assert run("isCIDR(s)", s=text).value is False
    # containsCIDR with a string passes the parse error on (Kubernetes: MaybeNoSuchOverloadErr
    # of the error is the error) ...
    contains = run("cidr('10.0.0.0/8').containsCIDR(s)", s=text)
    assert plain(contains.message) == _WHY + _WHY + why


def test_ipv4_mapped_refused_once_wrapped() -> None:
    outcome = run("cidr(s)", s="::ffff:1.2.3.4/120")
    assert (
        plain(outcome.message)
        == _WHY + 'IPv4-mapped IPv6 address "::ffff:1.2.3.4/120" is not allowed'
    )
    assert run("isCIDR('::ffff:1.2.3.4/120')").value is False


def test_contains_ip_with_no_address_is_no_such_overload() -> None:
    # ... while containsIP with a string that is no address says "no such overload": Kubernetes'
    # cidrContainsIP reports MaybeNoSuchOverloadErr of its receiver, which is no error.
    for text in ("bad", "fe80::1%eth0", "::ffff:1.2.3.4", "10.0.0.0/8"):
        outcome = run("cidr('10.0.0.0/8').containsIP(s)", s=text)
        assert (outcome.stage, plain(outcome.message)) == ("runtime", "no such overload")


def test_families_never_contain_each_other() -> None:
    cases = {
        "cidr('0.0.0.0/0').containsIP(ip('::1'))": False,
        "cidr('::/0').containsIP(ip('127.0.0.1'))": False,
        "cidr('0.0.0.0/0').containsCIDR(cidr('::/0'))": False,
        "cidr('::/0').containsCIDR(cidr('0.0.0.0/0'))": False,
        "cidr('::/0').containsCIDR('::1/128')": True,
        "cidr('0.0.0.0/0').containsCIDR('10.0.0.0/8')": True,
        "cidr('10.0.0.1/8').containsCIDR(cidr('10.0.0.0/8'))": True,
        "cidr('10.0.0.0/8').containsCIDR(cidr('10.255.0.0/7'))": False,
        "cidr('10.1.2.3/8').containsIP('10.200.0.1')": True,
    }
    for expression, expected in cases.items():
        assert run(expression).value is expected, expression


def test_text_and_equality() -> None:
    # Go's Prefix ==: the address as written and the length; String() is its text.
    assert run("string(cidr('2001:DB8:0::1/64'))").value == "2001:db8::1/64"
    assert run("string(cidr('10.0.0.1/8').masked())").value == "10.0.0.0/8"
    assert run("string(cidr('2001:db8::1/0').masked())").value == "::/0"
    assert run("cidr('10.0.0.1/8') == cidr('10.0.0.1/8')").value is True
    assert run("cidr('10.0.0.1/8') == cidr('10.0.0.0/8')").value is False
    assert run("cidr('10.0.0.0/8') == cidr('10.0.0.0/9')").value is False
    assert run("cidr('::a00:0/104') == cidr('10.0.0.0/8')").value is False
    assert run("string(ip('10.0.0.1')) + ' ' + string(cidr('10.0.0.0/8'))").value == (
        "10.0.0.1 10.0.0.0/8"
    )


def test_literals_refused_when_compiling() -> None:
    compiled = ENVIRONMENTS.compile(
        (), "cidr('10.0.0.0/8').containsIP('10.0.0.300') || cidr('10/8').containsCIDR('x')"
    )
    offsets = [offset for offset, _ in compiled.bad_constants]
    assert offsets == [30, 52, 73]
    assert "IPv4 field has value >255" in compiled.bad_constants[0][1]
    assert ENVIRONMENTS.compile((), "isCIDR('10/8')").bad_constants == ()


HOSTILE = [
    "1" * (1 << 20),
    "/" * (1 << 20),
    "10.0.0.0/" + "1" * (1 << 20),
    "10.0.0.0/" + "0" * (1 << 20),
    "1:" * (1 << 19) + "/8",
    "\u00e9" * (1 << 20) + "/8",
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: f"{t[:6]!r}x{len(t)}")
def test_a_mebibyte_returns(text: str) -> None:
    assert run("isCIDR(s)", s=text).value is False
    assert run("cidr(s)", s=text).stage == "runtime"
    assert run("cidr('10.0.0.0/8').containsCIDR(s)", s=text).stage == "runtime"
    assert run("cidr('10.0.0.0/8').containsIP(s)", s=text).stage == "runtime"
