"""Why YAML refused a file, in the author's words: a second document, a tab in the
indentation, a key or list item out of line with the ones before it (named with both columns),
a control character; otherwise the parser's own words with the line and column."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from policy_checks.model import Finding, quoted

# libyaml's reader error counts bytes of the UTF-8 encoding, the Python reader characters.
_READER_COUNTS_BYTES = hasattr(yaml, "CSafeLoader")


def yaml_error(file: str, text: str, exc: yaml.YAMLError) -> Finding:
    """The finding for a file YAML could not read."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        if exc.problem == "but found another document":
            return Finding(
                file,
                "file holds more than one YAML document",
                line,
                hint="one document per file: remove the '---' separator and what follows",
                rule="multiple-documents",
            )
        detail = ", ".join(part for part in (exc.context, exc.problem) if part)
        column = f" (column {mark.column + 1})" if mark else ""
        tab_line = _tab_indented_line(text, line)
        if tab_line is not None:
            return Finding(
                file,
                f"YAML syntax error: a tab is used for indentation on line {tab_line}",
                tab_line,
                hint="indent with spaces; YAML does not allow tabs in indentation",
                rule="yaml-tab",
            )
        if exc.problem is not None and exc.problem.startswith(_INDENTATION_PROBLEMS):
            misaligned = _misaligned_key(text, line)
            if misaligned is not None:
                return Finding(file, misaligned[0], line, hint=misaligned[1], rule="yaml-indent")
        return Finding(file, f"YAML syntax error: {detail}{column}", line, rule="yaml-syntax")
    if isinstance(exc, yaml.reader.ReaderError):
        offset = exc.position
        prefix = (
            text.encode()[:offset].decode(errors="ignore")
            if _READER_COUNTS_BYTES
            else text[:offset]
        )
        return Finding(
            file,
            f"YAML cannot read this file: {exc.reason} (character 0x{exc.character:x})"
            if isinstance(exc.character, int)
            else f"YAML cannot read this file: {exc.reason}",
            prefix.count("\n") + 1,
            hint="remove control characters; policy files are text",
            rule="yaml-syntax",
        )
    return Finding(file, f"YAML error: {exc}", rule="yaml-syntax")


# What PyYAML (either parser) says when a key or item sits in the wrong column.
_INDENTATION_PROBLEMS = (
    "mapping values are not allowed",
    "did not find expected key",
    "did not find expected '-' indicator",
    "expected <block end>",
)
# A line that holds a key (`key:`, `- key:`) or a list item (`- x`); a comment is no line.
_BLOCK_LINE = re.compile(
    r"(?P<indent> *)(?P<dash>(?:-(?: +|$))*)(?:(?P<key>[^\s#][^#]*?) *:(?: |$))?"
)


@dataclass(frozen=True)
class _Column:
    """A column where a key or a list item starts, on a line before the one YAML refused."""

    line: int
    column: int
    label: str  # `severity:`, `- id:`, `- ...`
    is_item: bool


def _columns(row: str, number: int) -> list[_Column]:
    """The columns that `row` opens: its key's, or its item's and the key after the dash."""
    match = _BLOCK_LINE.match(row)
    if match is None or not (match["dash"] or match["key"]):
        return []
    indent, dash, key = len(match["indent"]), match["dash"], match["key"]
    if not dash:
        return [_Column(number, indent, quoted(key + ":"), False)]
    item = _Column(number, indent, quoted(f"- {key}:" if key else "- ..."), True)
    return [item, _Column(number, indent + len(dash), quoted(key + ":"), False)] if key else [item]


def _misaligned_key(text: str, line: int | None) -> tuple[str, str] | None:
    """(message, hint) when `line` holds a key or item that lines up with none of the keys
    before it: what YAML words as "mapping values are not allowed here" or "did not find
    expected key". None when the line is aligned (the error is another one)."""
    rows = text.split("\n")
    if line is None or not 1 <= line <= len(rows):
        return None
    here = _columns(rows[line - 1], line)
    if not here:
        return None
    target = here[0]
    # The keys that enclose the line, nearest first: each line back that starts further left.
    chain: list[_Column] = []
    leftmost = len(text)  # no column is this far right
    for number in range(line - 1, 0, -1):
        opened = _columns(rows[number - 1], number)
        if opened and opened[0].column < leftmost:
            chain.extend(c for c in opened if c.is_item == target.is_item)
            leftmost = opened[0].column
            if leftmost == 0:
                break
    if not chain or any(c.column == target.column for c in chain):
        return None
    before = chain[0]
    if target.column > before.column and rows[before.line - 1].rstrip().endswith(":"):
        return None  # a key that opens a block may hold deeper ones: not this mistake
    spaces = f"{target.column} space{'' if target.column == 1 else 's'}"
    what = "item" if target.is_item else "key"
    message = (
        f"YAML syntax error: {target.label} is indented by {spaces}, the {what} before it "
        f"({before.label}, line {before.line}) by {before.column}"
    )
    hint = f"align {target.label} with {before.label} ({before.column} spaces, line {before.line})"
    outer = next((c for c in chain if c.column < target.column), None)
    if (
        outer is not None
        and target.column < before.column
        and target.column - outer.column <= before.column - target.column
    ):
        hint += f" or with {outer.label} ({outer.column} spaces, line {outer.line})"
    return message, f"{hint}: the {what}s of one {'list' if target.is_item else 'mapping'} " + (
        "start in the same column"
    )


def _tab_indented_line(text: str, near: int | None) -> int | None:
    """The line (1-based) at or just before `near` whose indentation holds a tab, if any."""
    lines = text.splitlines()
    for number in (near, (near or 0) - 1):
        if number and 1 <= number <= len(lines):
            line = lines[number - 1]
            if "\t" in line[: len(line) - len(line.lstrip())]:
                return number
    return None
