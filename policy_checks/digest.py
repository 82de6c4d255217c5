"""The content digest of a policy version (docs/contract.md section 4), and the publish body it
travels in (section 5): canonical JSON of the parsed files, so formatting-only edits never change
either.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

# docs/contract.md section 7: the `POST /policies` body every hub must accept; a version whose body
# would be larger is a validation error, found before any release.
MAX_PUBLISH_BODY_BYTES = 2 * 1024 * 1024
# What a digest looks like (section 4), for the harness and the hub alike; use with fullmatch.
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
DIGEST_RE: re.Pattern[str] = re.compile(DIGEST_PATTERN)


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8 as is: the digest's input, the publish body's bytes, and
    (in the reference hub) the stored text of a version and the identity of a POST's body."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def policy_digest(metadata: Any, definition: Any) -> str:
    """`sha256:<hex>` of the canonical JSON of `{"metadata": ..., "definition": ...}`."""
    canonical = canonical_json({"metadata": metadata, "definition": definition})
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def publish_body(
    name: str, version: str, metadata: Any, definition: Any, digest: str, release_sha: str
) -> dict[str, Any]:
    """The `POST /policies` body: a pure function of the files at the release commit (no
    timestamps), so a retry or a rerun of the same release sends the same bytes."""
    return {
        "name": name,
        "version": version,
        "metadata": metadata,
        "definition": definition,
        "digest": digest,
        "release_sha": release_sha,
    }
