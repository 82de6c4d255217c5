"""The words of tests.yaml's findings: each function gives what the author reads (the message,
and the hint that says what to do), from the facts the case checks found."""

from __future__ import annotations

from typing import Any

from policy_checks.naming import TESTS_FILE
from policy_checks.words import describe, did_you_mean

REQUIRED_HINT = (
    "policy_tests = required: every rule needs a case in which it passes and one in which it fails"
)
UNREADABLE = "cannot be read here"


def too_many(count: int, limit: int) -> tuple[str, str]:
    return (
        f"{TESTS_FILE} holds {count} cases; the limit is {limit}",
        "keep the cases that pin each rule's behaviour; split a long list of resources into "
        "fewer, more telling ones",
    )


def name_again(name: str, first_line: int | None) -> tuple[str, str]:
    return (
        f'case name "{name}" is used more than once (first at line {first_line})',
        "give every case of the file its own name",
    )


def unknown_param(case: str, name: str, declared: list[str]) -> tuple[str, str]:
    match = did_you_mean(name, declared)
    return (
        f'case "{case}": {name} is not a parameter of this policy (declared: '
        f"{', '.join(declared) or 'none'})",
        f"did you mean `{match}`?" if match else "declare it under spec.parameters",
    )


def param_type(case: str, name: str, value: Any, type_name: str) -> tuple[str, str]:
    return (
        f'case "{case}": params.{name} is {describe(value)}, not of type {type_name}',
        f"give a value of type {type_name}",
    )


def param_missing(case: str, name: str) -> tuple[str, str]:
    return (
        f'case "{case}": parameter {name} has no default and the case gives no value',
        f"add params: {{{name}: ...}} to the case, or a default to the parameter",
    )


def resource_twice(case: str) -> tuple[str, str]:
    return (
        f'case "{case}": give exactly one of resource and resource_file',
        "resource: the document inline, or resource_file: a JSON or YAML file in the version "
        "folder",
    )


def no_such_file(folder: str) -> str:
    return f"does not exist in {folder}"


def resource_file(case: str, rel: str, problem: str) -> tuple[str, str]:
    return (
        f'case "{case}": resource_file {rel} {problem}',
        "name a JSON or YAML file inside the version folder, relative to it "
        "(e.g. fixtures/bucket.json); links are never followed",
    )


def breaks_schema(
    case: str, given: str, kind: str, where: str, message: str, schema: str
) -> tuple[str, str]:
    """A test resource that its kind's schema in resource-schemas/ refuses."""
    return (
        f'case "{case}": the {given} is not a valid {kind}: {where}: {message}',
        f"make it match {schema}, or correct the schema",
    )


def unknown_rule(case: str, rule: str, rule_ids: list[str]) -> tuple[str, str]:
    match = did_you_mean(rule, rule_ids)
    return (
        f'case "{case}": expect names rule {rule}, which the policy does not have '
        f"(rules: {', '.join(rule_ids)})",
        f"did you mean `{match}`?" if match else "name a rule id of spec.rules",
    )


def failed(case: str, rule: str, expected: str, got: str) -> str:
    return f'case "{case}" failed: rule {rule}: expected {expected}, got {got}'


def uncovered(rule: str, neither: bool, only_fails_missing: bool) -> tuple[str, str]:
    """policy_tests = required, and a rule lacks a passing or a failing case (or both)."""
    if neither:
        message = f"rule {rule} has no case in which it passes and none in which it fails"
    elif only_fails_missing:
        message = f"rule {rule} has no case in which it fails"
    else:
        message = f"rule {rule} has no case in which it passes"
    example = f"{{{rule}: fail}}" if only_fails_missing else "pass"
    return message, f"add a case with expect: {example}; {REQUIRED_HINT}"


def missing_file(rule_ids: list[str] | None) -> tuple[str, str]:
    lacking = f": rules without cases: {', '.join(rule_ids)}" if rule_ids else ""
    return (
        f"{TESTS_FILE} is missing{lacking}",
        REQUIRED_HINT + " (see the README's `tests.yaml`)",
    )


def error_source(line: int | None, missing_key: str | None, present: list[str] | None) -> str:
    """What is added to an evaluation error: the condition's line and, for a key the resource
    lacks, the keys it has at that level."""
    where = f"; from the condition at policy-definition.yaml line {line}" if line else ""
    if missing_key is None or present is None:
        return where
    near = did_you_mean(missing_key, sorted(present))
    listed = ", ".join(sorted(present)[:12]) or "none"
    return where + (f"; did you mean `{near}`?" if near else "") + f" (keys there: {listed})"
