"""A version changed after delivery fails the release (docs/contract.md section 3, step 3): exit 1,
naming the version, when it was delivered and the two ways back; never republished; counted as
not delivered, so the baseline stays and every later release says it again until the working
tree agrees with what was published. One test per case of the baseline rule, each through a
real temp git repository and a real hub process; and the pull request's release preview says it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo

EDIT = ("rule-one", "rule-two")  # alpha 1.0.0's rules after an in-place edit


@pytest.fixture
def repo(tmp_path: Path, hub: HubProcess) -> PolicyRepo:
    """alpha 1.0.0 delivered by a first release, whose commit is the baseline."""
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0")
    repo.commit("alpha 1.0.0")
    first = repo.release(hub)
    assert first.returncode == 0, first.output
    assert repo.baseline == repo.head()
    return repo


def delivered_line(repo: PolicyRepo) -> str:
    entry = repo.delivered()["policies"]["alpha"]["1.0.0"]
    return f"was delivered on {entry['delivered_at']} (release {entry['release_sha'][:12]})"


def test_an_edit_in_place_fails_every_release_and_the_baseline_stays(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    baseline = repo.baseline
    repo.add_policy("alpha", "1.0.0", rule_ids=EDIT)
    repo.commit("edit a published version")
    summary = repo.path.parent / "summary.md"
    github = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    for _ in range(2):  # said again by every later release, not once
        result = repo.release(hub, env=github)
        assert result.returncode == 1, result.output
        assert "Release failed" in result.stdout
        line = next(x for x in result.stdout.splitlines() if x.startswith("CHANGED AFTER"))
        assert line.startswith("CHANGED AFTER DELIVERY: alpha@1.0.0 " + delivered_line(repo))
        # The two ways back: restore what was delivered, or move the change to a new version.
        assert f"git checkout {baseline[:12]} -- policies/alpha/v1.0.0" in line  # type: ignore[index]
        assert "new version folder (e.g. policies/alpha/v1.0.1/)" in line
        assert "changed-after-delivery" in result.stdout  # its row in the table
        assert repo.baseline == baseline
    assert hub.created("alpha", "1.0.0") == 1, "never republished"
    # In GitHub Actions: an annotation on the version, and its row in the step summary.
    annotation = "::error file=policies/alpha/v1.0.0/metadata.json,title=alpha@1.0.0::changed"
    assert result.stdout.count(annotation) == 1, result.stdout
    assert (
        "| alpha | 1.0.0 | changed-after-delivery | changed after delivery: " in summary.read_text()
    )


def test_undoing_the_edit_lets_the_next_release_pass_and_the_baseline_advance(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    baseline = repo.baseline
    repo.add_policy("alpha", "1.0.0", rule_ids=EDIT)
    repo.add_policy("beta", "1.0.0")
    repo.commit("edit alpha in place, add beta")
    failed = repo.release(hub)
    assert failed.returncode == 1, failed.output
    assert repo.baseline == baseline
    repo.git("checkout", baseline or "", "--", "policies/alpha/v1.0.0")  # the first way back
    repo.commit("restore alpha 1.0.0 as delivered")
    result = repo.release(hub)
    assert result.returncode == 0, result.output
    assert "CHANGED AFTER DELIVERY" not in result.stdout
    assert repo.baseline == repo.head(), "every version of the change set is delivered"
    assert hub.created("alpha", "1.0.0") == hub.created("beta", "1.0.0") == 1


def test_moving_the_change_to_a_new_version_folder_passes(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    repo.add_policy("alpha", "1.0.0", rule_ids=EDIT)
    repo.commit("edit in place")
    assert repo.release(hub).returncode == 1
    repo.git("mv", "policies/alpha/v1.0.0", "policies/alpha/v1.0.1")
    repo.git("checkout", repo.baseline or "", "--", "policies/alpha/v1.0.0")
    meta = repo.path / "policies/alpha/v1.0.1/metadata.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "version": "1.0.1"}))
    repo.commit("the second way back: the change as alpha 1.0.1")
    result = repo.release(hub)
    assert result.returncode == 0, result.output
    assert repo.baseline == repo.head()
    assert hub.created("alpha", "1.0.1") == 1 and hub.created("alpha", "1.0.0") == 1


def test_other_new_versions_are_delivered_but_the_run_fails_and_the_baseline_stays(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    baseline = repo.baseline
    repo.add_policy("alpha", "1.0.0", rule_ids=EDIT)
    repo.add_policy("beta", "1.0.0")
    repo.add_policy("gamma", "1.0.0")
    repo.commit("edit alpha, add beta and gamma")
    result = repo.release(hub, "-n", "2")
    assert result.returncode == 1, result.output
    assert "Partial success – 1 of 3 failed" in result.stdout
    assert {("beta", "1.0.0"), ("gamma", "1.0.0")} <= repo.delivered_versions()
    assert hub.created("beta", "1.0.0") == hub.created("gamma", "1.0.0") == 1
    assert repo.baseline == baseline
    again = repo.release(hub, "-n", "2")
    assert again.returncode == 1 and "CHANGED AFTER DELIVERY: alpha@1.0.0" in again.stdout
    assert hub.created("beta", "1.0.0") == 1, "the early filter drops what was delivered"


def test_a_formatting_only_edit_keeps_the_digest_and_passes(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    meta = repo.path / "policies/alpha/v1.0.0/metadata.json"
    data = json.loads(meta.read_text())
    meta.write_text(json.dumps(dict(reversed(list(data.items()))), indent=8) + "\n\n")
    definition = repo.path / "policies/alpha/v1.0.0/policy-definition.yaml"
    definition.write_text("# a comment changes no digest\n" + definition.read_text())
    repo.commit("reformat alpha 1.0.0")
    result = repo.release(hub)
    assert result.returncode == 0, result.output
    assert "CHANGED AFTER DELIVERY" not in result.stdout
    assert "1 already delivered" in result.stdout
    assert repo.baseline == repo.head()


def test_the_release_preview_says_the_release_will_fail(repo: PolicyRepo) -> None:
    base = repo.head()
    repo.add_policy("alpha", "1.0.0", rule_ids=EDIT)
    repo.commit("edit in place")
    result = repo.pytest("--changed-since", base)
    assert result.returncode == 1, result.output
    assert "edited after delivery (the release fails on them" in result.stdout
    assert "alpha@1.0.0 " + delivered_line(repo) in result.stdout
