"""Kubernetes' CIDR library (docs/contract.md section 8): `cidr(string)`, `isCIDR(string)`,
`string(net.CIDR)` and the members `containsIP(net.IP | string)`, `containsCIDR(net.CIDR |
string)`, `ip()`, `masked()`, `prefixLength()`; the type `net.CIDR`.

Ported from k8s.io/apiserver `pkg/cel/library/cidr.go` and `pkg/cel/cidr.go` at commit
24a394e516bfda066d7e2221d7d92c052de27c54, pinned by `pkg/cel/library/cidr_test.go` there
(tests/test_cel_library_cidr.py). Kubernetes parses with Go's `net/netip.ParsePrefix` and then
refuses IPv4-mapped IPv6 addresses; the address is kept as written (`cidr('10.0.0.1/8')` is
valid, its `ip()` is 10.0.0.1, `masked()` gives 10.0.0.0/8).

- Parsing is a port of `netip.ParsePrefix` over the port of `netip.ParseAddr` in
  `library/ip.py`, for the same reasons (Kubernetes' tests pin the messages, which Kubernetes
  wraps twice: "network address parse error during conversion from string: network address
  parse error ...", as its code does).
- A value is Go's `Prefix.String()`, the address's canonical text, '/', the prefix length: one
  text per (address, length), so the engine's message equality is Go's `Prefix ==`
  (`cidr('10.0.0.1/8') != cidr('10.0.0.0/8')`, as in Kubernetes).
- Masking and containment use `ipaddress` networks (`strict=False` masks as Go's `Masked`
  does); Go answers false across families where `ipaddress.subnet_of` raises, so the families
  are compared first.
- As in Kubernetes, `containsIP` with a string that is no address fails with "no such
  overload" (its code hands the parse error to a check that reports the receiver), while
  `containsCIDR` with a string that is no CIDR fails with the parse error.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from policy_checks.cel import messages
from policy_checks.cel.library import ConstantCheck, Library, refusal
from policy_checks.cel.library import ip as iplib
from policy_checks.cel.library.declarations import Declaration, functions
from policy_checks.cel.library.gotext import quote

TYPE = "net.CIDR"

# Kubernetes' cidrLibraryDecls: (function, overload id, arguments (receiver first), result, member).
DECLARATIONS: tuple[Declaration, ...] = (
    ("cidr", "string_to_cidr", ("string",), TYPE, False),
    ("isCIDR", "is_cidr", ("string",), "bool", False),
    ("string", "cidr_to_string", (TYPE,), "string", False),
    ("containsIP", "cidr_contains_ip_string", (TYPE, "string"), "bool", True),
    ("containsIP", "cidr_contains_ip_ip", (TYPE, iplib.TYPE), "bool", True),
    ("containsCIDR", "cidr_contains_cidr_string", (TYPE, "string"), "bool", True),
    ("containsCIDR", "cidr_contains_cidr", (TYPE, TYPE), "bool", True),
    ("ip", "cidr_ip", (TYPE,), iplib.TYPE, True),
    ("prefixLength", "cidr_prefix_length", (TYPE,), "int", True),
    ("masked", "cidr_masked", (TYPE,), TYPE, True),
)

# A CIDR literal that cannot be one is refused when compiling, and so is the string argument of
# `containsIP`/`containsCIDR` that could never be an address or a CIDR (Kubernetes fails these
# only at evaluation).
CONSTANTS = {
    "cidr": (0, lambda text: check_cidr(text)),
    "containsCIDR": (1, lambda text: check_cidr(text)),
    "containsIP": (1, lambda text: iplib.check_ip(text)),
}

_INT64_MAX = (1 << 63) - 1


class PrefixError(ValueError):
    """A `netip.parsePrefixError`."""

    def __init__(self, text: str, msg: str) -> None:
        super().__init__(f"netip.ParsePrefix({quote(text)}): {msg}")


def parse_prefix(text: str) -> tuple[iplib.Addr, int]:
    """`netip.ParsePrefix`: an address, '/', a decimal length within its family's."""
    slash = text.rfind("/")
    if slash < 0:
        raise PrefixError(text, "no '/'")
    try:
        addr = iplib.parse_addr(text[:slash])
    except iplib.AddrError as exc:
        raise PrefixError(text, str(exc)) from None
    if addr.zone:
        raise PrefixError(text, "IPv6 zones cannot be present in a prefix")
    length = text[slash + 1 :]
    # strconv.Atoi with Go's extra refusal of a sign or a leading zero: decimal digits only,
    # within int64 (a longer number is as bad as a letter).
    bad = len(length) > 1 and not "1" <= length[0] <= "9"
    if bad or not length or not all("0" <= char <= "9" for char in length):
        raise PrefixError(text, "bad bits after slash: " + quote(length))
    if len(length) > 19 or int(length) > _INT64_MAX:
        raise PrefixError(text, "bad bits after slash: " + quote(length))
    bits = int(length)
    if bits > addr.bits:
        raise PrefixError(text, "prefix length out of range")
    return addr, bits


