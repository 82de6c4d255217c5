"""`policy_checks.fastschema`: the predicates compiled from our JSON Schemas accept exactly what
jsonschema accepts (hypothesis, on documents near the valid ones), anything outside the subset is
refused at compile time, and a run over valid policies never imports jsonschema. Our own schemas
are not checked against their metaschema at run time, so they are checked here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings

from policy_checks.fastschema import OutsideSubset, compile_predicate
from policy_checks.rules import RULES_FILE_SCHEMA, builtin_rules, builtin_schema
from publisher.state.schema import SCHEMAS
from tests.schemadocs import examples, mutated, single_edits

pytestmark = pytest.mark.fast

EXAMPLE = Path(__file__).parent / "example-files" / "valid" / "full"
METADATA = json.loads((EXAMPLE / "metadata.json").read_text())
DEFINITION = yaml.safe_load((EXAMPLE / "policy-definition.yaml").read_text())
RULES_YAML = yaml.safe_load((resources.files("policy_checks") / "rules" / "rules.yaml").read_text())
TESTS = yaml.safe_load(
    (Path(__file__).parent / "example-files/valid/cel-conditions/tests.yaml").read_text()
)
TESTS_SCHEMA = builtin_schema("tests.yaml")
# Values the policy schemas care about: enums, patterns, near misses of both.
SAMPLES = [
    "policyhub/v1",
    "PolicyDefinition",
    "critical",
    "deny",
    "storage.bucket",
    "rule-1",
    "Rule_1",
    "-a",
    "tagging",
    "equals",
    "unique",
    "metadata.json",
    "folder.name",
    "$.name",
]
REPLACEMENTS = [*SAMPLES, "", "x", [], {}, None, True, 0, 1.0, ["a", "a"], [{"kind": "k"}]]
KEYS = ["title", "tags", "enforcement", "targets", "parameters", "default", "kind", "to", "hint"]
# tests.yaml's words, so mutations reach its if/then/else and its result words.
SAMPLES += ["pass", "fail", "error", "skip", "passs"]
KEYS += ["expect", "resource", "resource_file", "params", "name"]


def agree(schema: dict[str, Any], document: Any) -> None:
    fast = compile_predicate(schema, "schema.json")(document)
    assert fast == jsonschema.Draft202012Validator(schema).is_valid(document), document


@settings(max_examples=examples(400), deadline=None)
@given(mutated(METADATA, SAMPLES, KEYS))
def test_the_fast_check_of_metadata_agrees_with_jsonschema(document: Any) -> None:
    agree(builtin_rules().metadata_schema, document)


@settings(max_examples=examples(400), deadline=None)
@given(mutated(DEFINITION, SAMPLES, KEYS))
def test_the_fast_check_of_definitions_agrees_with_jsonschema(document: Any) -> None:
    agree(builtin_rules().definition_schema, document)


@settings(max_examples=examples(300), deadline=None)
@given(mutated(TESTS, SAMPLES, KEYS))
def test_the_fast_check_of_tests_files_agrees_with_jsonschema(document: Any) -> None:
    agree(TESTS_SCHEMA, document)


@settings(max_examples=examples(300), deadline=None)
@given(mutated(RULES_YAML, SAMPLES, KEYS))
def test_the_fast_check_of_rules_files_agrees_with_jsonschema(document: Any) -> None:
    agree(RULES_FILE_SCHEMA, document)


@pytest.mark.parametrize(
    ("base", "schema"),
    [
        (METADATA, builtin_rules().metadata_schema),
        (DEFINITION, builtin_rules().definition_schema),
        (RULES_YAML, RULES_FILE_SCHEMA),
        (TESTS, TESTS_SCHEMA),
    ],
    ids=["metadata", "definition", "rules-file", "tests"],
)
def test_the_fast_check_agrees_with_jsonschema_one_edit_from_a_valid_document(
    base: Any, schema: dict[str, Any]
) -> None:
    for document in single_edits(base, REPLACEMENTS):
        agree(schema, document)


def test_our_schemas_are_valid_json_schemas_and_our_rules_file_is_valid() -> None:
    folder = resources.files("publisher.state") / "schemas"
    state = [json.loads((folder / f"{name}.schema.json").read_text()) for name in SCHEMAS]
    rules = builtin_rules()
    ours = [rules.metadata_schema, rules.definition_schema, RULES_FILE_SCHEMA, TESTS_SCHEMA]
    for schema in [*ours, *state]:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    jsonschema.Draft202012Validator(RULES_FILE_SCHEMA).validate(RULES_YAML)


@pytest.mark.parametrize(
    ("items", "distinct"),
    [
        (["a", "b"], True),
        ([1, 1.0], False),  # equal numbers
        ([True, 1], True),  # a boolean is not a number
        ([False, 0, None, ""], True),
        ([None, None], False),
        ([[1], [True]], True),
        ([{"a": 1}, {"a": 1.0}], False),
    ],
)
def test_unique_items_is_sound_and_leaves_containers_to_jsonschema(
    items: list[Any], distinct: bool
) -> None:
    schema = {"uniqueItems": True}
    assert jsonschema.Draft202012Validator(schema).is_valid(items) is distinct
    accepted = compile_predicate(schema, "schema.json")(items)
    has_containers = any(isinstance(item, list | dict) for item in items)
    assert accepted is (distinct and not has_containers)


@pytest.mark.parametrize(
    ("schema", "document"),
    [
        (True, {"any": "thing"}),
        (False, None),
        ({"properties": {"a": False}}, {"a": 1}),
        ({"properties": {"a": False}}, {"b": 1}),
        ({"const": [1, {"b": True}]}, [1.0, {"b": True}]),
        ({"const": [1]}, [True]),
        ({"enum": [1, "1"]}, True),
        ({"type": "integer"}, 1.0),
        ({"type": "integer"}, 1.5),
        ({"type": ["number", "null"]}, False),
        ({"type": "boolean"}, 0),
        ({"minLength": 2}, "é"),
        ({"minLength": 2}, "🙂🙂"),
        ({"minItems": 1}, []),
        ({"if": {"required": ["a"]}, "then": {"required": ["b"]}}, {"a": 1}),
        ({"if": {"required": ["a"]}, "then": {"required": ["b"]}}, {"c": 1}),
        ({"if": {"required": ["a"]}, "else": {"required": ["b"]}}, {"c": 1}),
        ({"then": False}, 1),
        ({"$defs": {"s": {"type": "string"}}, "items": {"$ref": "#/$defs/s"}}, ["a", 1]),
    ],
)
def test_every_keyword_of_the_subset_agrees_with_jsonschema(schema: Any, document: Any) -> None:
    fast = compile_predicate(schema, "schema.json")(document)
    assert fast == jsonschema.Draft202012Validator(schema).is_valid(document)


@pytest.mark.parametrize(
    "schema",
    [
        {"maxLength": 3},
        {"properties": {"a": {"format": "email", "patternProperties": {}}}},
        {"$schema": "http://json-schema.org/draft-07/schema#"},
        {"items": [{"type": "string"}]},
        {"$ref": "other.schema.json#/$defs/x"},
        {"$ref": "#/$defs/missing"},
        {"properties": {"a": {"$id": "elsewhere", "type": "string"}}},
        {"type": "decimal"},
        {"minItems": 1.5},
        {"pattern": "("},
    ],
)
def test_a_schema_outside_the_subset_is_refused_when_compiled(schema: Any) -> None:
    with pytest.raises(OutsideSubset):
        compile_predicate(schema, "schema.json")


CHECK_A_VALID_POLICY = """
import sys
from policy_checks import PolicyChecker, PolicyFiles
from publisher import plugin
import publisher.state.schema as state
files = PolicyFiles("policies/require-tags/v1.2.0", {metadata!r}, {definition!r})
assert PolicyChecker.load().check(files).ok
assert state.schema_problem({{"version": 1, "policies": {{}}}}, "delivered") is None
print("jsonschema" in sys.modules)
"""


@pytest.mark.process
def test_checking_valid_policies_and_state_never_imports_jsonschema() -> None:
    code = CHECK_A_VALID_POLICY.format(
        metadata=(EXAMPLE / "metadata.json").read_bytes(),
        definition=(EXAMPLE / "policy-definition.yaml").read_bytes(),
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert (run.returncode, run.stdout.strip()) == (0, "False"), run.stderr
