"""policy_checks' public names: every one resolves, and the package imports them on first use,
so the evaluating child (which needs only cel/ and evaluator.py) starts without the rest."""

from __future__ import annotations

import subprocess
import sys

import pytest

import policy_checks

pytestmark = pytest.mark.fast


def test_every_public_name_resolves_from_its_home() -> None:
    assert sorted(policy_checks._HOME) == sorted(policy_checks.__all__)
    for name in policy_checks.__all__:
        value = getattr(policy_checks, name)
        assert getattr(sys.modules[policy_checks._HOME[name]], name) is value


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        policy_checks.nothing_here  # noqa: B018


@pytest.mark.process
def test_the_evaluating_child_imports_no_checker() -> None:
    code = (
        "import sys, policy_checks.evaluator; "
        "print(sorted(m for m in ('policy_checks.checker', 'policy_checks.worktree') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
