"""Kubernetes' URL library (docs/contract.md section 8): `url(string)`, `isURL(string)` and the
members `getScheme`, `getHost`, `getHostname`, `getPort`, `getEscapedPath`, `getQuery`; the type
`kubernetes.URL`.

Ported from k8s.io/apiserver `pkg/cel/library/urls.go` and `pkg/cel/url.go` at commit
24a394e516bfda066d7e2221d7d92c052de27c54, pinned by the rule table "URL parsing" of
apiextensions-apiserver `pkg/apiserver/schema/cel/validation_test.go` and the examples of
`urls.go` (tests/test_cel_library_urls.py). Kubernetes checks a string with Go's
`url.ParseRequestURI` (an absolute URI, or an absolute path: what OpenAPI's `uri` format
accepts) and then keeps `url.Parse` of it (which splits off the fragment, and reads `//host/p`
as an authority where ParseRequestURI saw a path).

The parser is a port of Go 1.26's `net/url` (Kubernetes' go.mod: go 1.26.0, godebug default
go1.26): on bytes, as Go's strings are, with its messages. It was read from a newer Go tree
(src/net/url/url.go, the development tree after 1.27); what it has that 1.26.0 may lack is the
narrowing of strict colons to http and https (go.dev/issue/78077) and String()'s "%2F" for an
authority-less path starting with "//". Go 1.26 behaviour that an older
`net/url` or Python's `urllib.parse` would get wrong, kept here:
- a host in brackets must be an IPv6 address by `netip.ParseAddr` ("invalid host: ..."), and an
  IPv4 address in brackets is "invalid IP-literal";
- http and https hosts with more than one colon are refused (`urlstrictcolons`, on by default
  since Go 1.26: `https://a:b:c/`), other schemes take the last colon for the port;
- a query of more than 10,000 parameters reads as none (`urlmaxqueryparams`).

A value is Go's `URL.String()` of the parsed URL, as bytes that are UTF-8 (everything it
writes is either ASCII it escaped or a piece of the input): Kubernetes' URLs are equal when
their `String()`s are, so the engine's message equality is theirs. The members parse that text
again with `url.Parse`, which gives back the same components, except for a path that starts
with "//" and that Go writes escaped (`/%2Fa b`, `http:/%2Fa b`): String() does not round-trip
there, and the value carries its input too (see `_url`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from policy_checks.cel import messages
from policy_checks.cel.library import ConstantCheck, Library, refusal
from policy_checks.cel.library import ip as iplib
from policy_checks.cel.library.declarations import Declaration, functions
from policy_checks.cel.library.gotext import decode, quote

TYPE = "kubernetes.URL"

# Kubernetes' urlLibraryDecls: (function, overload id, arguments (receiver first), result, member).
DECLARATIONS: tuple[Declaration, ...] = (
    ("url", "string_to_url", ("string",), TYPE, False),
    ("getScheme", "url_get_scheme", (TYPE,), "string", True),
    ("getHost", "url_get_host", (TYPE,), "string", True),
    ("getHostname", "url_get_hostname", (TYPE,), "string", True),
    ("getPort", "url_get_port", (TYPE,), "string", True),
    ("getEscapedPath", "url_get_escaped_path", (TYPE,), "string", True),
    ("getQuery", "url_get_query", (TYPE,), "map(string, list(string))", True),
    ("isURL", "is_url_string", ("string",), "bool", False),
)

# A URL literal that `url()` would refuse is refused when compiling (Kubernetes refuses it only
# at evaluation).
CONSTANTS = {"url": (0, lambda text: check_url(text))}

# -- Go's net/url: escaping -----------------------------------------------------------------------

PATH, PATH_SEGMENT, HOST, ZONE, USER_PASSWORD, QUERY_COMPONENT, FRAGMENT = range(7)


def _should_escape_reference(c: int, mode: int) -> bool:
    """Go's `shouldEscape` as written in `gen_encoding_table.go` (the reference its table is
    generated from), to build the same table here."""
    char = chr(c)
    if char.isascii() and char.isalnum():
        return False
    if mode in (HOST, ZONE) and char in "!$&'()*+,;=:[]<>\"":
        return False
    if char in "-_.~":
        return False
    if char in "$&+,/:;=?@":
        if mode == PATH:
            return char == "?"
        if mode == PATH_SEGMENT:
            return char in "/;,?"
        if mode == USER_PASSWORD:
            return char in "@/?:"
        if mode == QUERY_COMPONENT:
            return True
        if mode == FRAGMENT:
            return False
    return not (mode == FRAGMENT and char in "!()*")


_ESCAPE = [[_should_escape_reference(c, mode) for c in range(256)] for mode in range(7)]


def _class(byte_values: list[int]) -> bytes:
    return b"[" + b"".join(re.escape(bytes([v])) for v in byte_values) + b"]"


# Runs of bytes that a mode escapes (a query's spaces apart: they become '+'), each run escaped
# at once: a 1 MiB path is a few calls, not a million.
_TO_ESCAPE = [
    re.compile(
        _class(
            [
                c
                for c in range(256)
                if _ESCAPE[mode][c] and not (mode == QUERY_COMPONENT and c == 0x20)
            ]
        )
        + b"+"
    )
    for mode in range(7)
]
_ESCAPES = re.compile(rb"(?:%[0-9A-Fa-f]{2})+")


def _hex_run(match: re.Match[bytes]) -> bytes:
    return b"%" + match[0].hex("%").upper().encode()


def _byte_run(match: re.Match[bytes]) -> bytes:
    return bytes.fromhex(match[0].replace(b"%", b"").decode())


_BAD_PERCENT = rb"%(?![0-9A-Fa-f]{2})"
# In a host only a byte that is not ASCII may be %-escaped, or "%25" (RFC 6874's zone mark).
_HOST_ESCAPE = rb"%(?!25)[0-7][0-9A-Fa-f]"
_HOST_CHAR = _class([c for c in range(128) if _ESCAPE[HOST][c] and c != ord("%")])
# In a zone an escape may only spell a byte a host may hold as it is (so no byte past ASCII,
# which a host holds only unescaped), a space, or "%25": the others, by their first hex digit.
_ZONE_REFUSED = [v for v in range(256) if _ESCAPE[HOST][v] and v not in (0x20, 0x25)]
_ZONE_ESCAPE = (
    rb"%(?:"
    + b"|".join(
        b"%X[%s]" % (high, b"".join(b"%X" % (v & 15) for v in _ZONE_REFUSED if v >> 4 == high))
        for high in range(16)
        if any(v >> 4 == high for v in _ZONE_REFUSED)
    )
    + rb")"
)
_UNESCAPE_PROBLEMS = {
    mode: re.compile(
        b"|".join(
            [_BAD_PERCENT]
            + ([_HOST_ESCAPE] if mode == HOST else [])
            + ([_ZONE_ESCAPE] if mode == ZONE else [])
            + ([_HOST_CHAR] if mode in (HOST, ZONE) else [])
        ),
        re.IGNORECASE if mode == ZONE else 0,
    )
    for mode in range(7)
}


class URLError(ValueError):
    """An error of Go's net/url (its Error() is the message)."""


