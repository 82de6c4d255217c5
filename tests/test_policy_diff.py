"""The semantic diff of two policy versions (policy_checks/diff.py): each kind of change a
reviewer cares about is found and worded, a definition of another shape is compared key by key,
and the text diff of both files is a unified diff, capped.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from policy_checks.diff import (
    MISSING,
    TEXT_DIFF_MAX_LINES,
    Change,
    describe,
    diff_policies,
    file_diffs,
    text_diff,
)

pytestmark = pytest.mark.fast  # pure functions: the fast tier (tests/conftest.py)

METADATA = {
    "name": "require-tags",
    "version": "1.0.0",
    "description": "Resources must carry a cost-center tag.",
    "owner": "platform-security",
    "tags": ["tagging"],
}
DEFINITION: dict[str, Any] = {
    "apiVersion": "policyhub/v1",
    "kind": "PolicyDefinition",
    "spec": {
        "severity": "high",
        "targets": [{"kind": "storage.bucket"}],
        "parameters": {"tag": {"type": "string", "default": "cost-center"}},
        "rules": [
            {"id": "has-tag", "description": "Every bucket has it", "condition": "true"},
            {"id": "non-empty", "description": "Not empty", "condition": "1 == 1"},
        ],
    },
}


def changed(**edits: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    metadata, definition = copy.deepcopy(METADATA), copy.deepcopy(DEFINITION)
    metadata["version"] = "1.1.0"
    metadata.update(edits.pop("metadata", {}))
    definition["spec"].update(edits)
    return metadata, definition


def test_the_same_content_is_no_change_even_with_another_version() -> None:
    diff = diff_policies(METADATA, DEFINITION, *changed())
    assert diff.empty
    assert describe(diff) == ["no change in meaning"]


def test_rules_added_removed_changed_and_reordered() -> None:
    rules = [
        {"id": "non-empty", "description": "Not empty", "condition": "2 == 2"},
        {"id": "has-tag", "description": "Every bucket carries it", "condition": "true"},
        {"id": "new-rule", "description": "New", "condition": "false"},
    ]
    diff = diff_policies(METADATA, DEFINITION, *changed(rules=rules))
    assert diff.rules_added == ("new-rule",)
    assert diff.rules_removed == ()
    assert {c.key: c.changes for c in diff.rules_changed} == {
        "has-tag": (Change("description", "Every bucket has it", "Every bucket carries it"),),
        "non-empty": (Change("condition", "1 == 1", "2 == 2"),),
    }
    assert diff.rules_reordered
    assert describe(diff) == [
        "rule `new-rule` added",
        "rule `has-tag`: description: Every bucket has it → Every bucket carries it",
        "rule `non-empty`: condition: 1 == 1 → 2 == 2",
        "rules reordered",
    ]
    removed = diff_policies(METADATA, DEFINITION, *changed(rules=rules[:1]))
    assert removed.rules_removed == ("has-tag",)


def test_parameters_types_and_defaults() -> None:
    parameters = {"tag": {"type": "list(string)", "default": ["a"]}, "n": {"type": "int"}}
    diff = diff_policies(METADATA, DEFINITION, *changed(parameters=parameters))
    assert diff.parameters_added == ("n",)
    [tag] = diff.parameters_changed
    assert tag.changes == (
        Change("type", "string", "list(string)"),
        Change("default", "cost-center", ["a"]),
    )
    assert 'parameter `tag`: default: cost-center → ["a"]' in describe(diff)
    gone = diff_policies(METADATA, DEFINITION, *changed(parameters={}))
    assert gone.parameters_removed == ("tag",)


def test_severity_enforcement_targets_and_metadata() -> None:
    diff = diff_policies(
        METADATA,
        DEFINITION,
        *changed(
            severity="critical",
            enforcement="deny",
            targets=[{"kind": "storage.bucket"}, {"kind": "compute.vm"}],
            metadata={"owner": "team-b", "title": "Tags", "tags": ["tagging"]},
        ),
    )
    assert diff.definition == (
        Change("severity", "high", "critical"),
        Change(
            "targets",
            [{"kind": "storage.bucket"}],
            [{"kind": "storage.bucket"}, {"kind": "compute.vm"}],
        ),
        # Absent means audit: saying deny is a change from audit, not an addition.
        Change("enforcement", "audit", "deny"),
    )
    assert diff.metadata == (
        Change("owner", "platform-security", "team-b"),
        Change("title", MISSING, "Tags"),
    )
    assert describe(diff)[-2:] == [
        "metadata owner: platform-security → team-b",
        "metadata title added: Tags",
    ]


def test_explicit_audit_is_the_default_and_no_change() -> None:
    assert diff_policies(METADATA, DEFINITION, *changed(enforcement="audit")).empty


def test_a_definition_of_another_shape_is_compared_key_by_key() -> None:
    other = {"rules": "not a list", "spec": None}
    diff = diff_policies(METADATA, DEFINITION, METADATA, other)
    assert not diff.empty
    lines = describe(diff)
    assert "severity removed (was high)" in lines
    assert "rules added: not a list" in lines  # a top-level key of the other shape
    assert describe(diff_policies(None, [1], None, [2])) == ["(whole): [1] → [2]"]
    # duplicate rule ids: the rules are compared as one value
    rules = [{"id": "a", "condition": "x"}, {"id": "a", "condition": "y"}]
    dup = diff_policies(METADATA, DEFINITION, *changed(rules=rules))
    assert [c.path for c in dup.definition] == ["rules"]


def test_values_are_capped_in_the_description() -> None:
    diff = diff_policies(METADATA, DEFINITION, *changed(metadata={"description": "x" * 10_000}))
    [line] = describe(diff, limit=50)
    assert len(line) < 200 and line.endswith("…")


def test_the_text_diff_of_both_files() -> None:
    diffs = dict(file_diffs((METADATA, DEFINITION), changed(severity="low"), "v1.0.0", "v1.1.0"))
    assert diffs["metadata.json"][:2] == ["--- v1.0.0/metadata.json", "+++ v1.1.0/metadata.json"]
    assert '-  "version": "1.0.0",' in diffs["metadata.json"]
    assert "-  severity: high" in diffs["policy-definition.yaml"]
    assert "+  severity: low" in diffs["policy-definition.yaml"]
    same = dict(file_diffs((METADATA, DEFINITION), (METADATA, DEFINITION), "a", "b"))
    assert same == {"metadata.json": [], "policy-definition.yaml": []}


def test_a_huge_text_diff_is_cut() -> None:
    before = "\n".join(str(n) for n in range(5000))
    after = "\n".join(f"{n}!" for n in range(5000))
    lines = text_diff(before, after, "a", "b")
    assert len(lines) == TEXT_DIFF_MAX_LINES + 1
    assert lines[-1].endswith("more lines of diff")
