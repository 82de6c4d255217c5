"""Kubernetes' IP address library (docs/contract.md section 8): `ip(string)`, `isIP(string)`,
`ip.isCanonical(string)`, `string(net.IP)` and the members `family`, `isUnspecified`,
`isLoopback`, `isLinkLocalMulticast`, `isLinkLocalUnicast`, `isGlobalUnicast`; the type `net.IP`.

Ported from k8s.io/apiserver `pkg/cel/library/ip.go` and `pkg/cel/ip.go` at commit
24a394e516bfda066d7e2221d7d92c052de27c54, pinned by `pkg/cel/library/ip_test.go` there
(tests/test_cel_library_ip.py). Kubernetes parses with Go's `net/netip.ParseAddr` (Go 1.26, its
go.mod's toolchain) and then refuses zones and IPv4-mapped IPv6 addresses. The port was read
from a newer Go tree (src/net/netip/netip.go after 1.27), whose ParseAddr has the two changes
since the 1.22 era: at most 4 hex digits a group, and embedded-IPv4 errors not wrapped.

- Parsing is a port of `netip.ParseAddr`, not Python's `ipaddress`: the error messages are part
  of Kubernetes' (its tests pin them), and the two accept different strings (`ipaddress` takes a
  scope id `fe80::1%eth0` where Go's zone is refused afterwards by Kubernetes with its own
  message, and words its refusals otherwise).
- A value is the address's canonical text, Go's `Addr.String()` (RFC 5952: lower case, the
  longest run of zero groups, leftmost on a tie, elided when at least two long); `ipaddress`
  formats exactly so (`compressed`) for every address Kubernetes accepts (it prints IPv4-mapped
  ones differently, and those are refused). One text per address makes the engine's message
  equality Kubernetes' `Addr ==`.
- The properties use `ipaddress` where its definitions are Go's (unspecified, loopback, link-local
  unicast, multicast); Go's link-local multicast (224.0.0.0/24, ff02::/16 with any flags) and
  global unicast (anything but unspecified, broadcast, loopback, multicast and link-local
  unicast: private and ULA addresses count) are Go's own, computed here. `ipaddress.is_global`
  means something else (IANA's special registries) and is not used.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from policy_checks.cel import messages
from policy_checks.cel.library import ConstantCheck, Library, refusal
from policy_checks.cel.library.declarations import Declaration, functions
from policy_checks.cel.library.gotext import quote

TYPE = "net.IP"

# Kubernetes' ipLibraryDecls: (function, overload id, arguments (receiver first), result, member).
DECLARATIONS: tuple[Declaration, ...] = (
    ("ip", "string_to_ip", ("string",), TYPE, False),
    ("isIP", "is_ip", ("string",), "bool", False),
    ("ip.isCanonical", "ip_is_canonical", ("string",), "bool", False),
    ("string", "ip_to_string", (TYPE,), "string", False),
    ("family", "ip_family", (TYPE,), "int", True),
    ("isUnspecified", "ip_is_unspecified", (TYPE,), "bool", True),
    ("isLoopback", "ip_is_loopback", (TYPE,), "bool", True),
    ("isLinkLocalMulticast", "ip_is_link_local_multicast", (TYPE,), "bool", True),
    ("isLinkLocalUnicast", "ip_is_link_local_unicast", (TYPE,), "bool", True),
    ("isGlobalUnicast", "ip_is_global_unicast", (TYPE,), "bool", True),
)

# An address literal that cannot be one is refused when compiling; `ip.isCanonical` of one would
# fail at every evaluation (Kubernetes itself fails both only then).
CONSTANTS = {
    "ip": (0, lambda text: check_ip(text)),
    "ip.isCanonical": (0, lambda text: check_ip(text)),
}

# -- Go's netip.ParseAddr ------------------------------------------------------------------------


class AddrError(ValueError):
    """A `netip.parseAddrError`: its `Error()` text is the exception's message."""

    def __init__(self, text: str, msg: str, at: str = "") -> None:
        detail = f" (at {quote(at)})" if at else ""
        super().__init__(f"ParseAddr({quote(text)}): {msg}{detail}")


