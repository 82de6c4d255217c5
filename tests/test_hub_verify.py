"""`policy-hub verify` and `policy-hub yank` as a consumer and a publisher meet them
(docs/contract.md section 9): real hub processes, their real database files tampered with, keys
made by the test; every outcome one line per check, exit 0/1/4, and no token in any output.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policy_hub.attest import jwk_of, load_signing_key
from policy_hub.sqlite_store import SqliteStore
from policy_hub.store import Provenance, sha256_of_body
from tests.hostilehub import HostileHub, Rule
from tests.hubprocess import HubProcess
from tests.pgserver import free_port
from tests.test_hub_api import auth, policy_body

GITHUB_PUBLISHER = {
    "kind": "github-oidc",
    "issuer": "https://token.actions.githubusercontent.com",
    "repository": "acme/security-policies",
    "repository_owner_id": "1342004",
    "workflow_ref": "acme/security-policies/.github/workflows/release.yml@refs/heads/main",
    "sha": "0123456789abcdef0123456789abcdef01234567",
    "ref": "refs/heads/main",
    "environment": "production",
    "run_id": "42",
    "run_attempt": "1",
}


def cli(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_HUB_")}
    if token is not None:
        env["POLICY_HUB_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "policy_hub", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def verify(hub: HubProcess, ref: str, *args: str, token: str | None = None) -> Any:
    return cli("verify", ref, "--hub-url", hub.url, *args, token=token or hub.read_token)


def lines_of(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """{check: "ok ..." | "FAIL ..."} of verify's output."""
    found = {}
    for line in result.stdout.splitlines():
        state, _, rest = line.partition(" ")
        check = rest.strip().partition(":")[0]
        if state in ("ok", "FAIL"):
            found[check] = f"{state} {rest.strip()}"
    return found


def publish(hub: HubProcess, name: str = "deny-privileged", version: str = "1.2.0") -> dict:
    body = policy_body(name=name, version=version)
    answer = requests.post(
        f"{hub.url}/policies", json=body, headers=auth(hub.token, f"{name}@{version}"), timeout=10
    )
    assert answer.status_code == 201, answer.text
    return body


def save_keys(hub: HubProcess, path: Path) -> Path:
    path.write_text(requests.get(f"{hub.url}/keys", timeout=10).text)
    return path