def unescape(text: bytes, mode: int) -> bytes:
    """Go's `unescape`: the first problem in the order Go's scan meets it, else the bytes with
    every %XX decoded (and '+' a space in a query)."""
    problem = _UNESCAPE_PROBLEMS[mode].search(text)
    if problem:
        at = problem.start()
        if text[at : at + 1] == b"%":
            raise URLError("invalid URL escape " + quote(text[at : at + 3]))
        raise URLError("invalid character " + quote(text[at : at + 1]) + " in host name")
    if mode == QUERY_COMPONENT and b"+" in text:
        text = text.replace(b"+", b" ")  # before decoding: %2B stays a plus
    if b"%" not in text:
        return text
    return _ESCAPES.sub(_byte_run, text)


def escape(text: bytes, mode: int) -> bytes:
    """Go's `escape`: every byte the mode does not allow as %XX, a space '+' in a query."""
    escaped = _TO_ESCAPE[mode].sub(_hex_run, text)
    return escaped.replace(b" ", b"+") if mode == QUERY_COMPONENT else escaped


_ENCODED_OK = b"!$&'()*+,;=:@[]%"
_NOT_ENCODED = {
    mode: re.compile(
        _class([c for c in range(256) if _ESCAPE[mode][c] and bytes([c]) not in _ENCODED_OK])
    )
    for mode in (PATH, FRAGMENT)
}


