"""YAML, read once: a policy file (one document) or a stream of them (`---`, as Kubernetes
manifests are written) composed by the C composer, then one walk over the node tree that gives
the JSON-compatible value, where each value is written (its line; a string's span, to place a
column inside it) and the finding for anything JSON cannot hold or we refuse. Nothing here
raises on any input.
"""

from __future__ import annotations

import functools
import math
from dataclasses import replace
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from policy_checks.jsonpath import Path, format_path
from policy_checks.loading.decode import decode_text
from policy_checks.loading.document import (
    INT_LIMIT,
    MAX_FINDINGS_PER_FILE,
    Document,
    ScalarSpan,
    SourceMap,
    SourceMapParts,
    duplicate_key,
    failed,
    too_large,
)
from policy_checks.loading.yaml_errors import yaml_error
from policy_checks.model import Finding

# The C composer is an order of magnitude faster; the pure-Python one gives the same nodes.
_BASE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER = _BASE_LOADER("")  # only for its stateless resolve(): a safe loader has no paths


@functools.lru_cache(maxsize=1 << 16)
def _resolved(kind: type, value: str, implicit: tuple[bool, bool]) -> str:
    """The tag of a node, once per (kind, text, implicit) per process: the composer asks for
    every node, and the C cache of lru_cache answers without a Python frame. The cache keeps
    the texts it was asked about: it is emptied after each RESOLVED_TEXT_LIMIT characters
    composed (`_count_composed`), so it never holds more than that and one file."""
    return str(_RESOLVER.resolve(kind, value, implicit))


RESOLVED_TEXT_LIMIT = 4 << 20
_composed_since_clear = 0


