"""The one place that turns text from outside (a hub's answer, an exception's message) into text
that may be shown: secrets redacted, control characters escaped, length capped, and never the start
of a GitHub workflow command. Every path to the terminal, a report, the step summary or an
annotation passes outside text through `printable` first.
"""

from __future__ import annotations

import re
import threading

REDACTED = "***"
DEFAULT_LIMIT = 300

# C0 and C1 controls, DEL, and the Unicode line/paragraph separators and bidi controls that can
# reorder or break a line in a terminal or a Markdown table.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Redact `value` (a token) from every text that `printable` returns in this process."""
    if value:
        with _lock:
            _secrets.add(value)


# A secret this short is replaced only where it stands alone (not inside a longer word), so a
# test token such as "t" does not turn every "t" of a message into "***".
SHORT_SECRET = 8
_TOKEN_CHAR = r"[A-Za-z0-9._~+/=-]"


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `***` (longest first)."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret not in text:
            continue
        if len(secret) >= SHORT_SECRET:
            text = text.replace(secret, REDACTED)
        else:
            alone = rf"(?<!{_TOKEN_CHAR}){re.escape(secret)}(?!{_TOKEN_CHAR})"
            text = re.sub(alone, REDACTED, text)
    return text


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, limit: int = DEFAULT_LIMIT) -> str:
    """One line of at most `limit` characters that is safe to show, whatever `text` held."""
    value = redact(str(text))
    value = _UNPRINTABLE.sub(_escape, value)
    if len(value) > limit:
        value = value[: max(0, limit - 1)] + "…"
    # `::` at the start of a line is a GitHub workflow command (`::error::`, `::add-mask::`).
    if value.lstrip().startswith("::"):
        value = "\\" + value.lstrip()
    return value
