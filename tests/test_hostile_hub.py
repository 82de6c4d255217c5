"""A hub's answers are untrusted input (docs/contract.md sections 3 and 4): a body that is not a
record of the version asked for never makes it count as delivered, a poisoned digest never reaches
the state or starts a workflow command, and other content in the hub is recorded beside the local
digest. Black-box: real git repositories, the harness as a subprocess, a hostile hub on loopback
that forwards what it does not script to a real `policy-hub serve` (whose SQLite file is the truth).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policy_checks import policy_digest
from tests.hostilehub import ECHO_AUTH, HostileHub, Rule
from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo, definition, metadata, seed_hub

DIGEST = "sha256:" + "0" * 64
INJECTION = "sha256:" + "0" * 64 + "\n::error::pwned"

NOT_A_RECORD: dict[str, Any] = {
    "html": b"<html><body>Please log in to the proxy</body></html>",
    "garbage": b"\x00\xff not json at all",
    "list": [{"name": "alpha", "version": "1.0.0", "digest": DIGEST}],
    "no-digest": {"name": "alpha", "version": "1.0.0"},
    "digest-not-string": {"name": "alpha", "version": "1.0.0", "digest": ["sha256:0"]},
    "digest-malformed": {"name": "alpha", "version": "1.0.0", "digest": "md5:abc"},
    "digest-injection": {"name": "alpha", "version": "1.0.0", "digest": INJECTION},
    "other-version": {"name": "alpha", "version": "9.9.9", "digest": DIGEST},
    # Deeper than Python's recursion in json.loads (3000) or in code that walks a value (900).
    "nested-3000": b"[" * 3000 + b"]" * 3000,
    "nested-900": b"[" * 900 + b"]" * 900,
}


@pytest.fixture
def repo(repo: PolicyRepo) -> PolicyRepo:
    return repo.with_committed("alpha")


def release(repo: PolicyRepo, url: str, token: str, *args: str, **env: str) -> Any:
    return repo.pytest(
        "--release", *args, env={"POLICY_HUB_URL": url, "POLICY_HUB_TOKEN": token, **env}
    )


def no_workflow_command_from_the_hub(output: str) -> None:
    for line in output.splitlines():
        assert not line.lstrip().startswith("::error::pwned"), line


@pytest.mark.parametrize("body", NOT_A_RECORD.values(), ids=NOT_A_RECORD.keys())
def test_a_200_that_is_not_a_record_goes_on_to_publish(
    repo: PolicyRepo, hub: HubProcess, body: Any
) -> None:
    rules = [Rule("GET", "^/policies/alpha/", 200, body)]
    with HostileHub(rules, upstream=hub.url) as hostile:
        result = release(repo, hostile.url, hub.token, "-v", GITHUB_ACTIONS="true")
    assert result.returncode == 0, result.output
    assert "Release successful – the 1 policy delivered" in result.stdout
    assert hub.created("alpha", "1.0.0") == 1, "the version must reach the hub"
    entry = repo.delivered()["policies"]["alpha"]["1.0.0"]
    assert entry["outcome"] == "published"
    assert entry["digest"] == policy_digest(metadata("alpha", "1.0.0"), definition())
    assert "not a record of this version: taken as not found" in result.stdout
    no_workflow_command_from_the_hub(result.output)
    assert repo.baseline == repo.head()


@pytest.mark.parametrize("body", NOT_A_RECORD.values(), ids=NOT_A_RECORD.keys())
def test_a_201_or_409_that_is_not_a_record_fails_the_version_and_records_nothing(
    repo: PolicyRepo, body: Any
) -> None:
    conflict = {**body, "error": "exists"} if isinstance(body, dict) else body
    for status, answer in ((201, body), (409, conflict)):
        rules = [Rule("GET", "^/policies/", 404, {"detail": "not found"})]
        rules.append(Rule("POST", "^/policies$", status, answer))
        with HostileHub(rules) as hostile:
            result = release(repo, hostile.url, "t0ken", GITHUB_ACTIONS="true")
        assert result.returncode == 1, result.output
        assert "Release failed – the 1 policy was not delivered" in result.stdout
        assert "INTERNALERROR" not in result.output and "Traceback" not in result.output
        assert f"HTTP {status}" in result.stdout
        assert repo.delivered()["policies"] == {}, "nothing the hub did not prove is recorded"
        assert repo.baseline is None
        no_workflow_command_from_the_hub(result.output)
    # The state is still readable: the next release is not a configuration error.
    again = release(repo, "http://127.0.0.1:9", "t0ken", "--collect-only")
    assert again.returncode == 0, again.output


def test_other_content_in_the_hub_is_recorded_beside_the_local_digest(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    hub_digest = seed_hub(hub, "alpha", "1.0.0", meta=metadata("alpha", "1.0.0", title="other"))
    first = repo.release(hub)
    assert first.returncode == 0, first.output
    assert "HUB HOLDS DIFFERENT CONTENT: alpha@1.0.0" in first.stdout
    entry = repo.delivered()["policies"]["alpha"]["1.0.0"]
    assert entry["digest"] == policy_digest(metadata("alpha", "1.0.0"), definition())
    assert entry["hub_digest"] == hub_digest
    # A later release of an unrelated change: no false "changed after delivery".
    repo.add_policy("beta", "1.0.0")
    repo.commit()
    second = repo.release(hub)
    assert second.returncode == 0, second.output
    assert "CHANGED AFTER DELIVERY" not in second.stdout
    assert repo.delivered()["policies"]["alpha"]["1.0.0"] == entry


def test_unknown_fields_of_the_state_file_are_kept(repo: PolicyRepo, hub: HubProcess) -> None:
    state = repo.path / ".state/delivered.json"
    seeded = {
        "version": 1,
        "comment": "kept by every release",
        "policies": {
            "old": {
                "1.0.0": {
                    "delivered_at": "2026-01-01T00:00:00Z",
                    "release_sha": "f" * 40,
                    "digest": DIGEST,
                    "outcome": "published",
                    "ticket": "SEC-42",
                }
            }
        },
    }
    state.write_text(json.dumps(seeded, indent=2, sort_keys=True) + "\n")
    state.chmod(0o664)
    repo.commit("state with fields of another tool")
    result = repo.release(hub)
    assert result.returncode == 0, result.output
    after = repo.delivered()
    assert after["comment"] == "kept by every release"
    assert after["policies"]["old"]["1.0.0"] == seeded["policies"]["old"]["1.0.0"]  # type: ignore[index]
    assert "alpha" in after["policies"]
    assert state.stat().st_mode & 0o777 == 0o664, "a rewrite keeps the file's permissions"
    assert (repo.path / ".state/baseline.sha").stat().st_mode & 0o777 == 0o644


def test_a_token_the_hub_echoes_is_redacted_everywhere(repo: PolicyRepo, tmp_path: Path) -> None:
    token = "canary-" + "Q" * 24
    rules = [Rule("GET", "", 500, ECHO_AUTH), Rule("POST", "", 500, ECHO_AUTH)]
    with HostileHub(rules) as hostile:
        result = release(repo, hostile.url, token, "-v", "-o", "policy_hub_attempts=2")
    assert result.returncode == 1, result.output
    assert "rejected request with Bearer ***" in result.stdout
    assert token not in result.output
