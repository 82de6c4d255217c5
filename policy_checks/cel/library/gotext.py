"""Go's text conventions, which Kubernetes' messages and values are written in: `strconv.Quote`
(the `%q` of every "parse error" message) and Go's reading of bytes that are not UTF-8.

Go strings are bytes; CEL strings here are Python `str`. A port that works on bytes (URLs, where a
`%XX` escape may decode to any byte) quotes and decodes through these, so a message or a value
reads as Go's would.
"""

from __future__ import annotations

import codecs

_SIMPLE = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}


def quote(text: str | bytes) -> str:
    """Go's `strconv.Quote`: double-quoted, printable runes as they are (Go's `unicode.IsPrint`
    and Python's `str.isprintable` are the same classes: letters, marks, numbers, punctuation,
    symbols and the ASCII space), the rest escaped; a byte that is not UTF-8 as `\\xNN`."""
    if isinstance(text, bytes):
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            return _quote_bytes(text)
    else:
        decoded = text
    if decoded.isprintable():  # the common case, at C speed: only quotes and backslashes change
        return '"' + decoded.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _quote_bytes(decoded.encode("utf-8", "surrogatepass"))


def _quote_bytes(data: bytes) -> str:
    out = ['"']
    index = 0
    while index < len(data):
        char, width = _decode_rune(data, index)
        if char is None:
            out.append(f"\\x{data[index]:02x}")
        elif char in ('"', "\\"):
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            code = ord(char)
            if code in _SIMPLE:
                out.append(_SIMPLE[code])
            elif code < 0x20 or code == 0x7F:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
        index += width
    out.append('"')
    return "".join(out)


def _decode_rune(data: bytes, index: int) -> tuple[str | None, int]:
    """One rune at `index` as Go's `utf8.DecodeRune` reads it: (None, 1) for a byte that does
    not start a valid UTF-8 sequence (surrogates and overlong forms included)."""
    lead = data[index]
    if lead < 0x80:
        return chr(lead), 1
    width = 2 if 0xC2 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF else 4 if lead <= 0xF4 else 0
    if width == 0 or index + width > len(data):
        return None, 1
    try:
        return data[index : index + width].decode("utf-8"), width
    except UnicodeDecodeError:
        return None, 1


def _one_byte_at_a_time(error: UnicodeError) -> tuple[str, int]:
    # Go reads each byte of a bad sequence as its own U+FFFD (`for range`, RuneCountInString);
    # Python's "replace" would make one U+FFFD of a truncated multi-byte sequence.
    assert isinstance(error, UnicodeDecodeError)
    return "\ufffd", error.start + 1


codecs.register_error("policyhub-go-runes", _one_byte_at_a_time)


def decode(data: bytes) -> str:
    """Bytes as the CEL string Go's would be read as: UTF-8, each byte that is not part of a
    valid sequence one U+FFFD (a Go string keeps the byte itself; see the README)."""
    return data.decode("utf-8", "policyhub-go-runes")