def assert_no_secret(result: subprocess.CompletedProcess[str], *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.stdout and secret not in result.stderr


def test_a_published_version_verifies_against_the_hubs_keys_and_pinned_keys(
    hub: HubProcess, tmp_path: Path
) -> None:
    publish(hub)
    result = verify(hub, "deny-privileged@1.2.0")
    assert result.returncode == 0, result.stdout + result.stderr
    checks = lines_of(result)
    assert list(checks) == ["signature", "subject", "provenance", "digest", "yanked"]
    assert all(line.startswith("ok") for line in checks.values()), checks
    assert "the hub's /keys" in checks["signature"]
    assert result.stdout.splitlines()[-1] == "verified deny-privileged@1.2.0"
    pinned = save_keys(hub, tmp_path / "pinned.jwks")
    with_pin = verify(hub, "deny-privileged@1.2.0", "--keys", str(pinned))
    assert with_pin.returncode == 0, with_pin.stdout
    assert f"pinned keys {pinned}" in lines_of(with_pin)["signature"]
    assert_no_secret(result, hub.read_token, hub.token)
    assert_no_secret(with_pin, hub.read_token, hub.token)


def test_the_local_folder_must_have_the_published_digest(hub: HubProcess, tmp_path: Path) -> None:
    body = publish(hub)
    folder = tmp_path / "policies" / "deny-privileged" / "v1.2.0"
    folder.mkdir(parents=True)
    # Formatting is not content: other spacing and key order, and YAML for the definition.
    (folder / "metadata.json").write_text(json.dumps(body["metadata"], indent=4))
    (folder / "policy-definition.yaml").write_text(
        "spec:\n  n: 1\nkind: PolicyDefinition\napiVersion: policyhub/v1\n"
    )
    same = verify(hub, "deny-privileged@1.2.0", "--local", str(folder))
    assert same.returncode == 0, same.stdout
    assert lines_of(same)["local"].startswith("ok local:")
    (folder / "policy-definition.yaml").write_text("apiVersion: policyhub/v1\nspec: {n: 2}\n")
    changed = verify(hub, "deny-privileged@1.2.0", "--local", str(folder))
    assert changed.returncode == 1
    assert lines_of(changed)["local"].startswith("FAIL local:")
    missing = verify(hub, "deny-privileged@1.2.0", "--local", str(tmp_path / "nowhere"))
    assert missing.returncode == 4 and "not a version folder" in missing.stderr


def test_a_record_changed_in_the_database_fails_the_digest_check(hub: HubProcess) -> None:
    publish(hub)
    hub.query(
        "UPDATE policies SET definition = ? WHERE name = 'deny-privileged'",
        ('{"apiVersion":"policyhub/v1","kind":"PolicyDefinition","spec":{"n":666}}',),
    )
    result = verify(hub, "deny-privileged@1.2.0")
    assert result.returncode == 1, result.stdout
    checks = lines_of(result)
    assert checks["digest"].startswith("FAIL digest: metadata and definition hash to sha256:")
    assert checks["signature"].startswith("ok")  # the statement is of the digest, unchanged
    assert result.stdout.splitlines()[-1] == "NOT VERIFIED deny-privileged@1.2.0: digest failed"


def test_a_tampered_attestation_fails_the_signature(hub: HubProcess) -> None:
    body = publish(hub)
    (stored,) = hub.query("SELECT attestation FROM policies")
    envelope = json.loads(str(stored[0]))
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["publisher"] = {"kind": "token", "label": "someone-else"}
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    hub.query("UPDATE policies SET attestation = ?", (json.dumps(envelope),))
    result = verify(hub, "deny-privileged@1.2.0")
    assert result.returncode == 1
    checks = lines_of(result)
    assert checks["signature"].startswith("FAIL signature: no signature verifies")
    assert checks["digest"].startswith("ok")
    assert body["digest"] in checks["subject"] or checks["subject"].startswith("FAIL")


def test_a_wrong_pinned_key_fails_the_signature(hub: HubProcess, tmp_path: Path) -> None:
    publish(hub)
    other = tmp_path / "other.jwks"
    other.write_text(json.dumps({"keys": [jwk_of(Ed25519PrivateKey.generate().public_key())]}))
    result = verify(hub, "deny-privileged@1.2.0", "--keys", str(other))
    assert result.returncode == 1
    assert "not among the trusted keys" in lines_of(result)["signature"]
    # A hub that swapped its /keys cannot pass a pinned check either: the pin is the truth.
    assert lines_of(result)["signature"].startswith("FAIL")


def test_a_yanked_version_fails_with_its_reason_unless_allowed(hub: HubProcess) -> None:
    publish(hub)
    yanked = cli(
        "yank", "deny-privileged@1.2.0", "--reason", "CVE-2026-0001: allows hostPath",
        "--hub-url", hub.url, token=hub.scoped_token,
    )  # fmt: skip
    assert yanked.returncode == 0, yanked.stderr
    assert yanked.stdout.startswith("yanked deny-privileged@1.2.0 at ")
    assert yanked.stdout.rstrip().endswith(": CVE-2026-0001: allows hostPath")
    assert_no_secret(yanked, hub.scoped_token)
    result = verify(hub, "deny-privileged@1.2.0")
    assert result.returncode == 1
    assert "CVE-2026-0001: allows hostPath" in lines_of(result)["yanked"]
    allowed = verify(hub, "deny-privileged@1.2.0", "--allow-yanked")
    assert allowed.returncode == 0
    assert "allowed by --allow-yanked" in lines_of(allowed)["yanked"]


def test_the_yank_command_refusals(hub: HubProcess) -> None:
    publish(hub, name="require-tags")
    ref = "require-tags@1.2.0"
    outside = cli("yank", ref, "--reason", "x", "--hub-url", hub.url, token=hub.scoped_token)
    assert outside.returncode == 1
    assert "HTTP 403 forbidden-name" in outside.stdout
    missing = cli(
        "yank", "require-tags@9.0.0", "--reason", "x", "--hub-url", hub.url, token=hub.token
    )
    assert missing.returncode == 1 and "HTTP 404" in missing.stdout
    bad = cli("yank", ref, "--reason", "a\nb", "--hub-url", hub.url, token=hub.token)
    assert bad.returncode == 1 and "body.reason" in bad.stdout
    no_token = cli("yank", ref, "--reason", "x", "--hub-url", hub.url)
    assert no_token.returncode == 4 and "POLICY_HUB_TOKEN" in no_token.stderr
    wrong = cli("yank", ref, "--reason", "x", "--hub-url", hub.url, token="wrong-token-value")
    assert wrong.returncode == 4 and "HTTP 401" in wrong.stderr
    for result in (outside, missing, bad, no_token, wrong):
        assert_no_secret(result, hub.scoped_token, hub.token, "wrong-token-value")
        assert "Traceback" not in result.stderr
    assert (
        requests.get(
            f"{hub.url}/policies/{ref.replace('@', '/')}", headers=auth(hub.token), timeout=10
        ).json()["yanked"]
        is None
    )


def test_the_publisher_is_checked_against_what_was_signed(hub: HubProcess) -> None:
    """A record published by a workflow (made here through the hub's own store and key, as the
    OIDC exchange of trust-oidc will), checked by repository and workflow."""
    body = policy_body(name="deny-privileged")
    store = SqliteStore(hub.db_path)
    provenance = Provenance(GITHUB_PUBLISHER, load_signing_key(hub.signing_key))
    assert store.publish("k", sha256_of_body(body), body, provenance).status == 201
    ref = "deny-privileged@1.2.0"
    good = verify(hub, ref, "--repository", "ACME/Security-Policies", "--workflow", "release.yml")
    assert good.returncode == 0, good.stdout
    assert "acme/security-policies" in lines_of(good)["publisher"]
    other_workflow = verify(
        hub, ref, "--repository", "acme/security-policies", "--workflow", "x.yml"
    )
    assert other_workflow.returncode == 1
    other_repo = verify(hub, ref, "--repository", "evil/security-policies")
    assert other_repo.returncode == 1 and "not evil/security-policies" in other_repo.stdout
    publish(hub, name="deny-host-path")
    by_token = verify(hub, "deny-host-path@1.2.0", "--repository", "acme/security-policies")
    assert by_token.returncode == 1
    assert "published with a token, not a workflow of" in lines_of(by_token)["publisher"]


def test_an_old_or_missing_record_fails(hub: HubProcess) -> None:
    publish(hub)
    hub.query("UPDATE policies SET attestation = NULL, publisher = NULL")
    old = verify(hub, "deny-privileged@1.2.0")
    assert old.returncode == 1
    assert "no attestation" in lines_of(old)["signature"]
    assert "before this hub signed" in lines_of(old)["signature"]
    missing = verify(hub, "deny-privileged@9.9.9")
    assert missing.returncode == 1 and "is not in the hub" in missing.stdout


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("Deny@1.0.0",), "is not <name>@<version>"),
        (("deny-x",), "is not <name>@<version>"),
        (("deny-x@1.0",), "is not <name>@<version>"),
        (("deny-x@1.0.0", "--keys", "/nonexistent/keys.jwks"), "--keys /nonexistent/keys.jwks"),
        (("deny-x@1.0.0", "--hub-url"), "expected one argument"),
        (("deny-x@1.0.0", "--frobnicate"), "unrecognized arguments"),
    ],
)
def test_usage_errors_are_exit_4_in_one_line(
    hub: HubProcess, args: tuple[str, ...], said: str
) -> None:
    result = (
        cli("verify", *args, "--hub-url", hub.url)
        if "--hub-url" not in args
        else cli("verify", *args)
    )
    assert result.returncode == 4, result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_keys_file_that_is_not_jwks_is_exit_4(hub: HubProcess, tmp_path: Path) -> None:
    publish(hub)
    for content, said in (("{", "not JSON"), ('{"k": 1}', "not a JWKS document")):
        keys = tmp_path / "keys.jwks"
        keys.write_text(content)
        result = verify(hub, "deny-privileged@1.2.0", "--keys", str(keys))
        assert result.returncode == 4 and said in result.stderr


