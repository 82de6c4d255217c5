"""The content digest of a policy version (CONTRACT section 4).

Canonical JSON of both parsed files, so formatting-only edits never change it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def policy_digest(metadata: Any, definition: Any) -> str:
    """`sha256:<hex>` of the canonical JSON of `{"metadata": ..., "definition": ...}`."""
    canonical = json.dumps(
        {"metadata": metadata, "definition": definition},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
