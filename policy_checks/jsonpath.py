"""A tiny JSON path subset: `$`, `.key`, `["key"]`, `[3]` and the wildcard `[*]` / `.*`.

Paths are tuples of str (object key) and int (array index) internally; this module turns them into
the text shown to users and evaluates rule paths against parsed documents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

Path = tuple[str | int, ...]

WILDCARD = object()  # a segment of a parsed rule path that matches every key or index

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_TOKEN = re.compile(
    r"""\.(?P<key>[A-Za-z_][A-Za-z0-9_-]*)
      | \.\*(?P<dotstar>)
      | \[(?P<index>\d+)\]
      | \[\*\](?P<star>)
      | \[(?P<quoted>"(?:[^"\\]|\\.)*")\]""",
    re.VERBOSE,
)


def format_path(path: Iterable[str | int]) -> str:
    """`("spec", "rules", 0, "id")` -> `$.spec.rules[0].id`."""
    out = ["$"]
    for seg in path:
        if isinstance(seg, int):
            out.append(f"[{seg}]")
        elif _PLAIN_KEY.fullmatch(seg):
            out.append(f".{seg}")
        else:
            out.append(f"[{json.dumps(seg, ensure_ascii=False)}]")
    return "".join(out)


def parse_path(text: str) -> tuple[Any, ...]:
    """Parse a rule path; raises ValueError on anything outside the subset."""
    if not text.startswith("$"):
        raise ValueError(f"JSON path {text!r} must start with '$'")
    segments: list[Any] = []
    pos = 1
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"JSON path {text!r}: cannot read {text[pos:]!r}")
        if match.group("key") is not None:
            segments.append(match.group("key"))
        elif match.group("index") is not None:
            segments.append(int(match.group("index")))
        elif match.group("quoted") is not None:
            segments.append(json.loads(match.group("quoted")))
        else:
            segments.append(WILDCARD)
        pos = match.end()
    return tuple(segments)


def find(document: Any, segments: tuple[Any, ...]) -> Iterator[tuple[Path, Any]]:
    """Every (concrete path, value) that `segments` reaches in `document`, in document order."""
    yield from _find(document, segments, ())


def _find(node: Any, segments: tuple[Any, ...], here: Path) -> Iterator[tuple[Path, Any]]:
    if not segments:
        yield here, node
        return
    head, rest = segments[0], segments[1:]
    if head is WILDCARD:
        if isinstance(node, dict):
            for key, value in node.items():
                yield from _find(value, rest, (*here, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from _find(value, rest, (*here, index))
    elif isinstance(head, int):
        if isinstance(node, list) and head < len(node):
            yield from _find(node[head], rest, (*here, head))
    elif isinstance(node, dict) and head in node:
        yield from _find(node[head], rest, (*here, head))
