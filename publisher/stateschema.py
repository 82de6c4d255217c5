"""The JSON Schemas of the state formats (`publisher/schemas/`: `delivered.json` and shard
fragments), and checking a document against them: fast enough for a `delivered.json` of ten
thousand entries on every release, with jsonschema's own message (and JSON path) when it fails.

jsonschema walks every entry through `$ref`s and validator objects (about 0.25 ms an entry: a
second for 4000). The schemas use a small subset of JSON Schema, so `_compile` turns that subset
into Python source once (as fastjsonschema does for whole drafts); a document it accepts is
valid (the two are kept equal by a property test), and only a document it refuses is handed to
jsonschema for the message.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from importlib import resources
from typing import Any

import jsonschema
import referencing
from jsonschema.exceptions import best_match

SCHEMAS = ("delivered", "fragment")  # publisher/schemas/<name>.schema.json, shipped as data

Predicate = Callable[[Any], bool]


@functools.cache
def _documents() -> dict[str, Any]:
    folder = resources.files("publisher") / "schemas"
    return {
        f"{name}.schema.json": json.loads((folder / f"{name}.schema.json").read_text("utf-8"))
        for name in SCHEMAS
    }


@functools.cache
def validator(name: str) -> jsonschema.protocols.Validator:
    """The full jsonschema validator of one format (for messages)."""
    documents = _documents()
    registry: referencing.Registry[Any] = referencing.Registry().with_resources(
        (uri, referencing.Resource.from_contents(doc)) for uri, doc in documents.items()
    )
    schema = documents[f"{name}.schema.json"]
    return jsonschema.validators.validator_for(schema)(schema, registry=registry)


@functools.cache
def conforms(name: str) -> Predicate:
    """A fast predicate equal to `validator(name).is_valid` on the schemas' subset."""
    return _compile(_documents()[f"{name}.schema.json"], f"{name}.schema.json")


def _resolve(ref: str, base: str) -> tuple[Any, str]:
    uri, _, pointer = ref.partition("#")
    uri = uri or base
    node: Any = _documents()[uri]
    for part in filter(None, pointer.split("/")):
        node = node[part]
    return node, uri


_TYPES = {"object": "dict", "array": "list", "string": "str", "null": "type(None)"}
_ANNOTATIONS = {"$schema", "$id", "title", "description", "$defs"}
_MISSING = object()


def _compile(schema: Any, base: str) -> Predicate:
    """Python source for the schemas' subset ($ref, type, const, enum, pattern, required,
    properties, additionalProperties, items), compiled once: one function per schema node, no
    per-value interpretation. Any other keyword is refused, so a schema that grows past this
    subset fails loudly instead of being checked loosely."""
    lines: list[str] = []
    constants: dict[str, Any] = {"_same": _same, "_MISSING": _MISSING, "re": re}
    names: dict[int, str] = {}

    def function(node: Any, uri: str) -> str:
        if id(node) in names:
            return names[id(node)]
        name = names[id(node)] = f"_f{len(names)}"
        body: list[str] = []
        for keyword, value in node.items():
            if keyword in _ANNOTATIONS:
                continue
            if keyword == "$ref":
                target, target_uri = _resolve(value, uri)
                body.append(f"if not {function(target, target_uri)}(v): return False")
            elif keyword == "type":
                kinds = ", ".join(_TYPES[k] for k in ([value] if isinstance(value, str) else value))
                body.append(f"if not isinstance(v, ({kinds},)): return False")
            elif keyword in ("const", "enum"):
                options = f"_c{len(constants)}"
                constants[options] = [value] if keyword == "const" else list(value)
                body.append(f"if not any(_same(v, o) for o in {options}): return False")
            elif keyword == "pattern":
                pattern = f"_p{len(constants)}"
                constants[pattern] = re.compile(value)
                body.append(f"if isinstance(v, str) and {pattern}.search(v) is None: return False")
            elif keyword == "required":
                keys = " and ".join(f"{key!r} in v" for key in value) or "True"
                body.append(f"if isinstance(v, dict) and not ({keys}): return False")
            elif keyword == "properties":
                body.append("if isinstance(v, dict):")
                for key, sub in value.items():
                    check = function(sub, uri)
                    body.append(f"    x = v.get({key!r}, _MISSING)")
                    body.append(f"    if x is not _MISSING and not {check}(x): return False")
            elif keyword == "additionalProperties":
                known = f"_k{len(constants)}"
                constants[known] = frozenset(node.get("properties", {}))
                check = function(value, uri)
                body.append("if isinstance(v, dict):")
                body.append("    for k, x in v.items():")
                body.append(f"        if k not in {known} and not {check}(x): return False")
            elif keyword == "items":
                check = function(value, uri)
                body.append("if isinstance(v, list):")
                body.append("    for x in v:")
                body.append(f"        if not {check}(x): return False")
            else:
                raise ValueError(f"{uri}: keyword {keyword!r} is outside the fast subset")
        lines.append(f"def {name}(v):")
        lines.extend(f"    {line}" for line in body)
        lines.append("    return True")
        return name

    entry = function(schema, base)
    namespace = dict(constants)
    exec(compile("\n".join(lines), f"<{base} predicates>", "exec"), namespace)
    predicate: Predicate = namespace[entry]
    return predicate


def _same(a: Any, b: Any) -> bool:
    """JSON Schema's equality: numbers by value (1 == 1.0), but true is not 1."""
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return not isinstance(b, bool) and a == b
    return type(a) is type(b) and a == b


def schema_problem(data: Any, name: str) -> str | None:
    """`<JSON path>: <what is wrong>` for the most relevant error of `data` against one of the
    state formats' schemas, or None when it conforms."""
    if conforms(name)(data):
        return None
    errors = list(validator(name).iter_errors(data))
    # A wrong format marker or format version explains every other difference: say that first.
    error = best_match([e for e in errors if e.validator == "const"] or errors)
    if error is None:  # the fast check and jsonschema disagree: trust jsonschema
        return None
    message = error.message if len(error.message) <= 200 else error.message[:199] + "…"
    return f"{error.json_path}: {message}"