class _Loader(_BASE_LOADER):  # type: ignore[misc]
    """The safe loader, with the composer's three calls a node answered by C callables: the
    tag from `_resolved`'s cache (the Python resolver is a fifth of composing a test file),
    and no path resolvers to descend into or ascend from (a safe loader has none; `slice` and
    `tuple` are C no-ops of the right arity, as a Python method costs a frame a node)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.resolve = _resolved
        self.descend_resolver = slice
        self.ascend_resolver = tuple


_LOADER: type = _Loader
assert not getattr(_BASE_LOADER, "yaml_path_resolvers", None)  # makes the no-ops above right
# Only used for its stateless scalar converters (YAML 1.1 ints, floats, bools).
_SCALARS = yaml.constructor.SafeConstructor()

# Policies are a few levels deep; the bound keeps our recursive walk far from Python's limit.
MAX_DEPTH = 64

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


class _TreeReader:
    """Turns a composed YAML node tree into plain values, recording where each is written
    (its line; a string's span) and the findings of what JSON cannot hold or we refuse.

    Aliases are refused outright: a node met twice is an alias, which also stops alias bombs
    and recursive anchors after one step instead of after the expansion.

    Without `record` the walk only gives values, and stops (`_NeedsRecordingError`) at the
    first thing it would report: most files need no finding and no map until something is
    reported about them, so the map is the same walk again, recording, when first asked.
    `aliases_possible`: whether the text holds an `&` (an anchor; often a condition's `&&`).
    """

    def __init__(self, file: str, record: bool = True, aliases_possible: bool = True) -> None:
        self.file = file
        self.record = record
        self._track = record or aliases_possible
        self.findings: list[Finding] = []
        self.lines: dict[Path, int] = {}
        self.raw: dict[Path, str] = {}
        self.spans: dict[Path, ScalarSpan] = {}
        self._seen: set[int] = set()
        self.aliases = 0

    def report(
        self, message: str, path: Path, line: int | None, rule: str, hint: str | None = None
    ) -> None:
        if not self.record:
            raise _NeedsRecordingError
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
            if self.record:
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
        if self._track and id(node) in self._seen:
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
        if self._track:
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
                if self.record:
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
                if not self.record:
                    raise _NeedsRecordingError
                self.report(
                    duplicate_key(key, self.lines[key_path]),
                    key_path,
                    key_line,
                    "duplicate-key",
                    "keep one of the two entries",
                )
                continue
            if self.record:
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
            if self.record:
                self.spans[path] = ScalarSpan(
                    node.start_mark.index, node.end_mark.index, node.style
                )
            return node.value
        if self.record:
            self.raw[path] = node.value
        try:
            return _scalar_value(node)
        except _ScalarProblemError as problem:
            if problem.rule is None:
                self.report_tag(node, path, line)
            else:
                self.report(str(problem), path, line, problem.rule, problem.hint)
            return None


class _NeedsRecordingError(Exception):
    """A walk without `record` met something to report: the file is walked again, recording."""


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
                message = too_large(node.value)
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


def _compose(text: str) -> Node | None:
    _count_composed(text)
    return yaml.compose(text, Loader=_LOADER)


def _compose_all(text: str) -> list[Node]:
    _count_composed(text)
    return list(yaml.compose_all(text, Loader=_LOADER))


def _count_composed(text: str) -> None:
    global _composed_since_clear
    _composed_since_clear += len(text)
    if _composed_since_clear > RESOLVED_TEXT_LIMIT:
        _resolved.cache_clear()
        _composed_since_clear = len(text)


def _composed(data: bytes, file: str, stream: bool) -> tuple[str, list[Node]] | Document:
    """The text and the composed document roots of a YAML file (`stream`: every document, else
    exactly one), or the failed Document that says why there are none."""
    text, problem = decode_text(data, file)
    if problem is not None or text is None:
        return failed(problem) if problem else failed()
    try:
        if stream:
            roots = _compose_all(text)
        else:
            root = _compose(text)
            roots = [] if root is None else [root]
    except yaml.YAMLError as exc:
        return failed(yaml_error(file, text, exc))
    except RecursionError:
        return failed(Finding(file, "YAML nested too deeply", rule="nesting-depth"))
    if not roots:
        return failed(
            Finding(
                file, "file holds no YAML document (only comments)", line=1, rule="empty-document"
            )
        )
    return text, roots


def _read(file: str, text: str, roots: list[Node], stream: bool) -> Document:
    """The JSON-compatible value of composed roots: one document's, or (`stream`) the list of
    every document's, with the findings of anything JSON cannot hold or we refuse."""
    try:
        values = _TreeReader(file, record=False, aliases_possible="&" in text).read_all(
            roots, stream
        )
    except _NeedsRecordingError:
        reader = _TreeReader(file)
        values = reader.read_all(roots, stream)
        if reader.findings:
            return failed(*reader.findings)
        source = SourceMap(reader.lines, reader.raw, spans=reader.spans)
    else:
        source = SourceMap(build=lambda: _recorded(file, text, stream))
    return Document(values if stream else values[0], source)


def _recorded(file: str, text: str, stream: bool) -> SourceMapParts:
    """The source map of a text that read without a finding: composed again and walked,
    recording. Only the text is kept until then, not its node tree: most maps are never asked
    for, and thousands of trees kept alive a version longer (the next version's checks run
    ahead) are what the cyclic garbage collector's passes would walk again and again."""
    reader = _TreeReader(file)
    roots = _compose_all(text) if stream else [_compose(text)]
    reader.read_all([root for root in roots if root is not None], stream)
    return reader.lines, reader.raw, reader.spans


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


def read_yaml(data: bytes, file: str, value: Any) -> Document:
    """The Document `load_yaml(data, file)` gives for a file already read elsewhere (by the
    evaluating process) into `value`, without a finding: its source map is composed from the
    text the first time a line is asked for."""
    return Document(value, SourceMap(build=lambda: _recorded(file, data.decode(), stream=False)))


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


def scalar_position(text: str, span: ScalarSpan, value: str, offset: int) -> tuple[int, int]:
    """Where (1-based line, column) the `offset`-th character of the string `value` is written
    in `text`, the string being written at `span` (its `SourceMap.span`): plain, quoted, folded
    or literal, on one line or several.

    The value is matched against its source span character by character; what the source holds
    beyond the value (quotes, escapes, indentation, folded line breaks) is stepped over."""
    source = text[span.start : span.end]
    position = 0
    if span.style in ("|", ">"):
        position = source.find("\n") + 1  # the header line (`|`, `>-`) holds no value
    elif span.style in ("'", '"'):
        position = 1
    for index, char in enumerate(value):
        while position < len(source) and source[position] != char:
            if char in " \n" and source[position] in " \n":
                break
            position += 1
        if index == offset:
            break
        position += 1
    absolute = span.start + min(position, len(source))
    row = text.count("\n", 0, absolute)
    column = absolute - (text.rfind("\n", 0, absolute) + 1)
    return row + 1, column + 1


def scalar_offset_position(document: str, path: Path, offset: int) -> tuple[int, int] | None:
    """`scalar_position` of the string at `path` of a YAML document's text; None when the
    document does not load or holds no string there."""
    loaded = load_yaml(document.encode(), "<text>")
    span = loaded.source.span(path) if loaded.ok else None
    value: Any = loaded.value
    for key in path if span is not None else ():
        value = value[key]
    if span is None or not isinstance(value, str):
        return None
    return scalar_position(document, span, value, offset)
