"""Running the case tables of Kubernetes' CEL library tests (k8s.io/apiserver
`pkg/cel/library/*_test.go`) against the environment: an expression and what Kubernetes expects,
a value, a runtime error with its message, or a compile error.

A Go case whose expression errors at runtime on a string literal (`ip("1.2.3.4.5")`) is refused
here when compiling, with the same message (the contract refuses a constant that cannot be
parsed); `Fails` checks both: the literal refused when compiling, and the same text given as a
variable failing at runtime with Kubernetes' message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from policy_checks.cel.environment import ExpressionOutcome, run_expression

_STATUSES = ("INVALID_ARGUMENT", "NOT_FOUND", "OUT_OF_RANGE", "INTERNAL", "UNKNOWN")


def plain(message: str) -> str:
    """The engine's status words off a message (as the evaluator shows it)."""
    text = message.strip()
    for status in _STATUSES:
        text = text.removeprefix(f"{status}: ").removesuffix(f" [{status}]")
    return text


def run(expression: str, **variables: Any) -> ExpressionOutcome:
    return run_expression(expression, variables)


def value(expression: str, **variables: Any) -> Any:
    """The expression's value, which it must have."""
    outcome = run_expression(expression, variables)
    assert outcome.stage == "value", outcome
    return outcome.value


def runtime_error(expression: str, **variables: Any) -> str:
    """The message of the expression's runtime error, which it must fail with."""
    outcome = run_expression(expression, variables)
    assert outcome.stage == "runtime", outcome
    return outcome.message


def compile_error(expression: str, **variables: Any) -> str:
    """The message of the expression's compile error, which it must fail with."""
    outcome = run_expression(expression, variables)
    assert outcome.stage == "compile", outcome
    return outcome.message


@dataclass(frozen=True)
class Equals:
    """The value equals this CEL expression's (Go's `res.Equal(expectResult)`)."""

    expression: str


@dataclass(frozen=True)
class Fails:
    """A runtime error with exactly this message, raised by parsing the literal `literal`."""

    message: str
    literal: str


@dataclass(frozen=True)
class Refused:
    """A compile error whose message contains this text."""

    text: str


def check(expression: str, expected: Any) -> None:
    if isinstance(expected, Equals):
        outcome = run(f"({expression}) == ({expected.expression})")
        assert (outcome.stage, outcome.value) == ("value", True), outcome
    elif isinstance(expected, Fails):
        refused = run(expression)
        assert refused.stage == "compile", refused
        assert refused.message == expected.message
        quoted = [f'"{expected.literal}"', f"'{expected.literal}'"]
        source = next(q for q in quoted if q in expression)
        failed = run(expression.replace(source, "s"), s=expected.literal)
        assert failed.stage == "runtime", failed
        assert plain(failed.message) == expected.message
    elif isinstance(expected, Refused):
        outcome = run(expression)
        assert outcome.stage == "compile", outcome
        assert expected.text in outcome.message
    else:
        outcome = run(expression)
        assert outcome.stage == "value", outcome
        assert outcome.value == expected and type(outcome.value) is type(expected)
