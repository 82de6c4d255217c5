"""`pytest --release` end to end: real git repositories in temp folders, the real reference hub as a
process on loopback with its real SQLite file, the harness as a real pytest subprocess.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from policy_checks import policy_digest
from tests.hubprocess import HubProcess
from tests.policyrepo import (
    PYPROJECT,
    PolicyRepo,
    definition,
    junit_properties,
    metadata,
    seed_hub,
)


def test_release_cycle_valid_invalid_and_already_in_hub(repo: PolicyRepo, hub: HubProcess) -> None:
    repo.add_policy("alpha", "1.0.0")
    repo.add_policy("beta", "1.0.0", meta=metadata("not-beta", "1.0.0"))  # invalid: name mismatch
    repo.add_policy("gamma", "1.0.0")
    repo.commit("three policies")
    seed_hub(hub, "gamma", "1.0.0")

    first = repo.release(hub, "-n", "2")
    assert first.returncode == 1, first.output
    assert "Partial success – 1 of 3 failed" in first.stdout
    assert hub.created("alpha", "1.0.0") == 1
    assert hub.created("beta", "1.0.0") == 0
    state = repo.delivered()["policies"]
    assert state["alpha"]["1.0.0"]["outcome"] == "published"
    assert state["gamma"]["1.0.0"]["outcome"] == "already-in-hub"
    assert state["alpha"]["1.0.0"]["digest"] == policy_digest(
        metadata("alpha", "1.0.0"), definition()
    )
    assert state["alpha"]["1.0.0"]["release_sha"] == repo.head()
    assert repo.baseline is None, "a partial release must not advance the baseline"
    assert "beta@1.0.0" in first.stdout and "$.name" in first.stdout

    repo.add_policy("beta", "1.0.0")  # fixed
    fixed_sha = repo.commit("fix beta")
    second = repo.release(hub, "-n", "2")
    assert second.returncode == 0, second.output
    assert "Release successful – the 1 policy delivered" in second.stdout
    assert "2 already delivered" in second.stdout
    assert hub.created("beta", "1.0.0") == 1
    assert repo.baseline == fixed_sha

    third = repo.release(hub)
    assert third.returncode == 0, third.output
    assert "nothing to deliver" in third.stdout
    assert sorted(r[:2] for r in hub.records()) == [
        ("alpha", "1.0.0"),
        ("beta", "1.0.0"),
        ("gamma", "1.0.0"),
    ]
    assert [hub.created(n, "1.0.0") for n in ("alpha", "beta", "gamma")] == [1, 1, 1]


def test_state_file_is_sorted_indented_and_only_added_to(repo: PolicyRepo, hub: HubProcess) -> None:
    repo.add_policy("zeta", "1.0.0")
    repo.add_policy("alpha", "2.0.0")
    repo.commit()
    assert repo.release(hub).returncode == 0
    text = (repo.path / ".state/delivered.json").read_text()
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, indent=2) + "\n"
    first_entry = data["policies"]["zeta"]["1.0.0"]
    repo.add_policy("zeta", "1.1.0")
    repo.commit()
    assert repo.release(hub).returncode == 0
    assert repo.delivered()["policies"]["zeta"]["1.0.0"] == first_entry


def test_faulty_hub_still_gets_every_version_exactly_once(repo: PolicyRepo, tmp_path: Path) -> None:
    for i in range(12):
        repo.add_policy(f"policy-{i:02d}", "1.0.0")
    repo.commit()
    faults = "rate_503=0.2,rate_429=0.1,retry_after=0,drop_after_commit=0.3,seed=11"
    # Half of all tries fail here: more tries than the default, so the test is about exactly
    # once, not about the odds of six failures in a row; and short pauses between them (the
    # pauses' own rule is tests/test_delivery_unit.py's), not 16 s of waiting.
    tries = "policy_hub_attempts = 12\npolicy_hub_backoff = 0.05\n"
    repo.write("pyproject.toml", PYPROJECT + tries)
    repo.commit("more tries")
    with HubProcess(tmp_path / "hub", faults=faults) as hub:
        result = repo.release(hub, "-n", "2")
        assert result.returncode == 0, result.output
        assert "Release successful – all 12 policies delivered" in result.stdout
        for i in range(12):
            assert hub.created(f"policy-{i:02d}", "1.0.0") == 1
    assert len(repo.delivered_versions()) == 12
    assert repo.baseline == repo.head()


def test_dry_run_sends_no_post_and_writes_no_state(repo: PolicyRepo, hub: HubProcess) -> None:
    repo.add_policy("alpha", "1.0.0")
    repo.add_policy("gamma", "1.0.0")
    repo.commit()
    seed_hub(hub, "gamma", "1.0.0")
    before = (repo.path / ".state/delivered.json").read_text()
    result = repo.release(hub, "--dry-run", "-v")
    assert result.returncode == 0, result.output
    assert "WOULD-PUBLISH" in result.stdout and "ALREADY-IN-HUB" in result.stdout
    assert "Dry run – 2 policies" in result.stdout
    assert hub.created("alpha", "1.0.0") == 0
    assert (repo.path / ".state/delivered.json").read_text() == before
    assert repo.baseline is None


@pytest.mark.parametrize("selection", [["-k", "alpha"], ["--lf"]], ids=["-k", "--lf"])
def test_partial_selection_never_advances_the_baseline(
    repo: PolicyRepo, hub: HubProcess, selection: list[str]
) -> None:
    repo.add_policy("alpha", "1.0.0")
    repo.add_policy("beta", "1.0.0", meta=metadata("beta", "9.9.9"))  # invalid
    repo.commit()
    if selection == ["--lf"]:
        assert repo.release(hub).returncode == 1  # records beta as last failed
        repo.add_policy("beta", "1.0.0")
        repo.add_policy("delta", "1.0.0")  # new, and not in the last-failed set
        repo.commit()
    result = repo.release(hub, *selection)
    assert result.returncode == 0, result.output
    assert repo.baseline is None
    assert "not run in this session" in result.stdout
    if selection == ["-k", "alpha"]:
        # Deselected versions are not run, never failed (docs/contract.md section 3, step 5).
        assert "Partial success – 0 of 2 failed, 1 not run" in result.stdout
    repo.add_policy("beta", "1.0.0")
    repo.commit("fix beta")
    complete = repo.release(hub)
    assert complete.returncode == 0, complete.output
    assert repo.baseline == repo.head()


def test_crashed_worker_never_advances_the_baseline(repo: PolicyRepo, hub: HubProcess) -> None:
    for name in ("alpha", "beta", "gamma"):
        repo.add_policy(name, "1.0.0")
    repo.write(
        "conftest.py",
        "import os\n\ndef pytest_runtest_call(item):\n"
        "    if 'beta@' in item.nodeid and os.environ.get('CRASH_BETA'):\n"
        "        os._exit(3)\n",
    )
    repo.commit()
    crashed = repo.release(hub, "-n", "2", env={"CRASH_BETA": "1"})
    assert crashed.returncode == 1, crashed.output
    assert repo.baseline is None
    assert ("beta", "1.0.0") not in repo.delivered_versions()
    rerun = repo.release(hub, "-n", "2")
    assert rerun.returncode == 0, rerun.output
    assert repo.baseline == repo.head()
    assert [hub.created(n, "1.0.0") for n in ("alpha", "beta", "gamma")] == [1, 1, 1]


def test_changed_after_delivery_fails_and_is_never_republished(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    # Each case of the baseline rule: tests/test_changed_after_delivery.py.
    repo.add_policy("alpha", "1.0.0")
    repo.commit()
    assert repo.release(hub).returncode == 0
    repo.add_policy("alpha", "1.0.0", rule_ids=("rule-one", "rule-two"))  # edited in place
    repo.commit("edit a published version")
    result = repo.release(hub)
    assert result.returncode == 1, result.output
    assert "CHANGED AFTER DELIVERY: alpha@1.0.0" in result.stdout
    assert hub.created("alpha", "1.0.0") == 1


def test_hub_with_different_content_is_said_loudly(repo: PolicyRepo, hub: HubProcess) -> None:
    seed_hub(hub, "alpha", "1.0.0", meta=metadata("alpha", "1.0.0", title="another title"))
    repo.add_policy("alpha", "1.0.0")
    repo.commit()
    result = repo.release(hub)
    assert result.returncode == 0, result.output
    assert "HUB HOLDS DIFFERENT CONTENT: alpha@1.0.0" in result.stdout
    assert repo.delivered()["policies"]["alpha"]["1.0.0"]["outcome"] == "already-in-hub"


def test_deleted_folder_is_reported_never_unpublished(repo: PolicyRepo, hub: HubProcess) -> None:
    repo.add_policy("alpha", "1.0.0")
    repo.add_policy("beta", "1.0.0")
    repo.commit()
    assert repo.release(hub).returncode == 0
    repo.git("rm", "-r", "-q", "policies/beta")
    repo.commit("remove beta")
    result = repo.release(hub)
    assert result.returncode == 0, result.output
    assert "deleted: policies/beta/v1.0.0" in result.stdout
    assert (
        "beta",
        "1.0.0",
    ) in {r[:2] for r in hub.records()}


def test_force_pushed_baseline_starts_from_the_root_with_a_warning(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    repo.add_policy("alpha", "1.0.0")
    repo.commit()
    (repo.path / ".state/baseline.sha").write_text("1" * 40 + "\n")  # not in this history
    repo.commit("a baseline from a rewritten history")
    result = repo.release(hub)
    assert result.returncode == 0, result.output
    assert "starting from the root commit" in result.stdout
    assert hub.created("alpha", "1.0.0") == 1
    assert repo.baseline == repo.head()


def test_release_sha_other_than_head_publishes_that_commit(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    repo.add_policy("alpha", "1.0.0")
    released = repo.commit()
    repo.add_policy("alpha", "1.0.0", rule_ids=("rule-one", "later-edit"))
    repo.add_policy("beta", "1.0.0")
    repo.commit("work after the release")
    result = repo.release(hub, "--release-sha", released)
    assert result.returncode == 0, result.output
    assert hub.created("beta", "1.0.0") == 0
    assert repo.delivered()["policies"]["alpha"]["1.0.0"]["digest"] == policy_digest(
        metadata("alpha", "1.0.0"), definition()
    )
    assert repo.baseline == released


def test_a_missing_token_reads_differently_from_a_refused_one(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    repo.add_policy("alpha", "1.0.0")
    repo.commit()
    result = repo.pytest("--release", env={"POLICY_HUB_URL": hub.url, "POLICY_HUB_TOKEN": " \n"})
    assert result.returncode == 1, result.output
    assert result.stdout.count("policy-hub: ERROR:") == 1
    assert "POLICY_HUB_TOKEN is not set, and the hub at" in result.stdout
    assert "refused the token" not in result.stdout
    assert hub.created("alpha", "1.0.0") == 0


def test_wrong_token_is_one_clear_message(repo: PolicyRepo, hub: HubProcess) -> None:
    for name in ("alpha", "beta", "gamma"):
        repo.add_policy(name, "1.0.0")
    repo.commit()
    result = repo.pytest("--release", env={"POLICY_HUB_URL": hub.url, "POLICY_HUB_TOKEN": "wrong"})
    assert result.returncode == 1
    assert result.stdout.count("policy-hub: ERROR:") == 1
    assert "refused the token (HTTP 401)" in result.stdout
    assert "Release failed – no policies delivered" in result.stdout
    assert hub.created("alpha", "1.0.0") == 0


def test_read_only_token_cannot_publish_and_is_refused_once(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    """The GETs pass with a read-only token, so the preflight cannot tell; the first POST's 403
    is the refusal, and the versions after it are not attempted instead of repeating it."""
    for name in ("alpha", "beta", "gamma"):
        repo.add_policy(name, "1.0.0")
    repo.commit()
    result = repo.pytest(
        "--release",
        "--junitxml=report.xml",
        env={"POLICY_HUB_URL": hub.url, "POLICY_HUB_TOKEN": hub.read_token},
    )
    assert result.returncode == 1
    assert "HTTP 403" in result.stdout and "POLICY_HUB_TOKEN" in result.stdout
    assert repo.delivered_versions() == set()
    props = junit_properties(repo.path / "report.xml").values()
    outcomes = sorted(p["outcome"] for p in props)
    assert outcomes == ["not-attempted", "not-attempted", "publish-failed"], outcomes
    assert [p["hub_post_status"] for p in props if "hub_post_status" in p] == ["403"]
    assert result.stdout.count("TOKEN REFUSED: the hub refused the token (HTTP 403)") == 1
    assert [hub.created(n, "1.0.0") for n in ("alpha", "beta", "gamma")] == [0, 0, 0]


def test_a_name_outside_the_tokens_globs_fails_that_version_only(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    """docs/contract.md section 9: the hub's `403 forbidden-name` fails that version
    (`publish-failed`, naming forbidden-name); the token is not refused, the others go on."""
    for name in ("alpha", "deny-host-path", "require-labels"):
        repo.add_policy(name, "1.0.0")
    repo.commit()
    result = repo.pytest(
        "--release",
        "--junitxml=report.xml",
        env={"POLICY_HUB_URL": hub.url, "POLICY_HUB_TOKEN": hub.scoped_token},
    )
    assert result.returncode == 1
    assert "forbidden-name: this token may not publish alpha" in result.stdout
    assert "TOKEN REFUSED" not in result.stdout
    assert repo.delivered_versions() == {("deny-host-path", "1.0.0"), ("require-labels", "1.0.0")}
    outcomes = {
        case: p["outcome"] for case, p in junit_properties(repo.path / "report.xml").items()
    }
    assert outcomes == {
        "alpha@1.0.0": "publish-failed",
        "deny-host-path@1.0.0": "published",
        "require-labels@1.0.0": "published",
    }
    assert hub.created("alpha", "1.0.0") == 0
    assert hub.created("deny-host-path", "1.0.0") == 1


def test_releasing_an_older_commit_never_moves_the_baseline_back(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    repo.add_policy("alpha", "1.0.0")
    old = repo.commit()
    repo.add_policy("beta", "1.0.0")
    new = repo.commit()
    assert repo.release(hub).returncode == 0
    assert repo.baseline == new
    result = repo.release(hub, "--release-sha", old)
    assert result.returncode == 0, result.output
    assert "the baseline only moves forward" in result.stdout
    assert repo.baseline == new
    assert hub.created("alpha", "1.0.0") == 1


def test_a_temp_file_left_by_a_killed_write_is_cleared(repo: PolicyRepo, hub: HubProcess) -> None:
    repo.add_policy("alpha", "1.0.0")
    repo.commit()
    leftover = repo.path / ".state/.delivered.json.abc123.tmp"
    leftover.write_text('{"half": ')
    assert repo.release(hub).returncode == 0
    assert not leftover.exists()
    assert repo.delivered_versions() == {("alpha", "1.0.0")}


def test_a_version_whose_publish_body_would_pass_2_mib_is_invalid_in_both_modes(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    # Each file under 1 MiB, but the POST body over the 2 MiB every hub accepts (docs/contract.md
    # section 7): a quote in a YAML single-quoted string is one byte there and two (\") in the JSON
    # body.
    repo.add_policy("alpha", "1.0.0", meta=metadata("alpha", "1.0.0", note="n" * 900_000))
    text = yaml.safe_dump(definition(), sort_keys=False).replace(
        "resource.ok == true", "'" + '"' * 700_000 + "'"
    )
    repo.write("policies/alpha/v1.0.0/policy-definition.yaml", text)
    repo.add_policy("beta", "1.0.0")
    repo.commit()
    author = repo.pytest("-q")
    assert author.returncode == 1, author.output
    assert "1 failed, 1 passed" in author.stdout
    assert "POST /policies body would be 2" in author.stdout and "(2 MiB)" in author.stdout
    release = repo.release(hub)
    assert release.returncode == 1, release.output
    assert hub.created("beta", "1.0.0") == 1
    assert hub.created("alpha", "1.0.0") == 0, "nothing is sent for an invalid version"
    assert "invalid" in release.stdout and "HTTP 413" not in release.stdout


def test_version_folders_not_committed_are_said_once(repo: PolicyRepo, hub: HubProcess) -> None:
    repo.add_policy("alpha", "1.0.0")
    repo.commit()
    repo.add_policy("alpha", "1.0.0", rule_ids=("rule-one", "rule-two"))  # modified, unstaged
    repo.add_policy("beta", "1.0.0")  # untracked
    repo.add_policy("gamma", "1.0.0")
    repo.git("add", "policies/gamma")  # staged, not committed
    repo.write("policies/alpha/README.md", "not a version folder\n")  # not named
    result = repo.release(hub)
    assert result.returncode == 0, result.output
    said = (
        "NOT IN THIS RELEASE: 3 version folder(s) of the working tree are not committed (new or "
        "changed): policies/alpha/v1.0.0, policies/beta/v1.0.0, policies/gamma/v1.0.0; only the "
        "release commit is published: commit them for the next release"
    )
    assert result.stdout.count("NOT IN THIS RELEASE") == 1 and said in result.stdout
    assert hub.created("alpha", "1.0.0") == 1 and hub.created("beta", "1.0.0") == 0
    # The release commit's alpha was published, not the working tree's.
    assert repo.delivered()["policies"]["alpha"]["1.0.0"]["digest"] == policy_digest(
        metadata("alpha", "1.0.0"), definition()
    )
    # A dry run says it too; the list is capped, the rest counted.
    for i in range(12):
        repo.add_policy(f"extra-{i:02d}", "1.0.0")
    dry = repo.release(hub, "--dry-run")
    assert "NOT IN THIS RELEASE: 15 version folder(s)" in dry.stdout, dry.output
    assert "policies/extra-07/v1.0.0 and 5 more; only the release commit" in dry.stdout
    clean = repo.git("stash", "-u")
    assert clean
    assert "NOT IN THIS RELEASE" not in repo.release(hub).stdout
