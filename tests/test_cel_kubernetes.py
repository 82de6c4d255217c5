"""Kubernetes' own CEL test cases, run against this project's CEL environment.

The cases are data: tests/cel-kubernetes/<library>.yaml, converted from Kubernetes' Go tests by
tests/cel-kubernetes/convert.py (see tests/cel-kubernetes/README.md). Each case is one test,
named `<file>:<index>:<expression>`:

- `value`: the expression evaluates to this plain value (floats compared with math.isclose, NaN
  with NaN; lists and maps deeply; an int is never a float, nor a bool an int);
- `value_expr`: `(<expr>) == (<value_expr>)` evaluates to true;
- `compile_error` / `runtime_error`: the expression fails at that stage. Only the stage is
  checked: the text is Kubernetes' message, kept for humans (this engine words things its own
  way). A constant argument that cannot be parsed fails when compiling here (docs/contract.md
  section 8), which satisfies a `runtime_error` of Kubernetes' library tests.

`self` (a dyn variable) is bound when the case gives one, typed by `self_schema` when it gives one.
A case may be `skip: <reason>` (it cannot apply here at all). tests/cel-kubernetes/
known-differences.yaml lists the cases expected to differ from Kubernetes, each with its reason:
they run as xfail(strict=True), so one that starts to agree fails until its entry is removed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy_checks.cel.environment import run_expression

pytestmark = pytest.mark.fast

CASES_DIR = Path(__file__).resolve().parent / "cel-kubernetes"
KNOWN_DIFFERENCES = CASES_DIR / "known-differences.yaml"
OUTCOMES = ("value", "value_expr", "compile_error", "runtime_error")
CASE_KEYS = {"expr", "self", "self_schema", "skip", *OUTCOMES}
KNOWN_KEYS = {"expr", "file", "index", "reason"}
ID_EXPR_LENGTH = 60


class CaseFileError(Exception):
    """A case file that is not of the documented form."""


@dataclass(frozen=True)
class K8sCase:
    file: str  # file name without .yaml
    index: int  # position in the file's `cases`, from 0
    data: Mapping[str, Any]

    @property
    def expr(self) -> str:
        return str(self.data["expr"])

    @property
    def outcome(self) -> str:
        return next(k for k in OUTCOMES if k in self.data)

    @property
    def id(self) -> str:
        text = " ".join(self.expr.split())
        if len(text) > ID_EXPR_LENGTH:
            text = text[: ID_EXPR_LENGTH - 1] + "…"
        return f"{self.file}:{self.index}:{text}"


@dataclass(frozen=True)
class KnownDifference:
    expr: str
    reason: str
    file: str | None
    index: int | None

    def matches(self, case: K8sCase) -> bool:
        return (
            self.expr == case.expr
            and (self.file is None or self.file == case.file)
            and (self.index is None or self.index == case.index)
        )


def _read_cases(path: Path) -> list[Any]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CaseFileError(f"{path.name}: not YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
        raise CaseFileError(f"{path.name}: expected a mapping with a `cases` list")
    return list(doc["cases"])


def _stem(name: str) -> str:
    return name[: -len(".yaml")] if name.endswith(".yaml") else name


def load_cases(directory: Path = CASES_DIR) -> list[K8sCase]:
    cases = []
    for path in sorted(directory.glob("*.yaml")):
        if path == KNOWN_DIFFERENCES:
            continue
        for index, data in enumerate(_read_cases(path)):
            where = f"{path.name} case {index}"
            if not isinstance(data, dict):
                raise CaseFileError(f"{where}: not a mapping")
            unknown = set(data) - CASE_KEYS
            if unknown:
                raise CaseFileError(f"{where}: unknown keys {sorted(unknown)}")
            if not isinstance(data.get("expr"), str) or not data["expr"].strip():
                raise CaseFileError(f"{where}: `expr` must be a non-empty string")
            outcomes = [k for k in OUTCOMES if k in data]
            if len(outcomes) != 1:
                raise CaseFileError(f"{where}: needs exactly one of {', '.join(OUTCOMES)}")
            for key in ("value_expr", "compile_error", "runtime_error", "skip"):
                if key in data and not isinstance(data[key], str):
                    raise CaseFileError(f"{where}: `{key}` must be a string")
            cases.append(K8sCase(_stem(path.name), index, data))
    return cases


def load_known_differences(path: Path = KNOWN_DIFFERENCES) -> list[KnownDifference]:
    if not path.exists():
        return []
    out = []
    for index, entry in enumerate(_read_cases(path)):
        where = f"{path.name} entry {index}"
        if not isinstance(entry, dict) or set(entry) - KNOWN_KEYS:
            raise CaseFileError(f"{where}: a mapping of {', '.join(sorted(KNOWN_KEYS))}")
        if not isinstance(entry.get("expr"), str) or not isinstance(entry.get("reason"), str):
            raise CaseFileError(f"{where}: needs `expr` and `reason` (strings)")
        index_value = entry.get("index")
        if index_value is not None and not isinstance(index_value, int):
            raise CaseFileError(f"{where}: `index` must be an integer")
        file = entry.get("file")
        out.append(
            KnownDifference(
                expr=entry["expr"],
                reason=entry["reason"],
                file=None if file is None else _stem(str(file)),
                index=index_value,
            )
        )
    return out


CASES = load_cases()
DIFFERENCES = load_known_differences()


def _params() -> list[Any]:
    params = []
    for case in CASES:
        marks: list[pytest.MarkDecorator] = []
        if "skip" in case.data:
            marks.append(pytest.mark.skip(reason=case.data["skip"]))
        else:
            reasons = [d.reason for d in DIFFERENCES if d.matches(case)]
            if reasons:
                marks.append(pytest.mark.xfail(strict=True, reason="; ".join(reasons)))
        params.append(pytest.param(case, marks=marks, id=case.id))
    return params


def same_value(expected: Any, actual: Any) -> bool:
    """Plain-value equality that keeps CEL's types apart: true is not 1, 1 is not 1.0."""
    if expected is None:
        return actual is None
    if isinstance(expected, bool):
        return isinstance(actual, bool) and actual == expected
    if isinstance(expected, int):
        return isinstance(actual, int) and not isinstance(actual, bool) and actual == expected
    if isinstance(expected, float):
        if not isinstance(actual, float):
            return False
        if math.isnan(expected):
            return math.isnan(actual)
        return math.isclose(expected, actual, rel_tol=1e-9, abs_tol=0.0)
    if isinstance(expected, str):
        return isinstance(actual, str) and actual == expected
    if isinstance(expected, list):
        return (
            isinstance(actual, Sequence)
            and not isinstance(actual, str | bytes)
            and len(actual) == len(expected)
            and all(same_value(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, dict):
        if not isinstance(actual, Mapping) or len(actual) != len(expected):
            return False
        for key, value in expected.items():
            matching = [k for k in actual if same_value(key, k)]
            if len(matching) != 1 or not same_value(value, actual[matching[0]]):
                return False
        return True
    raise TypeError(f"a case's value of type {type(expected).__name__}")


def run_case(case: K8sCase, text: str) -> Any:
    variables = {"self": case.data["self"]} if "self" in case.data else {}
    schemas = {}
    if "self" in case.data or "self_schema" in case.data:
        schemas = {"self": case.data.get("self_schema")}
    return run_expression(text, variables=variables, schemas=schemas)


def describe(outcome: Any) -> str:
    if outcome.stage == "value":
        return f"value {outcome.value!r}"
    return f"{outcome.stage} error: {outcome.message}"


@pytest.mark.parametrize("case", _params())
def test_kubernetes_case(case: K8sCase) -> None:
    kind = case.outcome
    expected = case.data[kind]
    if kind == "value_expr":
        outcome = run_case(case, f"({case.expr}) == ({expected})")
        assert outcome.stage == "value" and outcome.value is True, (
            f"({case.expr}) == ({expected}) should be true, got {describe(outcome)}"
        )
        return
    outcome = run_case(case, case.expr)
    if kind == "value":
        assert outcome.stage == "value", f"expected {expected!r}, got {describe(outcome)}"
        assert same_value(expected, outcome.value), f"expected {expected!r}, got {outcome.value!r}"
    else:
        stage = kind.removesuffix("_error")
        # docs/contract.md section 8 refuses a constant argument that cannot be parsed when
        # compiling, where Kubernetes' library tests see it fail when evaluated: earlier is the
        # contract's.
        if stage == "runtime" and outcome.stage == "compile" and outcome.constant:
            return
        assert outcome.stage == stage, (
            f"Kubernetes fails at the {stage} stage ({expected!r}), got {describe(outcome)}"
        )


def test_known_differences_name_existing_cases() -> None:
    """Every entry of known-differences.yaml matches a case, so none outlives its case."""
    stale = [d for d in DIFFERENCES if not any(d.matches(c) for c in CASES)]
    assert not stale, f"entries of {KNOWN_DIFFERENCES.name} that match no case: {stale}"


def test_every_case_file_has_cases() -> None:
    files = {c.file for c in CASES}
    for path in CASES_DIR.glob("*.yaml"):
        if path != KNOWN_DIFFERENCES:
            assert _stem(path.name) in files, f"{path.name} has no cases"