def parse_cidr(text: str) -> tuple[iplib.Addr, int]:
    """Kubernetes' `stringToCIDR` over its `parseCIDR`: ValueError with its (doubled) wording."""
    why = "network address parse error during conversion from string: "
    try:
        addr, bits = parse_prefix(text)
    except PrefixError as exc:
        raise ValueError(why + why + str(exc)) from None
    if addr.is_4in6():
        raise ValueError(why + f"IPv4-mapped IPv6 address {quote(text)} is not allowed")
    return addr, bits


check_cidr: ConstantCheck = refusal(parse_cidr)


def value_of(addr: iplib.Addr, bits: int) -> Any:
    return messages.opaque(TYPE, f"{addr.text()}/{bits}")


def _network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The network a value names, its host bits masked off (Go's `Masked`)."""
    return ipaddress.ip_network(messages.text_of(value), strict=False)


def _cidr(text: str) -> Any:
    return value_of(*parse_cidr(text))


def _is_cidr(text: str) -> bool:
    return check_cidr(text) is None


def _string(value: Any) -> str:
    return messages.text_of(value)


def _contains_ip(value: Any, ip: Any) -> bool:
    network, address = _network(value), iplib.address(ip)
    # Go's Prefix.Contains: an address of the other family is not contained.
    return network.version == address.version and address in network


def _contains_ip_string(value: Any, text: str) -> bool:
    try:
        addr = iplib.parse_ip(text)
    except ValueError:
        # Kubernetes: stringToIP's error reaches cidrContainsIP, whose type check answers
        # MaybeNoSuchOverloadErr(receiver), and the receiver is no error.
        raise ValueError("no such overload") from None
    return _contains_ip(value, iplib.value_of(addr))


def _contains_cidr(value: Any, other: Any) -> bool:
    # Kubernetes: Overlaps(other) && Bits() <= other.Bits(), which is "other's network lies
    # within this one" for one family, and false across families.
    network, inner = _network(value), _network(other)
    if isinstance(network, ipaddress.IPv4Network) and isinstance(inner, ipaddress.IPv4Network):
        return inner.subnet_of(network)
    if isinstance(network, ipaddress.IPv6Network) and isinstance(inner, ipaddress.IPv6Network):
        return inner.subnet_of(network)
    return False


def _contains_cidr_string(value: Any, text: str) -> bool:
    return _contains_cidr(value, _cidr(text))


def _ip(value: Any) -> Any:
    # The address as written, not masked.
    return messages.opaque(iplib.TYPE, messages.text_of(value).rpartition("/")[0])


def _prefix_length(value: Any) -> int:
    return int(messages.text_of(value).rpartition("/")[2])


def _masked(value: Any) -> Any:
    network = _network(value)
    return messages.opaque(TYPE, f"{network.network_address.compressed}/{network.prefixlen}")


_IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    "string_to_cidr": _cidr,
    "is_cidr": _is_cidr,
    "cidr_to_string": _string,
    "cidr_contains_ip_string": _contains_ip_string,
    "cidr_contains_ip_ip": _contains_ip,
    "cidr_contains_cidr_string": _contains_cidr_string,
    "cidr_contains_cidr": _contains_cidr,
    "cidr_ip": _ip,
    "cidr_prefix_length": _prefix_length,
    "cidr_masked": _masked,
}

LIBRARY = Library(
    "kubernetes.net.cidr",
    functions(DECLARATIONS, _IMPLEMENTATIONS),
    opaque_types=(TYPE, iplib.TYPE),  # Kubernetes' Types(): both
    constants=CONSTANTS,
)
