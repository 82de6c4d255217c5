"""Author mode guards immutability offline (docs/contract.md section 2): a version that
delivered.json records but whose content changed is a failing item in plain `pytest`, `-k` and
`--changed-since`, saying when it was delivered and what to do instead, without any network.
Formatting never trips it; a version the hub holds with other content is judged by either digest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from publisher.release.guard import next_version
from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo, definition, metadata

NO_NETWORK = {"POLICY_HUB_URL": "http://127.0.0.1:9", "POLICY_HUB_TOKEN": "never-used"}


@pytest.fixture
def delivered(tmp_path: Path, hub: HubProcess) -> PolicyRepo:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0")
    repo.add_policy("beta", "1.0.0")
    repo.commit()
    release = repo.release(hub)
    assert release.returncode == 0, release.output
    repo.commit("record the release")
    return repo


def test_an_edit_in_place_fails_in_review_with_when_and_what_instead(
    delivered: PolicyRepo,
) -> None:
    repo = delivered
    entry = repo.delivered()["policies"]["alpha"]["1.0.0"]
    repo.add_policy("alpha", "1.0.0", rule_ids=("edited-in-place",))
    repo.commit("edit a published version")
    for args in ([], ["-k", "alpha"], ["--changed-since", "HEAD~1"], ["-n", "2"]):
        result = repo.pytest(*args, env=NO_NETWORK)
        assert result.returncode == 1, result.output
        assert (
            f"alpha@1.0.0 was delivered on {entry['delivered_at']} "
            f"(release {entry['release_sha'][:12]}) and its content has changed since"
        ) in result.stdout
        assert "policies/alpha/v1.0.1/" in result.stdout
        assert "git checkout -- policies/alpha/v1.0.0" in result.stdout
    plain = repo.pytest("-q", env=NO_NETWORK)
    assert "1 failed, 1 passed" in plain.stdout


def test_formatting_only_edits_never_trip_it(delivered: PolicyRepo) -> None:
    repo = delivered
    folder = repo.path / "policies/alpha/v1.0.0"
    meta = metadata("alpha", "1.0.0")
    (folder / "metadata.json").write_text(json.dumps(dict(reversed(meta.items())), indent=8))
    text = "# a comment\n" + yaml.safe_dump(definition(), indent=4, sort_keys=True)
    (folder / "policy-definition.yaml").write_text(text)
    repo.commit("reformat")
    result = repo.pytest("-q", env=NO_NETWORK)
    assert result.returncode == 0, result.output


def test_a_version_the_hub_holds_with_other_content_matches_either_digest(
    delivered: PolicyRepo,
) -> None:
    repo = delivered
    state = repo.path / ".state/delivered.json"
    data = json.loads(state.read_text())
    entry = data["policies"]["alpha"]["1.0.0"]
    # Delivered from other files than today's, which match what the hub holds.
    entry["digest"], entry["hub_digest"] = "sha256:" + "e" * 64, entry["digest"]
    state.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    (repo.path / ".state/baseline.sha").unlink()  # the release re-checks every version
    repo.commit("a version whose hub content differs")
    assert repo.pytest("-q", env=NO_NETWORK).returncode == 0
    # A release judges it the same way (one predicate, DeliveryRecord.holds).
    release = repo.pytest("--release", "--dry-run", "--hub-url", "http://127.0.0.1:9")
    assert release.returncode == 0, release.output
    assert "(dropped before the run)" in release.stdout, release.output
    assert "CHANGED AFTER DELIVERY" not in release.stdout


def test_a_corrupt_state_is_exit_4_in_author_mode_too(delivered: PolicyRepo) -> None:
    (delivered.path / ".state/delivered.json").write_text("{")
    result = delivered.pytest("-q")
    assert result.returncode == 4, result.output
    assert "git checkout -- .state/delivered.json" in result.output


@pytest.mark.parametrize(
    ("version", "successor"),
    [
        ("1.2.3", "1.2.4"),
        ("2.0.0-rc.1", "2.0.0-rc.2"),
        ("1.0.0-beta", "1.0.0"),
        ("0.1.0+b", "0.1.1"),
    ],
)
def test_the_suggested_version_is_the_next_patch(version: str, successor: str) -> None:
    assert next_version(version) == successor
