"""The forked hubs of tests/hubzygote.py are what `python -m policy_hub serve` makes: a process
in its own session with the environment, files and exit statuses the tests rely on."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import requests

from tests.hubprocess import HubProcess, HubStartError


def test_a_forked_hub_is_its_own_session_without_the_tests_hub_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # HubProcess drops the POLICY_HUB_ variables of the test's environment: this token is not
    # one the hub accepts, as with an exec'd hub.
    monkeypatch.setenv("POLICY_HUB_SERVER_TOKENS", "write dropped-token-0123456789")
    with HubProcess(tmp_path / "hub") as hub:
        assert hub.forked and hub.process is not None
        pid = hub.process.pid
        assert os.getpgid(pid) == pid and os.getsid(pid) == pid
        assert requests.get(f"{hub.url}/health", timeout=10).json()["status"] == "ok"
        for token, status in ((hub.read_token, 200), ("dropped-token-0123456789", 401)):
            headers = {"Authorization": f"Bearer {token}"}
            answer = requests.get(f"{hub.url}/policies", headers=headers, timeout=10)
            assert answer.status_code == status, answer.text
        assert hub.stop() == 0  # SIGTERM: uvicorn's clean stop, as an exec'd hub's
    hub.start()
    hub.kill()
    assert hub.process.poll() == -signal.SIGKILL


def test_a_forked_hub_that_cannot_start_says_why(tmp_path: Path) -> None:
    refused = r"(?s)exit 2\).*policy-hub serve: error: argument --port"
    with pytest.raises(HubStartError, match=refused):
        HubProcess(tmp_path / "hub", extra_args=("--port", "not-a-port"))
