"""Strict JSON (metadata.json, a resource): no duplicate keys, no NaN or Infinity, integers in
64 bits, a trailing comma named; the line map from a small token scanner run only when
something is reported."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from policy_checks.jsonpath import Path, format_path
from policy_checks.loading.decode import decode_text
from policy_checks.loading.document import (
    INT_LIMIT,
    MAX_FINDINGS_PER_FILE,
    Document,
    SourceMap,
    SourceMapParts,
    duplicate_key,
    failed,
    too_large,
)
from policy_checks.model import Finding


class _DuplicateKeyError(Exception):
    pass


class _NotFiniteError(Exception):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        raise _DuplicateKeyError
    return mapping


def _reject_constant(name: str) -> Any:
    raise _NotFiniteError(name)


class _IntTooLargeError(Exception):
    pass


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 19 or not -INT_LIMIT <= int(text) < INT_LIMIT:
        raise _IntTooLargeError(text)
    return int(text)


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NotFiniteError(text)
    return number


_JSON_TOKEN = re.compile(r'\s+|"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+')


@dataclass
class _Container:
    path: Path
    is_object: bool
    index: int = 0
    key_lines: dict[str, int] = field(default_factory=dict)
    member: Path = ()


@dataclass
class _JsonLayout:
    lines: dict[Path, int] = field(default_factory=dict)
    raw: dict[Path, str] = field(default_factory=dict)
    duplicates: list[tuple[Path, int, int]] = field(default_factory=list)


def _json_layout(text: str) -> _JsonLayout:
    """Where each value of a JSON text starts, found by a small token scanner.

    Runs only on text that json.loads has already accepted (or rejected for a duplicate key or a
    non-finite number), so it can trust the grammar and only track nesting and lines.
    """
    layout = _JsonLayout()
    stack: list[_Container] = []
    expecting_key = False
    line = 1
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        first = token[0]
        if first.isspace():
            line += token.count("\n")
            continue
        if first in "}]":
            stack.pop()
            expecting_key = False
            continue
        if first == ",":
            expecting_key = bool(stack) and stack[-1].is_object
            continue
        if first == ":":
            continue
        top = stack[-1] if stack else None
        if top is not None and top.is_object and expecting_key:
            key = json.loads(token)
            top.member = (*top.path, key)
            if key in top.key_lines:
                layout.duplicates.append((top.member, line, top.key_lines[key]))
            else:
                top.key_lines[key] = line
                layout.lines[top.member] = line
            expecting_key = False
            continue
        if top is None:
            path: Path = ()
            layout.lines[path] = line
        elif top.is_object:
            path = top.member
        else:
            path = (*top.path, top.index)
            top.index += 1
            layout.lines[path] = line
        if first in "{[":
            stack.append(_Container(path, first == "{"))
            expecting_key = first == "{"
        elif first != '"':
            layout.raw[path] = token
    return layout


def _json_source(text: str) -> SourceMapParts:
    layout = _json_layout(text)
    return layout.lines, layout.raw, {}


def _at_token(
    text: str, file: str, token: str, message: str, hint: str | None, rule: str
) -> Finding:
    """A finding about the first value spelt `token`, with its line and JSON path."""
    layout = _json_layout(text)
    path = next((p for p, raw in layout.raw.items() if raw == token), None)
    line = layout.lines.get(path) if path is not None else None
    return Finding(file, message, line, format_path(path) if path is not None else None, hint, rule)


def _json_syntax(file: str, text: str, exc: json.JSONDecodeError) -> Finding:
    """A JSON syntax error, named for the fix when it is the usual one (a trailing comma)."""
    before = text[: exc.pos].rstrip()
    if before.endswith(",") and text[exc.pos : exc.pos + 1] in ("}", "]"):
        line = before.count("\n") + 1
        closer = text[exc.pos]
        return Finding(
            file,
            f"invalid JSON: a trailing comma before '{closer}'",
            line,
            hint="remove the comma after the last entry; JSON allows none",
            rule="json-trailing-comma",
        )
    return Finding(
        file, f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno, rule="json-syntax"
    )


def load_json(data: bytes, file: str) -> Document:
    """Load a JSON policy file: strict JSON, no duplicate keys, no NaN or Infinity."""
    text, problem = decode_text(data, file)
    if problem is not None or text is None:
        return failed(problem) if problem else failed()
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_pairs,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except json.JSONDecodeError as exc:
        return failed(_json_syntax(file, text, exc))
    except _DuplicateKeyError:
        layout = _json_layout(text)
        return failed(
            *(
                Finding(
                    file,
                    duplicate_key(path[-1], first),
                    line,
                    format_path(path),
                    "keep one of the two entries",
                    "duplicate-key",
                )
                for path, line, first in layout.duplicates[:MAX_FINDINGS_PER_FILE]
            )
        )
    except _NotFiniteError as exc:
        message = f"{exc} is not a finite number, which JSON does not allow"
        return failed(_at_token(text, file, str(exc), message, None, "non-finite-number"))
    except _IntTooLargeError as exc:
        message = too_large(str(exc))
        hint = "quote it if it is an identifier"
        return failed(_at_token(text, file, str(exc), message, hint, "integer-range"))
    except RecursionError:
        return failed(Finding(file, "JSON nested too deeply", rule="nesting-depth"))
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        return failed(Finding(file, f"invalid JSON: {exc}", rule="json-syntax"))
    return Document(value, SourceMap(build=lambda: _json_source(text)))
