"""Fast predicates compiled from JSON Schemas: the subset of draft 2020-12 that our schemas use,
turned into Python source once, so that a valid document costs a few function calls and no
jsonschema at all (fastjsonschema does the same for whole drafts).

A document a predicate accepts is valid; one it refuses is handed to jsonschema, which decides
and words the findings (property tests keep the two equal). A schema using anything outside the
subset raises `OutsideSubset`: it gets no fast path, never a looser check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

Predicate = Callable[[Any], bool]

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

# Keywords that never change whether a document is valid (in jsonschema without a format
# checker, as both packages use it). `$defs` and `definitions` are reached only through `$ref`.
_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "$comment",
        "$defs",
        "definitions",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
# Each JSON type as a test of a Python value `v`; booleans are not numbers.
_TYPES = {
    "object": "isinstance(v, dict)",
    "array": "isinstance(v, list)",
    "string": "isinstance(v, str)",
    "boolean": "isinstance(v, bool)",
    "null": "v is None",
    "number": "(isinstance(v, int | float) and not isinstance(v, bool))",
    "integer": "(isinstance(v, int) and not isinstance(v, bool)"
    " or isinstance(v, float) and v.is_integer())",
}
_MISSING = object()


class OutsideSubset(ValueError):
    """The schema uses something the compiler does not implement exactly."""


def compile_predicate(
    schema: Any, base_uri: str, documents: Mapping[str, Any] | None = None
) -> Predicate:
    """A predicate equal to jsonschema's `is_valid` for `schema` (draft 2020-12) on every
    document it accepts. `$ref`s resolve within `schema` (known as `base_uri`) and `documents`
    (uri -> schema); raises OutsideSubset for a keyword, `$schema` or reference it cannot
    check exactly."""
    compiler = _Compiler({**(documents or {}), base_uri: schema})
    entry = compiler.function(schema, base_uri)
    namespace = dict(compiler.constants)
    source = "\n".join(compiler.lines)
    exec(compile(source, f"<{base_uri} predicates>", "exec"), namespace)
    predicate: Predicate = namespace[entry]
    return predicate


class _Compiler:
    """One function of Python source per schema node; a node reached twice is compiled once."""

    def __init__(self, documents: dict[str, Any]) -> None:
        self.documents = documents
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {
            "_same": same,
            "_distinct": distinct,
            "_MISSING": _MISSING,
        }
        self.names: dict[int, str] = {}

    def constant(self, value: Any) -> str:
        name = f"_c{len(self.constants)}"
        self.constants[name] = value
        return name

    def function(self, node: Any, uri: str) -> str:
        if id(node) in self.names:
            return self.names[id(node)]
        name = self.names[id(node)] = f"_f{len(self.names)}"
        if isinstance(node, bool):  # `true` accepts everything, `false` nothing
            body = [] if node else ["return False"]
        elif isinstance(node, dict):
            body = self.body(node, uri)
        else:
            raise OutsideSubset(f"{uri}: a schema must be an object or a boolean, not {node!r}")
        self.lines.append(f"def {name}(v):")
        self.lines.extend(f"    {line}" for line in body)
        self.lines.append("    return True")
        return name

    def body(self, node: dict[str, Any], uri: str) -> list[str]:
        body: list[str] = []
        for keyword, value in node.items():
            if keyword in _ANNOTATIONS:
                continue
            if keyword in ("$schema", "$id") and node is self.documents[uri]:
                if keyword == "$schema" and value != DRAFT_2020_12:
                    raise OutsideSubset(f"{uri}: only draft 2020-12 is compiled, not {value!r}")
                continue
            if keyword not in _KEYWORDS:
                raise OutsideSubset(f"{uri}: keyword {keyword!r} is outside the fast subset")
            body.extend(_KEYWORDS[keyword](self, value, node, uri))
        return body

    def ref(self, value: Any, node: dict[str, Any], uri: str) -> list[str]:
        target, target_uri = self.resolve(_expect(value, str, "$ref", uri), uri)
        return [f"if not {self.function(target, target_uri)}(v): return False"]

    def type_(self, value: Any, node: dict[str, Any], uri: str) -> list[str]:
        tests = []
        for kind in [value] if isinstance(value, str) else _expect(value, list, "type", uri):
            if kind not in _TYPES:
                raise OutsideSubset(f"{uri}: type {kind!r} is outside the fast subset")
            tests.append(_TYPES[kind])
        return [f"if not ({' or '.join(tests) or 'False'}): return False"]

    def const(self, value: Any, node: dict[str, Any], uri: str) -> list[str]:
        return [f"if not _same(v, {self.constant(value)}): return False"]

    def enum(self, value: Any, node: dict[str, Any], uri: str) -> list[str]:
        options = self.constant(list(_expect(value, list, "enum", uri)))
        return [f"if not any(_same(v, o) for o in {options}): return False"]

    def pattern(self, value: Any, node: dict[str, Any], uri: str) -> list[str]:
        # jsonschema matches with Python's `re.search` too, so the two agree on every pattern.
        try:
            compiled = re.compile(_expect(value, str, "pattern", uri))
        except re.error as exc:
            raise OutsideSubset(f"{uri}: pattern {value!r}: {exc}") from None
        return [
            f"if isinstance(v, str) and {self.constant(compiled)}.search(v) is None: return False"
        ]

    def min_length(self, value: Any, node: dict[str, Any], uri: str) -> list[str]:
        # Code points, as jsonschema counts them: len(str).
        return _at_least("str", _count(value, "minLength", uri))

    def min_items(self, value: Any, node: dict[str, Any], uri: str) -> list[str]:
        return _at_least("list", _count(value, "minItems", uri))

    def unique_items(self, value: Any, node: dict[str, Any], uri: str) -> list[str]:
        if not _expect(value, bool, "uniqueItems", uri):
            return []
        return ["if isinstance(v, list) and not _distinct(v): return False"]

    def required(self, value: Any, node: dict[str, Any], uri: str) -> list[str]:
        keys = [_expect(key, str, "required", uri) for key in _expect(value, list, "required", uri)]
        test = " and ".join(f"{key!r} in v" for key in keys) or "True"
        return [f"if isinstance(v, dict) and not ({test}): return False"]

    def properties(self, value: Any, node: dict[str, Any], uri: str) -> list[str]:
        body = ["if isinstance(v, dict):"]
        for key, sub in _expect(value, dict, "properties", uri).items():
            check = self.function(sub, uri)
            body.append(f"    x = v.get({key!r}, _MISSING)")
            body.append(f"    if x is not _MISSING and not {check}(x): return False")
        return body

    def additional_properties(self, value: Any, node: dict[str, Any], uri: str) -> list[str]:
        known = self.constant(frozenset(node.get("properties", {})))
        check = self.function(value, uri)
        return [
            "if isinstance(v, dict):",
            "    for k, x in v.items():",
            f"        if k not in {known} and not {check}(x): return False",
        ]

    def items(self, value: Any, node: dict[str, Any], uri: str) -> list[str]:
        check = self.function(value, uri)
        return [
            "if isinstance(v, list):",
            "    for x in v:",
            f"        if not {check}(x): return False",
        ]

    def if_(self, value: Any, node: dict[str, Any], uri: str) -> list[str]:
        then, otherwise = node.get("then", True), node.get("else", True)
        return [
            f"if {self.function(value, uri)}(v):",
            f"    if not {self.function(then, uri)}(v): return False",
            f"elif not {self.function(otherwise, uri)}(v): return False",
        ]

    def nothing(self, value: Any, node: dict[str, Any], uri: str) -> list[str]:
        return []  # `then` and `else` are compiled by `if` (and mean nothing without it)

    def resolve(self, ref: str, base: str) -> tuple[Any, str]:
        """The schema node a `$ref` names: a document by its uri, then a JSON pointer in it."""
        uri, _, pointer = ref.partition("#")
        uri = uri or base
        if uri not in self.documents or (pointer and not pointer.startswith("/")):
            raise OutsideSubset(f"{base}: cannot resolve $ref {ref!r} without jsonschema")
        node: Any = self.documents[uri]
        for part in pointer.split("/")[1:]:
            part = unquote(part).replace("~1", "/").replace("~0", "~")
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise OutsideSubset(f"{base}: $ref {ref!r} names nothing")
        return node, uri


_KEYWORDS: dict[str, Callable[[_Compiler, Any, dict[str, Any], str], list[str]]] = {
    "$ref": _Compiler.ref,
    "type": _Compiler.type_,
    "const": _Compiler.const,
    "enum": _Compiler.enum,
    "pattern": _Compiler.pattern,
    "minLength": _Compiler.min_length,
    "minItems": _Compiler.min_items,
    "uniqueItems": _Compiler.unique_items,
    "required": _Compiler.required,
    "properties": _Compiler.properties,
    "additionalProperties": _Compiler.additional_properties,
    "items": _Compiler.items,
    "if": _Compiler.if_,
    "then": _Compiler.nothing,
    "else": _Compiler.nothing,
}


def _expect(value: Any, kind: type, keyword: str, uri: str) -> Any:
    if not isinstance(value, kind):
        raise OutsideSubset(f"{uri}: {keyword} must be a {kind.__name__}, not {value!r}")
    return value


def _count(value: Any, keyword: str, uri: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OutsideSubset(f"{uri}: {keyword} must be a non-negative integer, not {value!r}")
    return value


def _at_least(kind: str, least: int) -> list[str]:
    return [f"if isinstance(v, {kind}) and len(v) < {least}: return False"]


def same(a: Any, b: Any) -> bool:
    """JSON equality, as jsonschema compares for const, enum and uniqueItems: numbers by value
    (1 == 1.0), but true is not 1, and so on inside lists and objects."""
    if isinstance(a, str) or isinstance(b, str):
        return bool(a == b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def distinct(items: list[Any]) -> bool:
    """True when the items are certainly distinct under JSON equality. Lists and objects among
    them make it answer False: jsonschema then decides, which is slow but never wrong."""
    seen: set[tuple[bool, Any]] = set()
    for item in items:
        if isinstance(item, list | dict):
            return False
        # (is it a boolean, value): 1 and 1.0 hash and compare equal, true and 1 do not.
        key = (isinstance(item, bool), item)
        if key in seen:
            return False
        seen.add(key)
    return True
