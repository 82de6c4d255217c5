"""The fast tier's guard (tests/conftest.py) holds: a test of the tier that starts a process or
listens on a socket fails, saying how to leave the tier; the evaluating child is allowed."""

from __future__ import annotations

import socket
import subprocess

import pytest

from policy_checks.evaluator import Evaluator

pytestmark = pytest.mark.fast


def test_a_process_started_in_the_fast_tier_fails_its_test() -> None:
    with pytest.raises(AssertionError, match=r"in the fast tier but started a process.*process"):
        subprocess.run(["true"], check=False)


def test_a_server_in_the_fast_tier_fails_its_test() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        with pytest.raises(AssertionError, match="in the fast tier but listens on a socket"):
            sock.listen()


def test_the_evaluating_child_is_allowed() -> None:
    evaluator = Evaluator(timeout=5.0)
    try:
        evaluator.start()
        assert evaluator._child is not None
    finally:
        evaluator.close()


@pytest.mark.process
def test_a_test_marked_process_may_start_one() -> None:
    assert subprocess.run(["true"], check=False).returncode == 0
