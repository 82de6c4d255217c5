"""Rules as data: a repository's own schemas and rules.yaml extend or replace the built-ins.

A broken rules file is a RulesError naming the file, raised by PolicyChecker.load.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policy_checks import PolicyChecker, PolicyFiles, RulesError

pytestmark = pytest.mark.fast

FOLDER = "policies/example/v1.0.0"
EXAMPLE = Path(__file__).parent / "example-files" / "valid" / "minimal"
METADATA = (EXAMPLE / "metadata.json").read_bytes()
DEFINITION = (EXAMPLE / "policy-definition.yaml").read_bytes()


def _check(checker: PolicyChecker, metadata: bytes = METADATA) -> list[tuple[str | None, str]]:
    result = checker.check(PolicyFiles(FOLDER, metadata, DEFINITION))
    return [(f.rule, f.render()) for f in result.findings]


def test_builtin_rules_are_loaded_once_and_shared() -> None:
    assert PolicyChecker.load().rule_set is PolicyChecker.load().rule_set
    assert {rule.id for rule in PolicyChecker.load().rule_set.rules} >= {
        "name-matches-folder",
        "version-matches-folder",
        "unique-rule-ids",
    }


def test_missing_rules_folder_means_builtin_rules(tmp_path: Path) -> None:
    checker = PolicyChecker.load(tmp_path / "no-such-dir")
    assert checker.rule_set is PolicyChecker.load().rule_set


def test_repository_schema_replaces_the_builtin_one(tmp_path: Path) -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["name", "version", "tags"],
    }
    (tmp_path / "metadata.schema.json").write_text(json.dumps(schema))
    findings = _check(PolicyChecker.load(tmp_path))
    assert findings == [
        ("schema", f"{FOLDER}/metadata.json:1: $: 'tags' is a required property"),
    ]


def test_repository_rules_are_added_and_same_id_replaces(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        """\
rules:
  - id: name-matches-folder
    kind: equals
    file: metadata.json
    path: $.name
    to: folder.name
    message: "our own words: {actual} vs {expected}"
  - id: unique-tags
    kind: unique
    file: metadata.json
    path: $.tags[*]
    message: "tag {value} twice"
    hint: drop one
"""
    )
    checker = PolicyChecker.load(tmp_path)
    ids = [rule.id for rule in checker.rule_set.rules]
    assert ids.count("name-matches-folder") == 1
    assert ids[-1] == "unique-tags"
    metadata = json.loads(METADATA)
    metadata.update(name="other", tags=["a", "b", "a"])
    findings = _check(checker, json.dumps(metadata, indent=2).encode())
    assert (
        "name-matches-folder",
        f'{FOLDER}/metadata.json:2: $.name: our own words: "other" vs "example"',
    ) in findings
    assert any(rule == "schema" and "non-unique" in text for rule, text in findings)
    assert (
        "unique-tags",
        f'{FOLDER}/metadata.json:9: $.tags[2]: tag "a" twice (hint: drop one)',
    ) in findings


@pytest.mark.parametrize(
    ("file", "content", "says"),
    [
        ("rules.yaml", "rules:\n  - id: x\n    kind: equals\n", "is a required property"),
        ("rules.yaml", "rules: [\n", "YAML syntax error"),
        (
            "rules.yaml",
            "rules:\n  - {id: x, kind: regex, file: metadata.json, path: $.a, message: m}\n",
            "'regex' is not one of",
        ),
        (
            "rules.yaml",
            "rules:\n  - {id: x, kind: unique, file: metadata.json, path: 'a.b', message: m}\n",
            "must start with '$'",
        ),
        (
            "rules.yaml",
            "rules:\n  - {id: x, kind: equals, file: metadata.json, path: $.a, message: m}\n",
            "'to' is a required property",
        ),
        ("metadata.schema.json", "{not json", "invalid JSON"),
        ("definition.schema.json", '{"type": 5}', "not a valid JSON Schema"),
        ("definition.schema.json", "[]", "must be a JSON object"),
    ],
)
def test_broken_repository_rules_file_is_a_rules_error(
    tmp_path: Path, file: str, content: str, says: str
) -> None:
    (tmp_path / file).write_text(content)
    with pytest.raises(RulesError) as info:
        PolicyChecker.load(tmp_path)
    assert str(tmp_path / file) in str(info.value)
    assert says in str(info.value)
    assert isinstance(info.value, ValueError)


def test_rules_folder_that_is_a_file_is_a_rules_error(tmp_path: Path) -> None:
    (tmp_path / "rules").write_text("")
    with pytest.raises(RulesError, match="not a directory"):
        PolicyChecker.load(tmp_path / "rules")


def test_a_schema_that_fails_at_check_time_fails_the_policy_not_the_run(tmp_path: Path) -> None:
    # An unresolvable $ref passes check_schema and only fails while validating.
    (tmp_path / "metadata.schema.json").write_text('{"$ref": "urn:example:nowhere"}')
    findings = _check(PolicyChecker.load(tmp_path))
    assert [rule for rule, _ in findings] == ["internal"]


def test_a_repository_schema_beyond_the_fast_subset_is_checked_by_jsonschema(
    tmp_path: Path,
) -> None:
    schema = {"type": "object", "properties": {"owner": {"type": "string", "maxLength": 5}}}
    (tmp_path / "metadata.schema.json").write_text(json.dumps(schema))
    findings = _check(PolicyChecker.load(tmp_path))
    assert findings == [
        (
            "schema",
            f"{FOLDER}/metadata.json:5: $.owner: 'platform-security' is too long",
        ),
    ]
