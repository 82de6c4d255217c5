"""The embedded local hub (`pytest --release` with no hub configured, or `--hub-url local`): the
README's "run the main job" command, in a temp repository and in a fresh clone of this project.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.hubprocess import HubProcess
from tests.policyrepo import GIT_ENV, PolicyRepo

PROJECT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_release_without_a_hub_url_uses_the_embedded_hub(tmp_path: Path, xdist: list[str]) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0")
    repo.add_policy("beta", "1.0.0")
    repo.commit()
    tracked_state = (repo.path / ".state/delivered.json").read_text()

    first = repo.pytest("--release", *xdist)
    assert first.returncode == 0, first.output
    assert first.stdout.splitlines()[0].startswith(
        "policy-hub: no hub URL configured: releasing to the embedded local hub"
    )
    assert "Release successful – all 2 policies delivered" in first.stdout
    assert repo.delivered_versions(".policyhub-local/state") == {
        ("alpha", "1.0.0"),
        ("beta", "1.0.0"),
    }
    assert (repo.path / ".state/delivered.json").read_text() == tracked_state
    assert not (repo.path / ".state/baseline.sha").exists()
    assert (repo.path / ".policyhub-local/hub.sqlite3").is_file()

    again = repo.pytest("--release", "--hub-url", "local", *xdist)
    assert again.returncode == 0, again.output
    assert "--hub-url local: releasing to the embedded local hub" in again.stdout
    assert "nothing to deliver" in again.stdout
    assert_records_verify(repo, tmp_path / "served", ["alpha@1.0.0", "beta@1.0.0"])


def assert_records_verify(repo: PolicyRepo, workdir: Path, refs: list[str]) -> None:
    """The embedded hub's records carry a publisher and an attestation that `policy-hub verify`
    accepts, checked against the version folders of the repository, with the key the embedded
    hub keeps in its folder (mode 0600) pinned."""
    local = repo.path / ".policyhub-local"
    key = local / "signing-key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    with HubProcess(workdir, db=str(local / "hub.sqlite3"), signing_key=key) as hub:
        (jwk,) = requests.get(f"{hub.url}/keys", timeout=10).json()["keys"]
        pinned = workdir / "pinned.jwks"
        pinned.write_text(json.dumps({"keys": [jwk]}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_HUB_")}
        for ref in refs:
            name, version = ref.split("@")
            record = requests.get(
                f"{hub.url}/policies/{name}/{version}",
                headers={"Authorization": f"Bearer {hub.read_token}"},
                timeout=10,
            ).json()
            assert record["publisher"] == {"kind": "token", "label": "local"}
            verified = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "policy_hub",
                    "verify",
                    ref,
                    "--hub-url",
                    hub.url,
                    "--keys",
                    str(pinned),
                    "--local",
                    str(repo.path / f"policies/{name}/v{version}"),
                ],
                capture_output=True,
                text=True,
                timeout=120,
                env={**env, "POLICY_HUB_TOKEN": hub.read_token},
            )
            assert verified.returncode == 0, verified.stdout + verified.stderr
            assert verified.stdout.splitlines()[-1] == f"verified {ref}"


def test_the_readme_main_job_works_in_a_fresh_clone_of_this_project(tmp_path: Path) -> None:
    if not (PROJECT / ".git").exists():
        pytest.skip("not running from a git checkout of the project")
    clone = tmp_path / "clone"
    repo = PolicyRepo.clone_of(PROJECT, clone)
    policies = {p.parent for p in clone.glob("policies/*/v*/metadata.json")}
    first = repo.pytest("--release")
    assert first.returncode == 0, first.output
    assert f"Release successful – all {len(policies)} policies delivered" in first.stdout
    second = repo.pytest("--release")
    assert second.returncode == 0, second.output
    assert "nothing to deliver" in second.stdout
    assert (
        subprocess.run(
            ["git", "-C", str(clone), "status", "--porcelain"], capture_output=True, text=True
        ).stdout
        == ""
    ), "the main job must leave the tracked files alone"


def test_the_main_job_without_fastapi_is_one_line_and_exit_4(tmp_path: Path) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0")
    repo.commit()
    code = (
        "import sys; sys.modules['fastapi'] = None; import pytest; "
        "sys.exit(pytest.main(['--release', '-p', 'no:cacheprovider']))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICY_HUB", "GITHUB_"))}
    env.pop("CI", None)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo.path,
        env={**env, **GIT_ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 4, result.stdout + result.stderr
    assert "INTERNALERROR" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "pip install 'policy-release-harness[hub]'" in result.stdout + result.stderr
