"""`policy-hub serve` as a user meets it: the listening line, start-up errors with exit 2,
tokens from a file or the environment, clean exit on SIGTERM/SIGINT, and the embedded hub.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from policy_hub.embedded import start_embedded_hub
from tests.hubprocess import HubProcess
from tests.test_hub_api import auth, policy_body


@pytest.fixture(autouse=True)
def _hubs_started_as_a_person_starts_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """This module is about the command line: its hubs are exec'd, not forked from the
    suite's zygote (tests/hubzygote.py), signals and exit statuses included."""
    monkeypatch.setattr(HubProcess, "FORKED", False)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A hub start that is expected to fail fast."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_HUB_")}
    return subprocess.run(
        [sys.executable, "-m", "policy_hub", "serve", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**base, **(env or {})},
    )


def one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("policy-hub: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_port_0_prints_exactly_the_listening_line(hub: HubProcess) -> None:
    assert hub.url.startswith("http://127.0.0.1:")
    assert int(hub.url.rsplit(":", 1)[1]) > 0
    assert hub.stdout_path.read_text() == f"policy-hub listening on {hub.url}\n"
    assert requests.get(f"{hub.url}/health", timeout=10).status_code == 200


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_hub_with_exit_0(hub: HubProcess, sig: signal.Signals) -> None:
    assert hub.process is not None
    hub.process.send_signal(sig)
    assert hub.process.wait(10) == 0
    assert "Traceback" not in hub.stderr()


def test_taken_port_is_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--db", str(tmp_path / "hub.sqlite3"), "--port", str(port), "--no-auth")
    one_line_error(result, "cannot listen", str(port))


def test_missing_db_folder_is_exit_2(tmp_path: Path) -> None:
    result = run_cli("--db", str(tmp_path / "missing" / "hub.sqlite3"), "--no-auth")
    one_line_error(result, "does not exist")


def test_db_path_that_is_a_directory_is_exit_2(tmp_path: Path) -> None:
    one_line_error(run_cli("--db", str(tmp_path), "--no-auth"), "directory")


def test_db_file_that_is_not_sqlite_is_exit_2(tmp_path: Path) -> None:
    bogus = tmp_path / "hub.sqlite3"
    bogus.write_bytes(b"this is not a database\n" * 100)
    one_line_error(run_cli("--db", str(bogus), "--no-auth"), "not a database")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file permissions")
def test_unwritable_db_folder_is_exit_2(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        one_line_error(run_cli("--db", str(locked / "hub.sqlite3"), "--no-auth"), "cannot use")
    finally:
        locked.chmod(0o700)


def test_no_tokens_at_all_is_refused(tmp_path: Path) -> None:
    one_line_error(run_cli("--db", str(tmp_path / "hub.sqlite3")), "--no-auth")


def test_bad_token_file_line_is_named_but_not_echoed(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# comment\n\nwrite good-token\nadmin s3cret-value\n")
    line = one_line_error(
        run_cli("--db", str(tmp_path / "hub.sqlite3"), "--token-file", str(tokens)), ":4:"
    )
    assert "s3cret-value" not in line


def test_bad_fault_spec_is_exit_2(tmp_path: Path) -> None:
    result = run_cli(
        "--db", str(tmp_path / "hub.sqlite3"), "--no-auth", "--inject-faults", "explode=1"
    )
    one_line_error(result, "explode")


def test_tokens_from_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "POLICY_HUB_SERVER_TOKENS": "write:env-writer,read:env-reader"}
    cmd = [sys.executable, "-m", "policy_hub", "serve", "--db", str(tmp_path / "h.sqlite3")]
    process = subprocess.Popen(
        [*cmd, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip().rsplit(" ", 1)[1]
        body = policy_body()
        write = requests.post(
            f"{url}/policies", json=body, headers=auth("env-writer", "k"), timeout=10
        )
        assert write.status_code == 201
        read = requests.get(f"{url}/policies/require-tags", headers=auth("env-reader"), timeout=10)
        assert read.status_code == 200
        denied = requests.post(
            f"{url}/policies", json=body, headers=auth("env-reader", "k"), timeout=10
        )
        assert denied.status_code == 403
    finally:
        process.terminate()
        assert process.wait(10) == 0


def test_no_auth_hub_accepts_anyone_and_warns(hub_factory) -> None:
    hub = hub_factory(extra_args=("--no-auth",))
    # The token file still configures tokens, so --no-auth changes nothing here ...
    assert requests.get(f"{hub.url}/policies/a", timeout=10).status_code == 401
    hub.stop()
    hub.token_file.write_text("# no tokens\n")
    hub.start()
    # ... and without any token it opens the hub, loudly.
    assert requests.get(f"{hub.url}/policies/a", timeout=10).status_code == 404
    assert "--no-auth" in hub.stderr()


def test_embedded_hub_serves_and_stops(tmp_path: Path) -> None:
    embedded = start_embedded_hub(tmp_path / "local.sqlite3", "local-token")
    try:
        assert embedded.url.startswith("http://127.0.0.1:")
        created = requests.post(
            f"{embedded.url}/policies",
            json=policy_body(),
            headers=auth("local-token", "k"),
            timeout=10,
        )
        assert created.status_code == 201
        assert requests.get(f"{embedded.url}/policies/a", timeout=10).status_code == 401
    finally:
        embedded.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{embedded.url}/health", timeout=2)
    # A second embedded hub on the same file sees the record.
    with start_embedded_hub(tmp_path / "local.sqlite3", "other") as again:
        response = requests.get(
            f"{again.url}/policies/require-tags/1.2.0", headers=auth("other"), timeout=10
        )
        assert response.status_code == 200


# -- an environment without what the hub runs on -------------------------------------------------

# A Python in which `fastapi` cannot be imported (None in sys.modules halts its import), as in
# an environment where an install was cut short or a package was removed by hand.
WITHOUT_FASTAPI = "import sys; sys.modules['fastapi'] = None; "


def run_without_fastapi(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_HUB_")}
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_FASTAPI + code, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=base,
    )


def test_a_missing_module_is_one_line_and_exit_4_and_help_still_works(tmp_path: Path) -> None:
    code = "from policy_hub.cli import main; sys.exit(main(sys.argv[1:]))"
    result = run_without_fastapi(code, "serve", "--db", "hub.sqlite3", "--no-auth", cwd=tmp_path)
    assert result.returncode == 4, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        "policy-hub: error: the reference policy hub cannot start: module 'fastapi' is "
        "missing; install: pip install 'policy-release-harness[hub]'"
    ]
    assert result.stdout == ""
    assert not (tmp_path / "hub.sqlite3").exists(), "nothing made in a broken environment"
    helped = run_without_fastapi(code, "serve", "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: policy-hub serve")


def test_the_embedded_hub_raises_hub_unavailable_when_a_module_is_missing(tmp_path: Path) -> None:
    code = (
        "from pathlib import Path; from policy_hub.embedded import HubUnavailable, "
        "start_embedded_hub\n"
        "try:\n    start_embedded_hub(Path(sys.argv[1]), 'local-token')\n"
        "except HubUnavailable as exc:\n    print(type(exc).__mro__[1].__name__, exc)\n"
    )
    result = run_without_fastapi(code, str(tmp_path / "local.sqlite3"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "RuntimeError the reference policy hub cannot start: module 'fastapi' is missing; "
        "install: pip install 'policy-release-harness[hub]'"
    ]
    assert not (tmp_path / "local.sqlite3").exists(), "nothing made before the imports"
