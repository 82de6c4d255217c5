"""Bytes to text: a policy file is small, UTF-8 without a byte order mark, and not empty;
anything else is the `Finding` that says so."""

from __future__ import annotations

import codecs

from policy_checks.model import Finding
from policy_checks.naming import MAX_FILE_BYTES


def decode_text(data: bytes, file: str) -> tuple[str | None, Finding | None]:
    """The text of a policy file, or the finding that says why it is not acceptable text."""
    if len(data) > MAX_FILE_BYTES:
        return None, Finding(
            file,
            f"file is larger than 1 MiB (the limit is {MAX_FILE_BYTES} bytes)",
            hint="policy files must stay small; move bulk data out of the policy",
            rule="file-size",
        )
    # Rejected rather than skipped so that JSON and YAML agree (json.loads refuses a BOM).
    if data.startswith(codecs.BOM_UTF8):
        return None, Finding(
            file,
            "file starts with a UTF-8 byte order mark (BOM)",
            line=1,
            hint="save the file as UTF-8 without BOM",
            rule="utf-8",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return None, Finding(
            file,
            f"file is not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}",
            line=line,
            hint="save the file as UTF-8 (binary content does not belong in a policy file)",
            rule="utf-8",
        )
    if not text.strip():
        return None, Finding(
            file,
            "file is empty",
            hint="write the policy content or remove the version folder",
            rule="empty-file",
        )
    return text, None
