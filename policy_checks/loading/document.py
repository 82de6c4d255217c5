"""What loading gives back: a `Document` (the value, or the findings that say why there is
none) and its `SourceMap` (where each value is written); the limits and words JSON and YAML
share."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from policy_checks.jsonpath import Path
from policy_checks.model import Finding

# A file with thousands of bad keys needs no more than a screenful to be fixed.
MAX_FINDINGS_PER_FILE = 20
# Integers must fit in 64 bits: larger ones are not portable JSON (hubs and most parsers lose or
# reject them) and can only be a mistake in a policy; an identifier that long belongs in quotes.
INT_LIMIT = 2**63


@dataclass(frozen=True)
class ScalarSpan:
    """Where a string scalar is written: its source's character offsets and its YAML style
    (`|`, `>`, `'`, `"`, or plain), to find a character of the value in the text."""

    start: int
    end: int
    style: str | None


# What a source map is made of, when made lazily: lines, raw scalar texts, string spans.
SourceMapParts = tuple[dict[Path, int], dict[Path, str], dict[Path, "ScalarSpan"]]


class SourceMap:
    """Where each value of a parsed document sits: JSON path -> 1-based line.

    Also keeps the source text of scalars that did not read as strings, for hints such as
    "1.10 is read as the number 1.1", and (YAML) where each string is written, to place a
    column inside it. May be built lazily: a valid JSON file needs no map unless something is
    reported about it.
    """

    def __init__(
        self,
        lines: dict[Path, int] | None = None,
        raw: dict[Path, str] | None = None,
        build: Callable[[], SourceMapParts] | None = None,
        spans: dict[Path, ScalarSpan] | None = None,
    ) -> None:
        self._lines = lines
        self._raw = raw
        self._build = build
        self._spans = spans

    def _ensure(self) -> None:
        if self._lines is None:
            self._lines, self._raw, spans = self._build() if self._build else ({}, {}, {})
            self._spans = self._spans if self._spans is not None else spans

    def line(self, path: Path) -> int | None:
        """The line of `path`, or of its nearest ancestor that exists (e.g. for a missing key)."""
        self._ensure()
        assert self._lines is not None
        for end in range(len(path), -1, -1):
            found = self._lines.get(path[:end])
            if found is not None:
                return found
        return None

    def raw_text(self, path: Path) -> str | None:
        self._ensure()
        return (self._raw or {}).get(path)

    def span(self, path: Path) -> ScalarSpan | None:
        """Where the string at `path` is written (YAML only; None for anything else)."""
        self._ensure()
        return (self._spans or {}).get(path)


@dataclass(frozen=True)
class Document:
    """A loaded file: its value is meaningful only when `ok`."""

    value: Any
    source: SourceMap
    findings: tuple[Finding, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.findings


def failed(*findings: Finding) -> Document:
    return Document(None, SourceMap({}, {}), findings)


def duplicate_key(key: str | int, first_line: int) -> str:
    return f"duplicate key {json.dumps(key, ensure_ascii=False)} (first at line {first_line})"


def too_large(text: str) -> str:
    shown = text if len(text) <= 24 else f"{text[:20]}… ({len(text)} characters)"
    return f"integer {shown} does not fit in 64 bits"
