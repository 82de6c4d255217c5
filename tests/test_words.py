"""The phrases of policy_checks/words/ that several checks share, as tables: a value read in a
message (a schema's type hint, a parameter's default, a test case's value, `policyhub-eval`'s
--param), a condition's finding, an evaluation error.

The phrases of whole findings are pinned through the checks, in test_checks_examples.py."""

from __future__ import annotations

from typing import Any

import pytest

from policy_checks.words import condition_message, describe, evaluation_error_words

pytestmark = pytest.mark.fast


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (True, "the boolean true"),
        (False, "the boolean false"),
        (None, "null"),
        (3, "the number 3"),
        (1.1, "the number 1.1"),  # `1.10` in YAML: what a version's type hint says
        (1e20, "the number 1e+20"),
        ("x", 'the string "x"'),
        ("a" * 50, 'the string "' + "a" * 37 + '..."'),
        ([1], "a list"),
        ({"a": 1}, "an object"),
    ],
)
def test_a_value_reads_the_same_in_every_message(value: Any, words: str) -> None:
    assert describe(value) == words


def test_a_conditions_finding_names_the_rule_the_column_and_where_the_engine_points() -> None:
    message = condition_message("r", "unknown name x", 17, "resource.a && x", 1, 15)
    assert message == "rule r: unknown name x (column 17): `resource.a && ⟨here⟩x`"
    assert condition_message("r", "nested too deeply", None, "a", -1, -1) == (
        "rule r: nested too deeply"
    )


@pytest.mark.parametrize(
    ("engine", "words"),
    [
        ("INVALID_ARGUMENT: Key not found in map : 'tier'", "no such key: 'tier'"),
        ("no such overload [INVALID_ARGUMENT]", "no such overload"),
        ("Iteration budget exceeded", "evaluation exceeded the budget of 10 000"),
    ],
)
def test_an_evaluation_error_reads_in_the_authors_words(engine: str, words: str) -> None:
    assert evaluation_error_words(engine).startswith(words)
