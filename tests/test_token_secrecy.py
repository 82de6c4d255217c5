"""The token as untrusted input (docs/contract.md section 3): surrounding whitespace is stripped,
any other control or non-ASCII character is exit 4 before any request, and no text that reaches a
person, a report, a log or a file ever holds the token: not a well-formed one, not a malformed one,
not one a hostile hub echoes back. Each run goes through every output path pytest has.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from publisher.hub.token import resolve_token
from publisher.refused import Refused
from tests.hostilehub import ECHO_AUTH, HostileHub, Rule
from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo, RunResult

pytestmark = pytest.mark.fast

CANARY = "canary-" + "K7q9" * 8

EVERY_OUTPUT = (
    "-n",
    "2",
    "-vv",
    "-l",
    "--tb=long",
    "-rA",
    "--debug=debug.log",
    "--log-level=DEBUG",
    "--log-file=log.txt",
    "-o",
    "junit_logging=all",
    "--junitxml=report.xml",
    "--json-report",
    "--json-report-file=report.json",
)


def run_everywhere(repo: PolicyRepo, tmp_path: Path, url: str, token: str, *args: str) -> RunResult:
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    env = {
        "POLICY_HUB_URL": url,
        "POLICY_HUB_TOKEN": token,
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "TMPDIR": str(temp),  # the run's own temp files are scanned too
    }
    return repo.pytest("--release", *EVERY_OUTPUT, *args, env=env)


def assert_nowhere(secret: str, tmp_path: Path, result: RunResult, skip: set[Path]) -> int:
    """The secret (or its first 16 characters) is in no output and no file under tmp_path."""
    places = {"stdout": result.stdout, "stderr": result.stderr}
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file() and path not in skip:
            places[str(path.relative_to(tmp_path))] = path.read_bytes().decode("utf-8", "replace")
    repo = tmp_path / "repo"
    history = subprocess.run(
        ["git", "-C", str(repo), "log", "-p", "--all"], capture_output=True, text=True
    )
    places["git log -p"] = history.stdout
    for where, text in places.items():
        assert secret.strip() not in text, f"the token leaked into {where}"
        assert secret.strip()[:16] not in text, f"a prefix of the token leaked into {where}"
    return len(places)


@pytest.fixture
def repo(repo: PolicyRepo) -> PolicyRepo:
    return repo.with_committed("alpha", "beta")


@pytest.mark.process
def test_a_hub_that_echoes_the_token_gets_it_printed_nowhere(
    repo: PolicyRepo, tmp_path: Path
) -> None:
    rules = [Rule("GET", "", 500, ECHO_AUTH), Rule("POST", "", 500, ECHO_AUTH)]
    with HostileHub(rules) as hostile:
        result = run_everywhere(repo, tmp_path, hostile.url, CANARY, "-o", "policy_hub_attempts=2")
    assert result.returncode == 1, result.output
    assert "rejected request with Bearer ***" in result.stdout  # the echo arrived, redacted
    scanned = assert_nowhere(CANARY, tmp_path, result, set())
    assert {"repo/report.xml", "repo/report.json", "repo/debug.log", "summary.md"} <= {
        str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
    }
    assert scanned > 8


@pytest.mark.process
@pytest.mark.parametrize(
    "token",
    [CANARY + "\r\nX-Injected: 1", CANARY[:10] + "\t" + CANARY[10:], CANARY + "é"],
    ids=["crlf", "tab", "non-ascii"],
)
def test_a_malformed_token_is_a_usage_error_before_any_request(
    repo: PolicyRepo, tmp_path: Path, token: str
) -> None:
    with HostileHub([]) as hostile:
        result = run_everywhere(repo, tmp_path, hostile.url, token)
    assert result.returncode == 4, result.output
    assert "POLICY_HUB_TOKEN holds" in result.output
    assert "set the secret to the token alone" in result.output
    assert hostile.requests == [], "nothing may be sent with a malformed token"
    assert_nowhere(CANARY, tmp_path, result, set())


@pytest.mark.process
def test_a_token_pasted_with_a_newline_works_and_stays_secret(
    repo: PolicyRepo, tmp_path: Path
) -> None:
    hub = HubProcess(tmp_path / "hub", start=False)
    hub.token = CANARY
    hub.token_file.write_text(f"write {CANARY}\n")
    hub.start()
    try:
        result = run_everywhere(repo, tmp_path, hub.url, f"  {CANARY}\n")
    finally:
        hub.stop()
    assert result.returncode == 0, result.output
    assert "Release successful – all 2 policies delivered" in result.stdout
    assert hub.created("alpha", "1.0.0") == 1
    assert_nowhere(CANARY, tmp_path, result, {hub.token_file})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, None), ("", None), (" \n", None), ("abc\n", "abc"), ("\tabc \r\n", "abc")],
)
def test_resolve_token_strips_surrounding_whitespace(raw: str | None, expected: str | None) -> None:
    env = {} if raw is None else {"POLICY_HUB_TOKEN": raw}
    assert resolve_token(env) == expected


@pytest.mark.parametrize("raw", ["\x1fabc\x1c", "\x85abc", "abc\u2028"])
def test_only_whitespace_is_stripped_other_controls_at_the_ends_are_refused(raw: str) -> None:
    # str.strip() would drop these (Python counts them as whitespace) and accept the token.
    with pytest.raises(Refused, match="POLICY_HUB_TOKEN holds"):
        resolve_token({"POLICY_HUB_TOKEN": raw})


@pytest.mark.parametrize("raw", ["a\x00b", "a\nb", "a\x7fb", "a\u2028b", "a\u00e9b"])
def test_resolve_token_refuses_inner_controls_without_showing_them(raw: str) -> None:
    with pytest.raises(Refused) as info:
        resolve_token({"POLICY_HUB_TOKEN": raw})
    assert "a" + raw[1:] not in str(info.value) and "position 2" in str(info.value)


@pytest.mark.process
def test_the_hubs_signing_key_and_the_tokens_reach_no_output(
    repo: PolicyRepo, tmp_path: Path
) -> None:
    """A release, then `policy-hub verify` and `yank`, against a hub that signs: neither the
    write token nor any form of the private key is in any output, log, report, database or
    file (but the key file itself and the token file)."""
    hub = HubProcess(tmp_path / "hub", start=False)
    hub.token = CANARY
    hub.token_file.write_text(f"write {CANARY}\nread {hub.read_token}\n")
    hub.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_HUB_")}
    try:
        result = run_everywhere(repo, tmp_path, hub.url, CANARY)
        for command in (
            ["verify", "alpha@1.0.0", "--hub-url", hub.url],
            ["yank", "alpha@1.0.0", "--reason", "superseded", "--hub-url", hub.url],
            ["verify", "alpha@1.0.0", "--hub-url", hub.url],
            ["yank", "beta@1.0.0", "--reason", "bad\nline", "--hub-url", hub.url],
            ["verify", "alpha@1.0.0", "--hub-url", "http://127.0.0.1:9"],
        ):
            ran = subprocess.run(
                [sys.executable, "-m", "policy_hub", *command],
                capture_output=True,
                text=True,
                timeout=120,
                env={**env, "POLICY_HUB_TOKEN": CANARY},
            )
            assert "Traceback" not in ran.stderr
            out = tmp_path / f"cli-{command[0]}-{len(list(tmp_path.glob('cli-*')))}.txt"
            out.write_text(ran.stdout + ran.stderr)
    finally:
        hub.stop()
    assert result.returncode == 0, result.output
    assert "verified alpha@1.0.0" in (tmp_path / "cli-verify-0.txt").read_text()
    assert "yanked alpha@1.0.0" in (tmp_path / "cli-yank-1.txt").read_text()
    key = serialization.load_pem_private_key(hub.signing_key.read_bytes(), password=None)
    raw = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    pem_body = "".join(hub.signing_key.read_text().splitlines()[1:-1])
    forms = {
        pem_body,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
    }
    skip = {hub.signing_key, hub.token_file}
    for secret in (CANARY, *forms):
        assert_nowhere(secret, tmp_path, result, skip)