def valid_encoded(text: bytes, mode: int) -> bool:
    """Go's `validEncoded`: no byte that would need escaping, sub-delims, ':', '@', '[', ']'
    and '%' allowed."""
    return _NOT_ENCODED[mode].search(text) is None


# -- Go's net/url: the URL ----------------------------------------------------------------------


# A URL's user: its name and its password, None when the userinfo has no ':'.
Userinfo = tuple[bytes, bytes | None]


@dataclass
class URL:
    scheme: bytes = b""
    opaque: bytes = b""
    user: Userinfo | None = None
    host: bytes = b""
    path: bytes = b""
    raw_path: bytes = b""
    force_query: bool = False
    raw_query: bytes = b""
    fragment: bytes = b""
    raw_fragment: bytes = b""
    omit_host: bool = False

    def set_path(self, escaped: bytes) -> None:
        self.path = unescape(escaped, PATH)
        self.raw_path = b"" if escape(self.path, PATH) == escaped else escaped

    def escaped_path(self) -> bytes:
        if self.raw_path and valid_encoded(self.raw_path, PATH):
            try:
                if unescape(self.raw_path, PATH) == self.path:
                    return self.raw_path
            except URLError:
                pass
        if self.path == b"*":
            return b"*"  # not escaped (Go issue 11202)
        return escape(self.path, PATH)

    def set_fragment(self, escaped: bytes) -> None:
        self.fragment = unescape(escaped, FRAGMENT)
        self.raw_fragment = b"" if escape(self.fragment, FRAGMENT) == escaped else escaped

    def escaped_fragment(self) -> bytes:
        if self.raw_fragment and valid_encoded(self.raw_fragment, FRAGMENT):
            try:
                if unescape(self.raw_fragment, FRAGMENT) == self.fragment:
                    return self.raw_fragment
            except URLError:
                pass
        return escape(self.fragment, FRAGMENT)

    def string(self) -> bytes:
        """Go's `URL.String()`."""
        out = bytearray()
        if self.scheme:
            out += self.scheme + b":"
        if self.opaque:
            out += self.opaque
        else:
            if (self.scheme or self.host or self.user is not None) and not (
                self.omit_host and not self.host and self.user is None
            ):
                if self.host or self.path or self.user is not None:
                    out += b"//"
                if self.user is not None:
                    username, password = self.user
                    out += escape(username, USER_PASSWORD)
                    if password is not None:
                        out += b":" + escape(password, USER_PASSWORD)
                    out += b"@"
                if self.host:
                    out += escape(self.host, HOST)
            path = self.escaped_path()
            if self.omit_host and not self.host and self.user is None and path[:2] == b"//":
                # So that parsing the text again does not make the path an authority.
                out += b"%2F"
                path = path[1:]
            if path and path[:1] != b"/" and self.host:
                out += b"/"
            if not out and b":" in path.partition(b"/")[0]:
                out += b"./"  # RFC 3986 4.2: a first segment with a colon is no scheme
            out += path
        if self.force_query or self.raw_query:
            out += b"?" + self.raw_query
        if self.fragment:
            out += b"#" + self.escaped_fragment()
        return bytes(out)

    def hostname(self) -> bytes:
        return _split_host_port(self.host)[0]

    def port(self) -> bytes:
        return _split_host_port(self.host)[1]


_PORT = re.compile(rb"(?::[0-9]*)?")


def _valid_optional_port(port: bytes) -> bool:
    return _PORT.fullmatch(port) is not None


def _split_host_port(host_port: bytes) -> tuple[bytes, bytes]:
    """Go's `splitHostPort`: the port only when it is numeric; brackets off the host."""
    host, port = host_port, b""
    colon = host.rfind(b":")
    if colon != -1 and _valid_optional_port(host[colon:]):
        host, port = host[:colon], host[colon + 1 :]
    if host[:1] == b"[" and host[-1:] == b"]":
        host = host[1:-1]
    return host, port


_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_SCHEME_CHARS = re.compile(rb"[A-Za-z0-9+.\-]*")
_USERINFO = re.compile(rb"[A-Za-z0-9\-._:~!$&'()*+,;=%@]*")


