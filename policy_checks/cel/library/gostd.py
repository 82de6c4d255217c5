"""What Kubernetes' libraries take from Go's standard library and show in their messages, ported
so that the messages are Kubernetes' word for word: `strconv.Quote` (the `%q` of an error),
`net/url.ParseRequestURI` with the `netip.ParseAddr` it checks bracketed hosts with (Go 1.26,
`urlstrictcolons=1`, the release Kubernetes' go.mod names: `go 1.26.0`), and `time.Parse` of a
full date. Go strings are bytes: these work on the UTF-8 bytes, as Go does.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

_ESCAPES = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}


def _printable(char: str) -> bool:
    """strconv.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space."""
    return char == " " or unicodedata.category(char)[0] in "LMNPS"


def quote(text: str | bytes) -> str:
    """strconv.Quote: a double-quoted Go string literal; a byte that is not UTF-8 is `\\xNN`."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    # Most text is printable ASCII: only the other characters go through Python (a mebibyte of
    # the first kind is quoted in milliseconds).
    return '"' + _SPECIAL.sub(_escaped, text) + '"'


_SPECIAL = re.compile(r"[^ !#-\[\]-~]")


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte the UTF-8 decoder could not read
        return f"\\x{code - 0xDC00:02x}"
    if char in '"\\':
        return "\\" + char
    if 0xD800 <= code <= 0xDFFF:  # not a valid rune: Go writes U+FFFD
        return "\\ufffd"
    if _printable(char):
        return char
    if code in _ESCAPES:
        return _ESCAPES[code]
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


# -- net/url: ParseRequestURI (url.go, Go 1.26) ------------------------------------------------

_PATH, _HOST, _ZONE, _USER_PASSWORD = "path", "host", "zone", "userpassword"
_ALPHANUMERIC = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_HEX = frozenset(b"0123456789abcdefABCDEF")


def _should_escape(c: int, mode: str) -> bool:
    """shouldEscape, for the modes parsing uses."""
    if c in _ALPHANUMERIC:
        return False
    if mode in (_HOST, _ZONE) and c in b"!$&'()*+,;=:[]<>\"":
        return False
    if c in b"-_.~":
        return False
    if c in b"$&+,/:;=?@":
        if mode == _PATH:
            return c == ord("?")
        if mode == _USER_PASSWORD:
            return c in b"@/?:"
    return True


def _unescape(s: bytes, mode: str) -> None:
    """unescape's checks (the decoded text is not needed): raises with EscapeError's or
    InvalidHostError's text."""
    i = 0
    while i < len(s):
        c = s[i]
        if c == ord("%"):
            if i + 2 >= len(s) or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise ValueError(f"invalid URL escape {quote(s[i : i + 3])}")
            escape = s[i : i + 3]
            value = int(escape[1:], 16)
            if mode == _HOST and value >> 4 < 8 and escape != b"%25":
                raise ValueError(f"invalid URL escape {quote(escape)}")
            if (
                mode == _ZONE
                and escape != b"%25"
                and value != 0x20
                and _should_escape(value, _HOST)
            ):
                raise ValueError(f"invalid URL escape {quote(escape)}")
            i += 3
            continue
        if mode in (_HOST, _ZONE) and c < 0x80 and _should_escape(c, mode):
            raise ValueError(f"invalid character {quote(bytes([c]))} in host name")
        i += 1


