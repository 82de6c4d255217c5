"""The JSON Schemas of the state formats (`publisher/schemas/`: `delivered.json` and shard
fragments), and checking a document against them: fast enough for a `delivered.json` of ten
thousand entries on every release, with jsonschema's own message (and JSON path) when it fails.

jsonschema walks every entry through `$ref`s and validator objects (about 0.25 ms an entry: a
second for 4000). The schemas use a small subset of JSON Schema, so `_compile` turns that subset
into plain Python predicates once; a document they accept is valid (the two are kept equal by a
property test), and only a document they refuse is handed to jsonschema for the message.
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


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "null": lambda v: v is None,
}
_ANNOTATIONS = {"$schema", "$id", "title", "description", "$defs"}


def _compile(schema: Any, base: str) -> Predicate:
    """Predicates for: $ref, type (one or a list), const, enum, pattern, required, properties,
    additionalProperties, items. Any other keyword is refused here, so a schema that grows past
    this subset fails loudly instead of being checked loosely."""
    checks: list[Predicate] = []
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        if keyword == "$ref":
            target, uri = _resolve(value, base)
            checks.append(_lazy(functools.partial(_compile, target, uri)))
        elif keyword == "type":
            checks.append(
                _of_type([_TYPES[k] for k in ([value] if isinstance(value, str) else value)])
            )
        elif keyword in ("const", "enum"):
            checks.append(_one_of([value] if keyword == "const" else list(value)))
        elif keyword == "pattern":
            checks.append(_matching(re.compile(value)))
        elif keyword == "required":
            checks.append(_having(list(value)))
        elif keyword == "properties":
            checks.append(_properties({key: _compile(sub, base) for key, sub in value.items()}))
        elif keyword == "additionalProperties":
            checks.append(_others(set(schema.get("properties", {})), _compile(value, base)))
        elif keyword == "items":
            checks.append(_each(_compile(value, base)))
        else:
            raise ValueError(f"{base}: keyword {keyword!r} is outside the fast subset")
    return _all(checks)


def _all(checks: list[Predicate]) -> Predicate:
    def check(value: Any) -> bool:
        return all(each(value) for each in checks)

    return check


def _of_type(kinds: list[Predicate]) -> Predicate:
    def check(value: Any) -> bool:
        return any(kind(value) for kind in kinds)

    return check


def _one_of(options: list[Any]) -> Predicate:
    def check(value: Any) -> bool:
        return any(_same(value, option) for option in options)

    return check


def _same(a: Any, b: Any) -> bool:
    """JSON Schema's equality: numbers by value (1 == 1.0), but true is not 1."""
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return not isinstance(b, bool) and a == b
    return type(a) is type(b) and a == b


def _matching(pattern: re.Pattern[str]) -> Predicate:
    def check(value: Any) -> bool:
        return not isinstance(value, str) or pattern.search(value) is not None

    return check


def _having(keys: list[str]) -> Predicate:
    def check(value: Any) -> bool:
        return not isinstance(value, dict) or all(key in value for key in keys)

    return check


def _properties(props: dict[str, Predicate]) -> Predicate:
    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        return all(each(value[key]) for key, each in props.items() if key in value)

    return check


def _others(known: set[str], each: Predicate) -> Predicate:
    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        return all(each(item) for key, item in value.items() if key not in known)

    return check


def _each(item: Predicate) -> Predicate:
    def check(value: Any) -> bool:
        return not isinstance(value, list) or all(map(item, value))

    return check


def _lazy(make: Callable[[], Predicate]) -> Predicate:
    """A predicate compiled on first use (a `$ref` may point back at its own schema)."""
    compiled: list[Predicate] = []

    def check(value: Any) -> bool:
        if not compiled:
            compiled.append(make())
        return compiled[0](value)

    return check


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