@dataclass(frozen=True)
class Addr:
    """A parsed address: `bits` 32 or 128, its value, and an IPv6 zone ("" for none)."""

    bits: int
    value: int
    zone: str = ""

    def is_4in6(self) -> bool:
        return self.bits == 128 and self.value >> 32 == 0xFFFF

    def text(self) -> str:
        """Go's `Addr.String()` for an address that is not IPv4-mapped and has no zone."""
        if self.bits == 32:
            return str(ipaddress.IPv4Address(self.value))
        return ipaddress.IPv6Address(self.value).compressed


def parse_addr(text: str) -> Addr:
    """`netip.ParseAddr`: the first '.', ':' or '%' decides what `text` is tried as."""
    for char in text:
        if char == ".":
            return Addr(32, _ipv4_fields(text, 0, len(text)))
        if char == ":":
            return _parse_ipv6(text)
        if char == "%":
            # Taken for an IPv6 address with a zone whose address is missing.
            raise AddrError(text, "missing IPv6 address")
    raise AddrError(text, "unable to parse IP")


def _ipv4_fields(whole: str, start: int, end: int) -> int:
    """`parseIPv4Fields`: `whole[start:end]` as four decimal octets, no leading zeros; errors
    name `whole` (the full input, when the IPv4 part is embedded in an IPv6 address)."""
    part = whole[start:end]
    value = position = digits = 0
    fields = [0, 0, 0, 0]
    for index, char in enumerate(part):
        if "0" <= char <= "9":
            if digits == 1 and value == 0:
                raise AddrError(whole, "IPv4 field has octet with leading zero")
            value = value * 10 + ord(char) - 48
            digits += 1
            if value > 255:
                raise AddrError(whole, "IPv4 field has value >255")
        elif char == ".":
            # .1.2.3, 1.2.3. and 1..2.3
            if index == 0 or index == len(part) - 1 or part[index - 1] == ".":
                raise AddrError(whole, "IPv4 field must have at least one digit", part[index:])
            if position == 3:  # 1.2.3.4.5
                raise AddrError(whole, "IPv4 address too long")
            fields[position] = value
            position += 1
            value = digits = 0
        else:
            raise AddrError(whole, "unexpected character", part[index:])
    if position < 3:
        raise AddrError(whole, "IPv4 address too short")
    fields[3] = value
    return fields[0] << 24 | fields[1] << 16 | fields[2] << 8 | fields[3]


def _parse_ipv6(whole: str) -> Addr:
    """`parseIPv6`, byte for byte in its checks and its messages."""
    rest, zone = whole, ""
    # The zone is split off first, as Go does.
    percent = rest.find("%")
    if percent != -1:
        rest, zone = rest[:percent], rest[percent + 1 :]
        if zone == "":
            raise AddrError(whole, "zone must be a non-empty string")
    groups = bytearray(16)
    ellipsis = -1  # where "::" is, in bytes of the address
    if len(rest) >= 2 and rest[0] == ":" and rest[1] == ":":
        ellipsis = 0
        rest = rest[2:]
        if rest == "":
            return Addr(128, 0, zone)
    index = 0
    while index < 16:
        offset = accumulated = 0
        while offset < len(rest):
            char = rest[offset]
            if "0" <= char <= "9":
                accumulated = (accumulated << 4) + ord(char) - 48
            elif "a" <= char <= "f":
                accumulated = (accumulated << 4) + ord(char) - 87
            elif "A" <= char <= "F":
                accumulated = (accumulated << 4) + ord(char) - 55
            else:
                break
            if offset > 3:
                raise AddrError(whole, "each group must have 4 or less digits", rest)
            if accumulated > 0xFFFF:
                raise AddrError(whole, "IPv6 field has value >=2^16", rest)
            offset += 1
        if offset == 0:
            raise AddrError(whole, "each colon-separated field must have at least one digit", rest)
        if offset < len(rest) and rest[offset] == ".":
            # A trailing IPv4 address.
            if ellipsis < 0 and index != 12:
                raise AddrError(
                    whole,
                    "embedded IPv4 address must replace the final 2 fields of the address",
                    rest,
                )
            if index + 4 > 16:
                raise AddrError(
                    whole,
                    "too many hex fields to fit an embedded IPv4 at the end of the address",
                    rest,
                )
            end = len(whole) - (len(zone) + 1 if zone else 0)
            groups[index : index + 4] = _ipv4_fields(whole, end - len(rest), end).to_bytes(4)
            rest = ""
            index += 4
            break
        groups[index] = accumulated >> 8
        groups[index + 1] = accumulated & 0xFF
        index += 2
        rest = rest[offset:]
        if rest == "":
            break
        if rest[0] != ":":
            raise AddrError(whole, "unexpected character, want colon", rest)
        if len(rest) == 1:
            raise AddrError(whole, "colon must be followed by more characters", rest)
        rest = rest[1:]
        if rest[0] == ":":
            if ellipsis >= 0:
                raise AddrError(whole, "multiple :: in address", rest)
            ellipsis = index
            rest = rest[1:]
            if rest == "":
                break
    if rest != "":
        raise AddrError(whole, "trailing garbage after address", rest)
    if index < 16:
        if ellipsis < 0:
            raise AddrError(whole, "address string too short")
        missing = 16 - index
        groups[ellipsis + missing : 16] = groups[ellipsis:index]
        groups[ellipsis : ellipsis + missing] = bytes(missing)
    elif ellipsis >= 0:
        raise AddrError(whole, "the :: must expand to at least one field of zeros")
    return Addr(128, int.from_bytes(groups), zone)


