"""The JSON Schemas of the state formats (`publisher/state/schemas/`: `delivered.json` and shard
fragments), and checking a document against them: fast enough for a `delivered.json` of ten
thousand entries on every release, with jsonschema's own message (and JSON path) when it fails.

jsonschema walks every entry through `$ref`s and validator objects (about 0.25 ms an entry: a
second for 4000). The schemas use a small subset of JSON Schema, which `policy_checks.fastschema`
compiles to Python once; a document it accepts is valid (the two are kept equal by a property
test), and only a document it refuses is handed to jsonschema (imported then) for the message.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import TYPE_CHECKING, Any

from policy_checks.fastschema import Predicate, compile_predicate

if TYPE_CHECKING:
    import jsonschema

SCHEMAS = ("delivered", "fragment")  # publisher/state/schemas/<name>.schema.json, shipped as data


@functools.cache
def _documents() -> dict[str, Any]:
    folder = resources.files("publisher.state") / "schemas"
    return {
        f"{name}.schema.json": json.loads((folder / f"{name}.schema.json").read_text("utf-8"))
        for name in SCHEMAS
    }


@functools.cache
def validator(name: str) -> jsonschema.protocols.Validator:
    """The full jsonschema validator of one format (for messages)."""
    import jsonschema
    import referencing

    documents = _documents()
    registry: referencing.Registry[Any] = referencing.Registry().with_resources(
        (uri, referencing.Resource.from_contents(doc)) for uri, doc in documents.items()
    )
    schema = documents[f"{name}.schema.json"]
    return jsonschema.validators.validator_for(schema)(schema, registry=registry)


@functools.cache
def conforms(name: str) -> Predicate:
    """A fast predicate equal to `validator(name).is_valid` on the schemas' subset."""
    return compile_predicate(
        _documents()[f"{name}.schema.json"], f"{name}.schema.json", _documents()
    )


def schema_problem(data: Any, name: str) -> str | None:
    """`<JSON path>: <what is wrong>` for the most relevant error of `data` against one of the
    state formats' schemas, or None when it conforms."""
    if conforms(name)(data):
        return None
    from jsonschema.exceptions import best_match

    errors = list(validator(name).iter_errors(data))
    # A wrong format marker or format version explains every other difference: say that first.
    error = best_match([e for e in errors if e.validator == "const"] or errors)
    if error is None:  # the fast check and jsonschema disagree: trust jsonschema
        return None
    message = error.message if len(error.message) <= 200 else error.message[:199] + "…"
    return f"{error.json_path}: {message}"
