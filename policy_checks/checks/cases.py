"""`tests.yaml` of a policy version (CONTRACT section 8), after its schema: what its cases refer
to (parameters, rule ids, resource files), running every case against the compiled rules, the
failures in the words of `kyverno test` (case, rule, expected, actual), and rule coverage when
`policy_tests = required`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from policy_checks.cel.resources import ResourceSchemas
from policy_checks.checks.conditions import (
    CompiledPolicy,
    CompiledRule,
    Parameter,
    is_of_type,
)
from policy_checks.evaluator import ERROR, FAIL, PASS, Evaluator, RuleResult
from policy_checks.jsonpath import Path as JsonPath
from policy_checks.jsonpath import format_path
from policy_checks.loading import Document, load_json, load_yaml
from policy_checks.model import Finding, OtherFile
from policy_checks.naming import TESTS_FILE
from policy_checks.words import cases as case_words
from policy_checks.words import did_you_mean

MAX_CASES = 500  # per tests.yaml (also the schema's maxItems)


@dataclass
class CaseRun:
    """What the tests of one version found: problems, and the count of passing cases."""

    findings: list[Finding] = field(default_factory=list)
    passed: int = 0
    total: int = 0

    @property
    def counts(self) -> str | None:
        return f"{self.passed}/{self.total}" if self.total else None


@dataclass(frozen=True)
class _Case:
    index: int
    name: str
    params: dict[str, Any]
    resource: Any
    expect: dict[str, str]  # only the rules the case names; every other rule must pass


def resource_path_problem(path: str) -> str | None:
    """Why a `resource_file` value is not a relative path inside the version folder, or None."""
    if "\\" in path or ":" in path or path.startswith("/"):
        return "is not a relative path with / between folders"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts) or posixpath.normpath(path) != path:
        return "leaves the version folder or is not written plainly (no .., ., or //)"
    return None


class TestsOfVersion:
    """The cases of one `tests.yaml`, checked against the policy they test."""

    def __init__(
        self,
        document: Document,
        file: str,
        folder: str,
        rule_ids: list[str],
        parameters: tuple[Parameter, ...],
        read_other: Callable[[str], OtherFile] | None,
        resource_schemas: ResourceSchemas | None = None,
    ) -> None:
        self.document = document
        self.file = file
        self.folder = folder
        self.rule_ids = rule_ids
        self.parameters = {p.name: p for p in parameters}
        self.read_other = read_other
        self.resource_schemas = resource_schemas
        self.findings: list[Finding] = []
        self.cases: list[_Case] = []
        self._read_cases()

    def _finding(self, message: str, hint: str | None, rule: str, path: JsonPath) -> None:
        line = self.document.source.line(path)
        self.findings.append(Finding(self.file, message, line, format_path(path), hint, rule))

    def _read_cases(self) -> None:
        raw_cases = self.document.value["cases"]
        if len(raw_cases) > MAX_CASES:
            self._finding(
                *case_words.too_many(len(raw_cases), MAX_CASES), "test-cases-size", ("cases",)
            )
            return
        names: dict[str, int] = {}  # name -> the index of its first case
        for index, raw in enumerate(raw_cases):
            path: JsonPath = ("cases", index)
            name = raw["name"]
            before = len(self.findings)
            if name in names:
                first = self.document.source.line(("cases", names[name], "name"))
                self._finding(
                    *case_words.name_again(name, first), "test-case-name", (*path, "name")
                )
            else:
                names[name] = index
            params = self._params(name, raw.get("params") or {}, path)
            resource = self._resource(name, raw, path)
            self._conforms(name, raw, resource, path)
            expect = self._expect(name, raw["expect"], path)
            if len(self.findings) == before:
                self.cases.append(_Case(index, name, params, resource, expect))

    def _params(self, case: str, given: dict[str, Any], path: JsonPath) -> dict[str, Any]:
        values: dict[str, Any] = {}
        declared = list(self.parameters)
        for name, value in given.items():
            parameter = self.parameters.get(name)
            if parameter is None:
                self._finding(
                    *case_words.unknown_param(case, name, declared),
                    "test-case-params",
                    (*path, "params", name),
                )
            elif not is_of_type(value, parameter.type):
                self._finding(
                    *case_words.param_type(case, name, value, parameter.type),
                    "test-case-params",
                    (*path, "params", name),
                )
            else:
                values[name] = value
        for parameter in self.parameters.values():
            if parameter.name in given:
                continue
            if parameter.has_default:
                values[parameter.name] = parameter.default
            else:
                self._finding(
                    *case_words.param_missing(case, parameter.name), "test-case-params", path
                )
        return values

    def _resource(self, case: str, raw: dict[str, Any], path: JsonPath) -> Any:
        if ("resource" in raw) == ("resource_file" in raw):
            self._finding(*case_words.resource_twice(case), "test-case-resource", path)
            return None
        if "resource" in raw:
            return raw["resource"]
        rel = raw["resource_file"]
        where = (*path, "resource_file")
        problem = resource_path_problem(rel)
        if problem is None and self.read_other is not None:
            other = self.read_other(rel)
            if other.problem is None and other.data is None:
                problem = case_words.no_such_file(self.folder)
            elif other.problem is not None:
                problem = other.problem
        elif problem is None:
            problem = case_words.UNREADABLE
        if problem is not None:
            self._finding(
                *case_words.resource_file(case, rel, problem), "test-case-resource", where
            )
            return None
        loader = load_json if rel.lower().endswith(".json") else load_yaml
        assert other.data is not None
        document = loader(other.data, f"{self.folder}/{rel}")
        if not document.ok:
            self.findings.extend(document.findings)
            return None
        return document.value

    def _conforms(self, case: str, raw: dict[str, Any], resource: Any, path: JsonPath) -> None:
        """A resource whose kind has a schema in resource-schemas/ must be valid against it,
        as the documents the policy will check are."""
        if self.resource_schemas is None:
            return
        problems = self.resource_schemas.validate(resource)
        if not problems:
            return
        kind = resource["kind"]
        given = "resource" if "resource" in raw else f"resource_file {raw['resource_file']}"
        schema = self.resource_schemas.files[kind]
        for where, message in problems:
            self._finding(
                *case_words.breaks_schema(case, given, kind, format_path(where), message, schema),
                "test-case-schema",
                path,
            )

    def _expect(self, case: str, expect: Any, path: JsonPath) -> dict[str, str]:
        if expect == PASS:
            return {}
        named: dict[str, str] = {}
        for rule, result in expect.items():
            if rule not in self.rule_ids:
                self._finding(
                    *case_words.unknown_rule(case, rule, self.rule_ids),
                    "test-case-expect",
                    (*path, "expect", rule),
                )
            else:
                named[rule] = result
        return named

    # -- running ---------------------------------------------------------------------------------

    def start(self, policy: CompiledPolicy, evaluator: Evaluator) -> Callable[[], CaseRun]:
        """Runs every case against the rules: sends them to the evaluator now; the returned
        function waits for the results, each difference a finding at the case's line (so the
        evaluating process works while this one does something else)."""
        # The cases that are well formed run even when others are not (every problem at once).
        submitted = evaluator.submit(policy, [(c.params, c.resource) for c in self.cases])
        return lambda: self._outcome(policy, evaluator.collect(submitted))

    def _outcome(self, policy: CompiledPolicy, every: list[list[RuleResult]]) -> CaseRun:
        outcome = CaseRun(list(self.findings), 0, len(self.document.value["cases"]))
        rules = {rule.id: rule for rule in policy.rules}
        for case, results in zip(self.cases, every, strict=True):
            differing = [
                (result, case.expect.get(result.rule, PASS))
                for result in results
                if result.result != case.expect.get(result.rule, PASS)
            ]
            if not differing:
                # A rule that did not compile was not run: no case passes whole.
                outcome.passed += not policy.uncompiled
                continue
            for result, expected in differing:
                got = result.result + (f" ({result.message})" if result.message else "")
                if result.result == ERROR and result.rule in rules:
                    got += explain_error(rules[result.rule], result.message, case.resource)
                outcome.findings.append(
                    Finding(
                        self.file,
                        case_words.failed(case.name, result.rule, expected, got),
                        self.document.source.line(("cases", case.index)),
                        format_path(("cases", case.index)),
                        None,
                        "test-case",
                    )
                )
        return outcome

    def coverage(self) -> list[Finding]:
        """`policy_tests = required`: each rule passes in one case and fails in another."""
        wanted = []
        cases = [c.expect for c in self.cases]
        for rule in self.rule_ids:
            seen = {expect.get(rule, PASS) for expect in cases}
            missing = [r for r in (PASS, FAIL) if r not in seen]
            if missing:
                wanted.append((rule, missing))
        findings = []
        for rule, missing in wanted:
            message, hint = case_words.uncovered(rule, missing == [PASS, FAIL], missing == [FAIL])
            findings.append(
                Finding(
                    self.file,
                    message,
                    self.document.source.line(("cases",)),
                    "$.cases",
                    hint,
                    "test-coverage",
                )
            )
        return findings


def missing_tests_finding(folder: str, rule_ids: list[str] | None = None) -> Finding:
    message, hint = case_words.missing_file(rule_ids)
    return Finding(f"{folder}/{TESTS_FILE}", message, hint=hint, rule="test-coverage")


_MISSING_KEY = re.compile(r'no such key: "?([^"]*)"?$')
_CHAIN = r"((?:[A-Za-z_][A-Za-z0-9_]*)(?:\??\.[A-Za-z_][A-Za-z0-9_]*)*)\??\.{key}\b"


def explain_error(rule: CompiledRule, message: str | None, resource: Any) -> str:
    """Where an evaluation error comes from: the rule's condition (its line in
    policy-definition.yaml) and, for a missing key, the keys that exist at that level."""
    missing = _MISSING_KEY.search(message or "")
    present = None if missing is None else _keys_beside(rule.condition, missing[1], resource)
    return case_words.error_source(rule.line, None if missing is None else missing[1], present)


def _keys_beside(condition: str, key: str, resource: Any) -> list[str] | None:
    """The keys of the object the condition read `key` from: found by the select chain written
    before `.key` when it starts at `resource`, else every object of the resource that has a
    key close to it."""
    for match in re.finditer(_CHAIN.format(key=re.escape(key)), condition):
        parts = match[1].replace("?", "").split(".")
        if parts[0] != "resource":
            continue
        node = resource
        for part in parts[1:]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            return [str(k) for k in node]
    keys: set[str] = set()
    stack = [resource]
    while stack and len(keys) < 1000:
        node = stack.pop()
        if isinstance(node, dict):
            if did_you_mean(key, [str(k) for k in node]):
                keys.update(str(k) for k in node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(keys) if keys else None