# -- Kubernetes' parseIPAddr ----------------------------------------------------------------------


def parse_ip(text: str) -> Addr:
    """Kubernetes' `parseIPAddr`: Go's address, without a zone, not IPv4-mapped; ValueError with
    Kubernetes' message."""
    try:
        addr = parse_addr(text)
    except AddrError as exc:
        raise ValueError(
            f"IP Address {quote(text)} parse error during conversion from string: {exc}"
        ) from None
    if addr.zone:
        raise ValueError(f"IP address {quote(text)} with zone value is not allowed")
    if addr.is_4in6():
        raise ValueError(f"IPv4-mapped IPv6 address {quote(text)} is not allowed")
    return addr


def value_of(addr: Addr) -> Any:
    return messages.opaque(TYPE, addr.text())


def address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address a `net.IP` value holds (its canonical text, which `ipaddress` reads as Go
    wrote it)."""
    return ipaddress.ip_address(messages.text_of(value))


# The constant check of an address literal: Kubernetes' message when it cannot be one.
check_ip: ConstantCheck = refusal(parse_ip)


# -- the functions ------------------------------------------------------------------------------


def _ip(text: str) -> Any:
    return value_of(parse_ip(text))


def _is_ip(text: str) -> bool:
    return check_ip(text) is None


def _is_canonical(text: str) -> bool:
    # Go's String() is the one canonical form: the input is canonical when it is that text.
    return parse_ip(text).text() == text


def _string(value: Any) -> str:
    return messages.text_of(value)


def _family(value: Any) -> int:
    return address(value).version


def _is_unspecified(value: Any) -> bool:
    return address(value).is_unspecified


def _is_loopback(value: Any) -> bool:
    return address(value).is_loopback


def _is_link_local_multicast(value: Any) -> bool:
    addr = address(value)
    if addr.version == 4:
        return int(addr) >> 8 == 0xE00000  # 224.0.0.0/24
    return int(addr) >> 112 & 0xFF0F == 0xFF02  # ff02::/16, any flags (netip's mask)


def _is_link_local_unicast(value: Any) -> bool:
    return address(value).is_link_local


def _is_global_unicast(value: Any) -> bool:
    addr = address(value)
    if addr.version == 4 and int(addr) in (0, 0xFFFFFFFF):
        return False
    return not (addr.is_unspecified or addr.is_loopback or addr.is_multicast or addr.is_link_local)


_IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    "string_to_ip": _ip,
    "is_ip": _is_ip,
    "ip_is_canonical": _is_canonical,
    "ip_to_string": _string,
    "ip_family": _family,
    "ip_is_unspecified": _is_unspecified,
    "ip_is_loopback": _is_loopback,
    "ip_is_link_local_multicast": _is_link_local_multicast,
    "ip_is_link_local_unicast": _is_link_local_unicast,
    "ip_is_global_unicast": _is_global_unicast,
}

LIBRARY = Library(
    "kubernetes.net.ip",
    functions(DECLARATIONS, _IMPLEMENTATIONS),
    opaque_types=(TYPE,),
    constants=CONSTANTS,
)