def _get_scheme(raw: bytes) -> tuple[bytes, bytes]:
    """Go's `getScheme`: [a-zA-Z][a-zA-Z0-9+.-]* before a ':', else no scheme."""
    match = _SCHEME_CHARS.match(raw)
    end = match.end() if match else 0  # a pattern of '*': it always matches
    if end < len(raw) and raw[end : end + 1] == b":":
        if end == 0:
            raise URLError("missing protocol scheme")
        if raw[:1].isalpha():
            return raw[:end], raw[end + 1 :]
    return b"", raw


def _parse(raw: bytes, via_request: bool) -> URL:
    """Go's `parse`: `via_request` is ParseRequestURI's (an absolute URI or an absolute path)."""
    if _CONTROL.search(raw):
        raise URLError("net/url: invalid control character in URL")
    if raw == b"" and via_request:
        raise URLError("empty url")
    url = URL()
    if raw == b"*":
        url.path = b"*"
        return url
    scheme, rest = _get_scheme(raw)
    url.scheme = scheme.lower()
    if rest.endswith(b"?") and rest.count(b"?") == 1:
        url.force_query = True
        rest = rest[:-1]
    else:
        rest, _, url.raw_query = rest.partition(b"?")
    if not rest.startswith(b"/"):
        if url.scheme:
            url.opaque = rest  # a rootless path is opaque (RFC 3986)
            return url
        if via_request:
            raise URLError("invalid URI for request")
        if b":" in rest.partition(b"/")[0]:
            raise URLError("first path segment in URL cannot contain colon")
    if (url.scheme or (not via_request and not rest.startswith(b"///"))) and rest.startswith(b"//"):
        authority, slash, path = rest[2:].partition(b"/")
        rest = slash + path
        url.user, url.host = _parse_authority(url.scheme, authority)
    elif url.scheme and rest.startswith(b"/"):
        url.omit_host = True
    url.set_path(rest)
    return url


def _parse_authority(scheme: bytes, authority: bytes) -> tuple[Userinfo | None, bytes]:
    at = authority.rfind(b"@")
    host = _parse_host(scheme, authority[at + 1 :] if at >= 0 else authority)
    if at < 0:
        return None, host
    userinfo = authority[:at]
    if not _USERINFO.fullmatch(userinfo):
        raise URLError("net/url: invalid userinfo")
    if b":" not in userinfo:
        return (unescape(userinfo, USER_PASSWORD), None), host
    username, _, password = userinfo.partition(b":")
    return (unescape(username, USER_PASSWORD), unescape(password, USER_PASSWORD)), host


def _parse_host(scheme: bytes, host: bytes) -> bytes:
    """Go 1.26's `parseHost`: host[:port], an IP literal in brackets, or a reg-name."""
    open_bracket = host.rfind(b"[")
    if open_bracket > 0:
        raise URLError("invalid IP-literal")
    if open_bracket == 0:
        close_bracket = host.rfind(b"]")
        if close_bracket < 0:
            raise URLError("missing ']' in host")
        colon_port = host[close_bracket + 1 :]
        if not _valid_optional_port(colon_port):
            raise URLError(f"invalid port {quote(colon_port)} after host")
        unescaped_colon_port = unescape(colon_port, HOST)
        hostname = host[1:close_bracket]
        # RFC 6874: "%25" starts the zone, which may escape more than a host may.
        zone = hostname.find(b"%25")
        if zone >= 0:
            unescaped = unescape(hostname[:zone], HOST) + unescape(hostname[zone:], ZONE)
        else:
            unescaped = unescape(hostname, HOST)
        # RFC 3986: only an IPv6 address may stand in brackets (IPv4-mapped ones included).
        try:
            addr = iplib.parse_addr(unescaped.decode("utf-8", "surrogateescape"))
        except iplib.AddrError as exc:
            raise URLError(f"invalid host: {exc}") from None
        if addr.bits == 32:
            raise URLError("invalid IP-literal")
        return b"[" + unescaped + b"]" + unescaped_colon_port
    colon = host.find(b":")
    if colon != -1:
        last = host.rfind(b":")
        # More than one colon: an error for http and https (Go 1.26's urlstrictcolons), the
        # last one starts the port for other schemes (database URLs list hosts so).
        if last != colon and scheme not in (b"http", b"https"):
            colon = last
        if not _valid_optional_port(host[colon:]):
            raise URLError(f"invalid port {quote(host[colon:])} after host")
    return unescape(host, HOST)


