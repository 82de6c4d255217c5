"""Safe loading of policy files and of the resources checked against them (one YAML document,
or a stream of them, or JSON): bytes in, JSON-compatible data plus a line map out.

Every problem (encoding, size, syntax, YAML features JSON cannot hold, alias bombs) becomes a
Finding; nothing here raises on any input.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from policy_checks.jsonpath import Path, format_path
from policy_checks.model import Finding, quoted
from policy_checks.naming import MAX_FILE_BYTES

# The C composer is an order of magnitude faster; the pure-Python one gives the same nodes.
_BASE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVED: dict[tuple[str, tuple[bool, bool]], str] = {}  # a plain scalar's text -> its tag


class _Loader(_BASE_LOADER):  # type: ignore[misc]
    """The safe loader, with the tag of each short scalar text resolved once per process (the
    composer asks the Python resolver for every scalar: a fifth of reading a test file) and no
    path resolvers to visit (a safe loader has none)."""

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is not ScalarNode or len(value) > 64:
            return str(super().resolve(kind, value, implicit))
        key = (value, implicit)
        tag = _RESOLVED.get(key)
        if tag is None:
            tag = str(super().resolve(kind, value, implicit))
            if len(_RESOLVED) < 100_000:
                _RESOLVED[key] = tag
        return tag

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


_LOADER: type = _Loader
assert not getattr(_BASE_LOADER, "yaml_path_resolvers", None)  # makes the no-ops above right
# Only used for its stateless scalar converters (YAML 1.1 ints, floats, bools).
_SCALARS = yaml.constructor.SafeConstructor()

# Policies are a few levels deep; the bound keeps our recursive walk far from Python's limit.
MAX_DEPTH = 64
# A file with thousands of bad keys needs no more than a screenful to be fixed.
MAX_FINDINGS_PER_FILE = 20

_TAG = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = (_TAG + t for t in ("str", "null", "bool", "int", "float"))
_SEQ, _MAP = _TAG + "seq", _TAG + "map"
_KINDS = {_NULL: "null", _BOOL: "a boolean", _INT: "a number", _FLOAT: "a number"}
_UNSUPPORTED = {
    _TAG + "timestamp": "a timestamp",
    _TAG + "binary": "binary data (!!binary)",
    _TAG + "set": "a set (!!set)",
    _TAG + "omap": "an ordered map (!!omap)",
    _TAG + "pairs": "a list of pairs (!!pairs)",
    _TAG + "merge": "a merge key (<<)",
    _TAG + "value": "a value key (=)",
}


class SourceMap:
    """Where each value of a parsed document sits: JSON path -> 1-based line.

    Also keeps the source text of scalars that did not read as strings, for hints such as
    "1.10 is read as the number 1.1". May be built lazily: a valid JSON file needs no map
    unless something is reported about it.
    """

    def __init__(
        self,
        lines: dict[Path, int] | None = None,
        raw: dict[Path, str] | None = None,
        build: Callable[[], tuple[dict[Path, int], dict[Path, str]]] | None = None,
    ) -> None:
        self._lines = lines
        self._raw = raw
        self._build = build

    def _ensure(self) -> None:
        if self._lines is None:
            self._lines, self._raw = self._build() if self._build else ({}, {})

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


@dataclass(frozen=True)
class Document:
    """A loaded file: its value is meaningful only when `ok`."""

    value: Any
    source: SourceMap
    findings: tuple[Finding, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.findings


def _failed(*findings: Finding) -> Document:
    return Document(None, SourceMap({}, {}), findings)


def _duplicate(key: str | int, first_line: int) -> str:
    return f"duplicate key {json.dumps(key, ensure_ascii=False)} (first at line {first_line})"


def decode(data: bytes, file: str) -> tuple[str | None, Finding | None]:
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


class _TreeReader:
    """Turns a composed YAML node tree into plain values, recording lines and rejections.

    Aliases are refused outright: a node met twice is an alias, which also stops alias bombs
    and recursive anchors after one step instead of after the expansion.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.findings: list[Finding] = []
        self.lines: dict[Path, int] = {}
        self.raw: dict[Path, str] = {}
        self._seen: set[int] = set()
        self.aliases = 0

    def report(
        self, message: str, path: Path, line: int | None, rule: str, hint: str | None = None
    ) -> None:
        if len(self.findings) < MAX_FINDINGS_PER_FILE:
            self.findings.append(Finding(self.file, message, line, format_path(path), hint, rule))

    def read(self, root: Node) -> Any:
        return self.read_all([root], stream=False)[0]

    def read_all(self, roots: list[Node], stream: bool) -> list[Any]:
        """Each root's value; in a `stream`, a document's paths start with its index."""
        values = []
        for index, root in enumerate(roots):
            path: Path = (index,) if stream else ()
            line = root.start_mark.line + 1
            self.lines[path] = line
            values.append(self.value(root, path, line, 0))
        if self.aliases > 1:
            self.findings = [
                replace(f, message=f"{f.message} ({self.aliases} aliases in this file)")
                if f.rule == "yaml-alias"
                else f
                for f in self.findings
            ]
        return values

    def value(self, node: Node, path: Path, line: int, depth: int) -> Any:
        if id(node) in self._seen:
            # One finding per file: an alias bomb would otherwise fill the report.
            if not self.aliases:
                self.report(
                    "YAML aliases (*name) are not allowed",
                    path,
                    line,
                    "yaml-alias",
                    "write the value out instead of referring to an anchor",
                )
            self.aliases += 1
            return None
        self._seen.add(id(node))
        if depth > MAX_DEPTH:
            self.report(f"nested deeper than {MAX_DEPTH} levels", path, line, "nesting-depth")
            return None
        if isinstance(node, ScalarNode):
            return self.scalar(node, path, line)
        if node.tag not in (_SEQ, _MAP):
            self.report_tag(node, path, line)
            return None
        if isinstance(node, SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                # An alias node carries its anchor's position; the sequence's is closer.
                seen = id(item) in self._seen
                item_path, item_line = (*path, index), line if seen else item.start_mark.line + 1
                self.lines[item_path] = item_line
                items.append(self.value(item, item_path, item_line, depth + 1))
            return items
        assert isinstance(node, MappingNode)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            key = self.key(key_node, path, key_line)
            if key is None:
                continue
            key_path = (*path, key)
            if key in mapping:
                self.report(
                    _duplicate(key, self.lines[key_path]),
                    key_path,
                    key_line,
                    "duplicate-key",
                    "keep one of the two entries",
                )
                continue
            self.lines[key_path] = key_line
            mapping[key] = self.value(value_node, key_path, key_line, depth + 1)
        return mapping

    def key(self, node: Node, path: Path, line: int) -> str | None:
        if isinstance(node, ScalarNode) and node.tag == _STR:
            return str(node.value)
        if isinstance(node, ScalarNode) and node.tag in _UNSUPPORTED:
            self.report_tag(node, path, line)
            return None
        if isinstance(node, ScalarNode):
            shown = node.value
            message = f"key {shown} is read as {_KINDS.get(node.tag, node.tag)}, not a string"
        else:
            shown = "a " + type(node).__name__[:-4].lower()
            message = f"key {shown} is not a string"
        self.report(
            message,
            path,
            line,
            "non-string-key",
            f'quote it: "{shown}"' if isinstance(node, ScalarNode) else "keys must be strings",
        )
        return None

    def report_tag(self, node: Node, path: Path, line: int) -> None:
        what = _UNSUPPORTED.get(node.tag, f"a value tagged {node.tag.replace(_TAG, '!!')}")
        text = node.value if isinstance(node, ScalarNode) else None
        hint = (
            f'quote it: "{text}"'
            if text is not None and node.tag == _TAG + "timestamp"
            else ("use only strings, numbers, booleans, null, lists and mappings")
        )
        shown = f"{text} is read as {what}" if text is not None else f"{what}"
        self.report(f"{shown}, which is not JSON-compatible", path, line, "yaml-type", hint)

    def scalar(self, node: ScalarNode, path: Path, line: int) -> Any:
        if node.tag == _STR:
            return node.value
        self.raw[path] = node.value
        try:
            return _scalar_value(node)
        except _ScalarProblemError as problem:
            if problem.rule is None:
                self.report_tag(node, path, line)
            else:
                self.report(str(problem), path, line, problem.rule, problem.hint)
            return None


class _ScalarProblemError(Exception):
    """Why a scalar has no JSON value: the finding's message, rule and hint (no rule: its tag)."""

    def __init__(self, message: str = "", rule: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.rule, self.hint = rule, hint


def _scalar_value(node: ScalarNode) -> Any:
    """The JSON value of a scalar that is not a string, or _ScalarProblemError."""
    tag = node.tag
    try:
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return _SCALARS.construct_yaml_bool(node)
        if tag == _INT:
            number = _SCALARS.construct_yaml_int(node)
            if not -INT_LIMIT <= number < INT_LIMIT:
                message = _too_large_message(node.value)
                raise _ScalarProblemError(
                    message, "integer-range", "quote it if it is an identifier"
                )
            return number
        if tag == _FLOAT:
            real: float = _SCALARS.construct_yaml_float(node)
            if not math.isfinite(real):
                raise _ScalarProblemError(
                    f"{node.value} is not a finite number, which JSON cannot hold",
                    "non-finite-number",
                    f'quote it: "{node.value}"',
                )
            return real
    except (ValueError, KeyError, TypeError) as exc:
        raise _ScalarProblemError(
            f"cannot read {node.value!r} as {tag.replace(_TAG, '!!')}: {exc}", "yaml-type"
        ) from None
    raise _ScalarProblemError


class _IrregularError(Exception):
    """Something in the node tree needs a finding; `_TreeReader` goes over it again."""


def _plain(node: Node, depth: int, seen: set[int] | None = None) -> Any:
    """The value of a node tree that needs no finding, or _IrregularError: what `_TreeReader`
    returns for such a tree, without its line map. A node met twice is an alias: when the text
    may hold an anchor (`&`, often only a condition's `&&`), `seen` records every node, and an
    alias sends the file to `_TreeReader`, which reports it."""
    if depth > MAX_DEPTH:
        raise _IrregularError
    if seen is not None:
        if id(node) in seen:
            raise _IrregularError
        seen.add(id(node))
    tag = node.tag
    if isinstance(node, ScalarNode):
        if tag == _STR:
            return node.value
        try:
            return _scalar_value(node)
        except _ScalarProblemError:
            raise _IrregularError from None
    if isinstance(node, SequenceNode) and tag == _SEQ:
        return [_plain(item, depth + 1, seen) for item in node.value]
    if not isinstance(node, MappingNode) or tag != _MAP:
        raise _IrregularError
    mapping: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = key_node.value
        if not isinstance(key_node, ScalarNode) or key_node.tag != _STR or key in mapping:
            raise _IrregularError
        mapping[key] = _plain(value_node, depth + 1, seen)
    return mapping


def _yaml_source(
    file: str, roots: list[Node], stream: bool
) -> tuple[dict[Path, int], dict[Path, str]]:
    reader = _TreeReader(file)
    reader.read_all(roots, stream)
    return reader.lines, reader.raw


def _compose(text: str) -> Node | None:
    return yaml.compose(text, Loader=_LOADER)


def _compose_all(text: str) -> list[Node]:
    return list(yaml.compose_all(text, Loader=_LOADER))


def _yaml_error(file: str, text: str, exc: yaml.YAMLError) -> Finding:
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
        # libyaml counts bytes of the UTF-8 encoding, the Python reader counts characters.
        offset = exc.position
        prefix = (
            text.encode()[:offset].decode(errors="ignore")
            if _BASE_LOADER is not yaml.SafeLoader
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


def _composed(data: bytes, file: str, stream: bool) -> tuple[str, list[Node]] | Document:
    """The text and the composed document roots of a YAML file (`stream`: every document, else
    exactly one), or the failed Document that says why there are none."""
    text, problem = decode(data, file)
    if problem is not None or text is None:
        return _failed(problem) if problem else _failed()
    try:
        if stream:
            roots = _compose_all(text)
        else:
            root = _compose(text)
            roots = [] if root is None else [root]
    except yaml.YAMLError as exc:
        return _failed(_yaml_error(file, text, exc))
    except RecursionError:
        return _failed(Finding(file, "YAML nested too deeply", rule="nesting-depth"))
    if not roots:
        return _failed(
            Finding(
                file, "file holds no YAML document (only comments)", line=1, rule="empty-document"
            )
        )
    return text, roots


def _read(file: str, text: str, roots: list[Node], stream: bool) -> Document:
    """The JSON-compatible value of composed roots: one document's, or (`stream`) the list of
    every document's, with the findings of anything JSON cannot hold or we refuse."""
    try:
        # Most files need no finding: read them without recording lines, and record the lines
        # (the same walk, again) only if something is reported about the file.
        seen: set[int] | None = set() if "&" in text else None
        values = [_plain(root, 0, seen) for root in roots]
    except _IrregularError:
        reader = _TreeReader(file)
        values = reader.read_all(roots, stream)
        if reader.findings:
            return _failed(*reader.findings)
        source = SourceMap(reader.lines, reader.raw)
    else:
        source = SourceMap(build=lambda: _yaml_source(file, roots, stream))
    return Document(values if stream else values[0], source)


def load_yaml(data: bytes, file: str) -> Document:
    """Load a YAML policy file, which holds one document, into JSON-compatible data."""
    composed = _composed(data, file, stream=False)
    if isinstance(composed, Document):
        return composed
    document = _read(file, *composed, stream=False)
    if document.ok and document.value is None:
        return Document(
            None,
            document.source,
            (Finding(file, "the YAML document is empty", line=1, rule="empty-document"),),
        )
    return document


def load_yaml_documents(data: bytes, file: str) -> Document:
    """Load a YAML file of one or more documents (`---` between them, as Kubernetes manifests
    are written): the value is the list of every document's value, None for an empty one (only
    a `---`, or only comments); the source map's paths start with the document's index. The
    same limits and refusals as `load_yaml`, over the whole file; a file whose documents are all
    empty is refused as an empty one is."""
    composed = _composed(data, file, stream=True)
    if isinstance(composed, Document):
        return composed
    document = _read(file, *composed, stream=True)
    if document.ok and all(value is None for value in document.value):
        return Document(
            document.value,
            document.source,
            (
                Finding(
                    file, "every YAML document of the file is empty", line=1, rule="empty-document"
                ),
            ),
        )
    return document


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


# Integers must fit in 64 bits: larger ones are not portable JSON (hubs and most parsers lose or
# reject them) and can only be a mistake in a policy; an identifier that long belongs in quotes.
INT_LIMIT = 2**63


class _IntTooLargeError(Exception):
    pass


def _too_large_message(text: str) -> str:
    shown = text if len(text) <= 24 else f"{text[:20]}… ({len(text)} characters)"
    return f"integer {shown} does not fit in 64 bits"


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


def _json_source(text: str) -> tuple[dict[Path, int], dict[Path, str]]:
    layout = _json_layout(text)
    return layout.lines, layout.raw


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
    text, problem = decode(data, file)
    if problem is not None or text is None:
        return _failed(problem) if problem else _failed()
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_pairs,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except json.JSONDecodeError as exc:
        return _failed(_json_syntax(file, text, exc))
    except _DuplicateKeyError:
        layout = _json_layout(text)
        return _failed(
            *(
                Finding(
                    file,
                    _duplicate(path[-1], first),
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
        return _failed(_at_token(text, file, str(exc), message, None, "non-finite-number"))
    except _IntTooLargeError as exc:
        message = _too_large_message(str(exc))
        hint = "quote it if it is an identifier"
        return _failed(_at_token(text, file, str(exc), message, hint, "integer-range"))
    except RecursionError:
        return _failed(Finding(file, "JSON nested too deeply", rule="nesting-depth"))
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        return _failed(Finding(file, f"invalid JSON: {exc}", rule="json-syntax"))
    return Document(value, SourceMap(build=lambda: _json_source(text)))