def test_a_hub_that_cannot_be_read_is_exit_4(hub: HubProcess) -> None:
    publish(hub)
    closed = cli("verify", "deny-privileged@1.2.0", "--hub-url", f"http://127.0.0.1:{free_port()}")
    assert closed.returncode == 4 and "cannot be read" in closed.stderr
    unauthorized = cli("verify", "deny-privileged@1.2.0", "--hub-url", hub.url)
    assert unauthorized.returncode == 4
    assert "HTTP 401" in unauthorized.stderr and "POLICY_HUB_TOKEN" in unauthorized.stderr
    plain = verify(hub, "deny-privileged@1.2.0", token="t0ken-value")
    plain_remote = cli(
        "verify", "deny-privileged@1.2.0", "--hub-url", "http://hub.example:8000", token="t0ken-v"
    )
    assert plain_remote.returncode == 4 and "plain http" in plain_remote.stderr
    for result in (closed, unauthorized, plain, plain_remote):
        assert "Traceback" not in result.stderr
        assert_no_secret(result, "t0ken-value", "t0ken-v", hub.token, hub.read_token)


def test_hostile_hub_text_is_escaped_and_hostile_shapes_fail_without_a_traceback(
    hub: HubProcess,
) -> None:
    """A hub in front of the real one (tests/hostilehub.py) answers a yanked record whose
    reason holds terminal escapes and a workflow command, then nonsense of every shape."""
    publish(hub)
    record = requests.get(
        f"{hub.url}/policies/deny-privileged/1.2.0", headers=auth(hub.token), timeout=10
    ).json()
    record["yanked"] = {"at": "now", "reason": "\x1b[2J\n::error::pwned \u202e" + "x" * 5000}
    rules = [Rule("GET", r"^/policies/deny-privileged/1\.2\.0$", 200, record)]
    with HostileHub(rules, upstream=hub.url) as hostile:
        result = cli("verify", "deny-privileged@1.2.0", "--hub-url", hostile.url, token=hub.token)
    assert result.returncode == 1
    line = lines_of(result)["yanked"]
    assert "\\x1b[2J\\x0a::error::pwned \\u202e" in line and "\x1b" not in result.stdout
    assert len(line) < 400
    assert not any(out.startswith("::") for out in result.stdout.splitlines())
    shapes: list[tuple[str, Any, int]] = [
        (r"/attestation$", [1, 2], 1),
        (r"/attestation$", {"payloadType": "x"}, 1),
        (r"/attestation$", {"payloadType": "application/vnd.in-toto+json", "payload": "@@"}, 1),
        (r"^/keys$", {"keys": "none"}, 4),
        (r"^/keys$", b"<html>", 4),
        (r"^/policies/deny-privileged/1\.2\.0$", {"name": "other"}, 1),
        (r"^/policies/deny-privileged/1\.2\.0$", b"\xff\xfe", 4),
        (r"^/policies/deny-privileged/1\.2\.0$", b"[" * 100_000 + b"]" * 100_000, 4),
        (r"/attestation$", b"[" * 100_000 + b"]" * 100_000, 1),
    ]
    for path, body, code in shapes:
        with HostileHub([Rule("GET", path, 200, body)], upstream=hub.url) as hostile:
            ran = cli("verify", "deny-privileged@1.2.0", "--hub-url", hostile.url, token=hub.token)
        assert ran.returncode == code, (path, body, ran.stdout, ran.stderr)
        assert "Traceback" not in ran.stderr
        assert_no_secret(ran, hub.token)