def parse_request_uri(raw: bytes) -> URL:
    """Go's `url.ParseRequestURI`: errors read `parse "<raw>": <why>`."""
    try:
        return _parse(raw, True)
    except URLError as exc:
        raise URLError(f"parse {quote(raw)}: {exc}") from None


def parse(raw: bytes) -> URL:
    """Go's `url.Parse`: the fragment cut off at the first '#' first."""
    before, hash_mark, fragment = raw.partition(b"#")
    try:
        url = _parse(before, False)
    except URLError as exc:
        raise URLError(f"parse {quote(before)}: {exc}") from None
    if hash_mark and fragment:
        try:
            url.set_fragment(fragment)
        except URLError as exc:
            raise URLError(f"parse {quote(raw)}: {exc}") from None
    return url


_MAX_QUERY_PARAMETERS = 10000  # Go's defaultMaxParams (urlmaxqueryparams)


def parse_query(query: bytes) -> dict[bytes, list[bytes]]:
    """Go's `URL.Query()`: `ParseQuery` with its errors dropped, which leaves every pair that
    decodes, or nothing at all past 10,000 parameters."""
    values: dict[bytes, list[bytes]] = {}
    if query.count(b"&") + 1 > _MAX_QUERY_PARAMETERS:
        return values
    for pair in query.split(b"&"):
        if b";" in pair or not pair:
            continue
        key, _, value = pair.partition(b"=")
        try:
            key, value = unescape(key, QUERY_COMPONENT), unescape(value, QUERY_COMPONENT)
        except URLError:
            continue
        values.setdefault(key, []).append(value)
    return values


# -- Kubernetes' functions ------------------------------------------------------------------------

_WHY = "URL parse error during conversion from string: "


def parse_url(text: str) -> URL:
    """Kubernetes' `stringToUrl`: ParseRequestURI decides, url.Parse is kept."""
    raw = text.encode("utf-8", "surrogatepass")
    try:
        parse_request_uri(raw)
        return parse(raw)
    except URLError as exc:
        raise ValueError(_WHY + str(exc)) from None


check_url: ConstantCheck = refusal(parse_url)


def _url(text: str) -> Any:
    url = parse_url(text)
    canonical = url.string()
    if _read_back(canonical) != _parts(url):
        # String() is ambiguous here: a path that starts with "//" and that Go writes escaped
        # (`/%2Fa b` becomes "//a%20b", which parses as the host "a%20b"), so the text alone
        # would give other components. The input follows the text after a NUL (no URL holds
        # one): the members read it, and equality, which compares the texts, then also tells
        # this URL from another with the same String() (Kubernetes would call them equal).
        canonical += b"\x00" + text.encode("utf-8", "surrogatepass")
    return messages.opaque(TYPE, canonical.decode("utf-8", "surrogateescape"))


def _parts(url: URL) -> tuple[bytes, ...]:
    """What the members read off a URL."""
    return (url.scheme, url.host, url.escaped_path(), url.raw_query)


def _read_back(canonical: bytes) -> tuple[bytes, ...] | None:
    try:
        return _parts(parse(canonical))
    except URLError:
        return None


def _is_url(text: str) -> bool:
    try:
        parse_request_uri(text.encode("utf-8", "surrogatepass"))
    except URLError:
        return False
    return True


def _components(value: Any) -> URL:
    canonical, nul, original = (
        messages.text_of(value).encode("utf-8", "surrogateescape").partition(b"\x00")
    )
    return parse(original if nul else canonical)


def _member(read: Callable[[URL], bytes]) -> Callable[[Any], str]:
    return lambda value: decode(read(_components(value)))


def _get_query(value: Any) -> dict[str, list[str]]:
    query: dict[str, list[str]] = {}
    for key, values in parse_query(_components(value).raw_query).items():
        query.setdefault(decode(key), []).extend(decode(v) for v in values)
    return query


_IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    "string_to_url": _url,
    "url_get_scheme": _member(lambda url: url.scheme),
    "url_get_host": _member(lambda url: url.host),
    "url_get_hostname": _member(URL.hostname),
    "url_get_port": _member(URL.port),
    "url_get_escaped_path": _member(URL.escaped_path),
    "url_get_query": _get_query,
    "is_url_string": _is_url,
}

LIBRARY = Library(
    "kubernetes.urls",
    functions(DECLARATIONS, _IMPLEMENTATIONS),
    opaque_types=(TYPE,),
    constants=CONSTANTS,
)