def _unescaped(s: bytes, mode: str) -> bytes:
    _unescape(s, mode)
    return re.sub(rb"%([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), s)


def _valid_optional_port(port: bytes) -> bool:
    return not port or (port[:1] == b":" and all(c in b"0123456789" for c in port[1:]))


_USERINFO = frozenset(_ALPHANUMERIC | frozenset(b"-._:~!$&'()*+,;=%@"))


def _parse_host(host: bytes) -> None:
    """parseHost, as Go 1.26.1 has it: an IP literal only at the start of the host and checked
    by netip.ParseAddr; outside brackets the first colon starts the port (urlstrictcolons=1)."""
    bracket = host.rfind(b"[")
    if bracket > 0:
        raise ValueError("invalid IP-literal")
    if bracket == 0:
        close = host.rfind(b"]")
        if close < 0:
            raise ValueError("missing ']' in host")
        colon_port = host[close + 1 :]
        if not _valid_optional_port(colon_port):
            raise ValueError(f"invalid port {quote(colon_port)} after host")
        _unescape(colon_port, _HOST)
        hostname = host[1:close]
        zone = hostname.find(b"%25")
        if zone >= 0:
            address = _unescaped(hostname[:zone], _HOST) + _unescaped(hostname[zone:], _ZONE)
        else:
            address = _unescaped(hostname, _HOST)
        try:
            is4 = parse_addr(address)
        except ValueError as exc:
            raise ValueError(f"invalid host: {exc}") from None
        if is4:
            raise ValueError("invalid IP-literal")
        return
    colon = host.find(b":")
    if colon >= 0 and not _valid_optional_port(host[colon:]):
        raise ValueError(f"invalid port {quote(host[colon:])} after host")
    _unescape(host, _HOST)


def _parse_authority(authority: bytes) -> None:
    at = authority.rfind(b"@")
    _parse_host(authority[at + 1 :] if at >= 0 else authority)
    if at < 0:
        return
    userinfo = authority[:at]
    if not all(c in _USERINFO for c in userinfo):  # a byte of a non-ASCII rune is not
        raise ValueError("net/url: invalid userinfo")
    username, _, password = userinfo.partition(b":")
    _unescape(username, _USER_PASSWORD)
    if b":" in userinfo:
        _unescape(password, _USER_PASSWORD)


def _parse_request(raw: bytes) -> None:
    if any(c < 0x20 or c == 0x7F for c in raw):
        raise ValueError("net/url: invalid control character in URL")
    if not raw:
        raise ValueError("empty url")
    if raw == b"*":
        return
    scheme, rest = b"", raw
    for i, c in enumerate(raw):  # getScheme
        if c in _ALPHANUMERIC and not (48 <= c <= 57):
            continue
        if c in b"0123456789+-.":
            if i == 0:
                break
            continue
        if c == ord(":"):
            if i == 0:
                raise ValueError("missing protocol scheme")
            scheme, rest = raw[:i], raw[i + 1 :]
        break
    rest = rest.partition(b"?")[0]  # the query (or the ForceQuery "?")
    if not rest.startswith(b"/"):
        if scheme:
            return  # an opaque URL: nothing more is parsed
        raise ValueError("invalid URI for request")
    if scheme and rest.startswith(b"//"):
        authority, slash, path = rest[2:].partition(b"/")
        _parse_authority(authority)
        rest = slash + path
    _unescape(rest, _PATH)


def parse_request_uri(raw: str) -> str | None:
    """url.ParseRequestURI: None when it parses, else its error text, `parse "<url>": why`."""
    try:
        _parse_request(raw.encode())
    except ValueError as exc:
        return f"parse {quote(raw)}: {exc}"
    return None


# -- net/netip: ParseAddr's errors --------------------------------------------------------------


def parse_addr(address: bytes) -> bool:
    """netip.ParseAddr: whether the address is IPv4; raises with its error text."""

    def fail(message: str, at: bytes = b"") -> ValueError:
        where = f" (at {quote(at)})" if at else ""
        return ValueError(f"ParseAddr({quote(address)}): {message}{where}")

    for c in address:
        if c == ord("."):
            _ipv4_fields(address, fail)
            return True
        if c == ord(":"):
            _ipv6(address, fail)
            return False
        if c == ord("%"):
            raise fail("missing IPv6 address")
    raise fail("unable to parse IP")


def _ipv4_fields(s: bytes, fail: Callable[..., ValueError]) -> None:
    """parseIPv4Fields over s (the whole input's tail, for an embedded IPv4)."""
    value, position, digits = 0, 0, 0
    for i, c in enumerate(s):
        if 48 <= c <= 57:
            if digits == 1 and value == 0:
                raise fail("IPv4 field has octet with leading zero")
            value = value * 10 + c - 48
            digits += 1
            if value > 255:
                raise fail("IPv4 field has value >255")
        elif c == ord("."):
            if i == 0 or i == len(s) - 1 or s[i - 1] == ord("."):
                raise fail("IPv4 field must have at least one digit", s[i:])
            if position == 3:
                raise fail("IPv4 address too long")
            position += 1
            value, digits = 0, 0
        else:
            raise fail("unexpected character", s[i:])
    if position < 3:
        raise fail("IPv4 address too short")


def _ipv6(whole: bytes, fail: Callable[..., ValueError]) -> None:
    """parseIPv6's checks."""
    s, percent, zone = whole.partition(b"%")
    if percent and not zone:
        raise fail("zone must be a non-empty string")
    ellipsis = -1
    if s.startswith(b"::"):
        ellipsis, s = 0, s[2:]
        if not s:
            return
    i = 0
    while i < 16:
        off, acc = 0, 0
        while off < len(s) and s[off] in _HEX:
            acc = (acc << 4) + int(chr(s[off]), 16)
            if off > 3:
                raise fail("each group must have 4 or less digits", s)
            if acc > 0xFFFF:
                raise fail("IPv6 field has value >=2^16", s)
            off += 1
        if off == 0:
            raise fail("each colon-separated field must have at least one digit", s)
        if off < len(s) and s[off] == ord("."):
            if ellipsis < 0 and i != 12:
                raise fail(
                    "embedded IPv4 address must replace the final 2 fields of the address", s
                )
            if i + 4 > 16:
                raise fail(
                    "too many hex fields to fit an embedded IPv4 at the end of the address", s
                )
            _ipv4_fields(s, fail)
            s, i = b"", i + 4
            break
        i += 2
        s = s[off:]
        if not s:
            break
        if s[:1] != b":":
            raise fail("unexpected character, want colon", s)
        if len(s) == 1:
            raise fail("colon must be followed by more characters", s)
        s = s[1:]
        if s[:1] == b":":
            if ellipsis >= 0:
                raise fail("multiple :: in address", s)
            ellipsis, s = i, s[1:]
            if not s:
                break
    if s:
        raise fail("trailing garbage after address", s)
    if i < 16 and ellipsis < 0:
        raise fail("address string too short")
    if i >= 16 and ellipsis >= 0:
        raise fail("the :: must expand to at least one field of zeros")


# -- time: Parse("2006-01-02", s) -----------------------------------------------------------------


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def parses_as_full_date(text: str) -> bool:
    """Whether time.Parse(RFC3339FullDate, text) succeeds: four digits of year, two of month
    (1-12) and two of day (in the month, a proleptic Gregorian year 0 being a leap year)."""
    raw = text.encode()
    if len(raw) != 10 or raw[4:5] != b"-" or raw[7:8] != b"-":
        return False
    digits = raw[:4] + raw[5:7] + raw[8:10]
    if not all(48 <= c <= 57 for c in digits):
        return False
    year, month, day = int(raw[:4]), int(raw[5:7]), int(raw[8:10])
    return 1 <= month <= 12 and 1 <= day <= _days_in(month, year)
