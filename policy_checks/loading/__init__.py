"""Loading a policy file: bytes in, JSON-compatible data and a line map out; every problem a
`Finding`, nothing raised on any input.

`decode` (bytes to text), `yaml` (the one YAML reader: values, lines, string spans),
`yaml_errors` (why YAML refused a file, in the author's words), `json` (strict JSON);
`document` holds what they give back.
"""

from __future__ import annotations

from policy_checks.loading.decode import decode_text
from policy_checks.loading.document import (
    INT_LIMIT,
    MAX_FINDINGS_PER_FILE,
    Document,
    ScalarSpan,
    SourceMap,
)
from policy_checks.loading.json import load_json
from policy_checks.loading.yaml import (
    MAX_DEPTH,
    load_yaml,
    load_yaml_documents,
    read_yaml,
    scalar_offset_position,
    scalar_position,
)

__all__ = [
    "INT_LIMIT",
    "MAX_DEPTH",
    "MAX_FINDINGS_PER_FILE",
    "Document",
    "ScalarSpan",
    "SourceMap",
    "decode_text",
    "load_json",
    "load_yaml",
    "load_yaml_documents",
    "read_yaml",
    "scalar_offset_position",
    "scalar_position",
]
