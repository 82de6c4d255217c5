"""What Kubernetes' libraries take from Go's standard library and show in their messages, ported
so that the messages are Kubernetes' word for word: `strconv.Quote` (the `%q` of an error),
`net/url.ParseRequestURI` with the `netip.ParseAddr` it checks bracketed hosts with (Go 1.26,
`urlstrictcolons=1`, the release Kubernetes' go.mod names: `go 1.26.0`), and `time.Parse` of a
full date. Go strings are bytes: these work on the UTF-8 bytes, as Go does.
"""

from __future__ import annotations

import re
import unicodedata

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
