"""Concurrent runs: two releases started at once on the same checkout (one holds the state lock,
the other stops with the clear message and exit 4, state stays whole), and two CI runs in two
clones racing to push their state to one remote (both end pushed, the remote holds the union).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo, remote_file
from tests.reliability.figures import figures_file, record
from tests.reliability.invariants import StateSnapshot, check_step, creations, is_ancestor
from tests.reliability.runs import install_conftest, start_release


def test_two_releases_at_once_on_one_checkout(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    install_conftest(repo)
    versions = [(f"policy-{i}", "1.0.0") for i in range(4)]
    for name, version in versions:
        repo.add_policy(name, version)
    head = repo.commit()
    with HubProcess(tmp_path / "hub") as hub:
        # Whichever run takes the lock holds it 3 s longer, so the other surely meets it.
        hold = {"RELIABILITY_HOLD_SECONDS": "3"}
        runs = [start_release(repo, hub, "-n", "2", extra_env=hold) for _ in range(2)]
        results = sorted((run.wait(300) for run in runs), key=lambda r: r.returncode)
        winner, loser = results
        assert winner.returncode == 0, winner.output
        assert loser.returncode == 4, loser.output
        assert "in use by another release run" in loser.output
        assert "INTERNALERROR" not in loser.output and "Traceback" not in loser.output
        state, bad = check_step(repo, hub.db_path, StateSnapshot({}, None), head, "two runs")
        assert not bad, bad.found
        assert set(state.delivered) == set(versions) and state.baseline == head
        assert creations(hub.db_path) == {key: 1 for key in versions}
    record(figures_file(tmp_path_factory), "concurrency", releases=2, lost=0, duplicated=0)


def test_two_ci_runs_racing_to_push(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    origin = PolicyRepo(tmp_path / "origin")
    origin.add_policy("alpha", "1.0.0")
    origin.add_policy("beta", "1.0.0")
    base = origin.commit("shared policies")
    origin.git("remote", "add", "origin", str(remote))
    origin.git("push", "-q", "origin", "main")
    first, second = (
        PolicyRepo.clone_of(remote, tmp_path / "first"),
        PolicyRepo.clone_of(remote, tmp_path / "second"),
    )
    first.add_policy("gamma", "1.0.0")
    first_sha = first.commit("gamma")
    second.add_policy("delta", "1.0.0")
    second_sha = second.commit("delta")
    with HubProcess(tmp_path / "hub", faults="latency_ms=100,seed=3") as hub:
        runs = [start_release(r, hub, "--push", "--hub-url", hub.url) for r in (first, second)]
        results = [run.wait(300) for run in runs]
        for result in results:
            assert result.returncode == 0, result.output
            assert "state pushed to origin/main" in result.stdout
        assert sum("after 2 attempts" in r.stdout or "attempts" in r.stdout for r in results) >= 1
        delivered = json.loads(remote_file(remote, ".state/delivered.json"))["policies"]
        assert set(delivered) == {"alpha", "beta", "gamma", "delta"}
        baseline = remote_file(remote, ".state/baseline.sha").strip()
        assert baseline in (first_sha, second_sha)
        tip = subprocess.run(
            ["git", "--git-dir", str(remote), "rev-parse", "main"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        follow = PolicyRepo.clone_of(remote, tmp_path / "follow")
        assert is_ancestor(follow, base, baseline) and is_ancestor(follow, baseline, tip)
        names = ("alpha", "beta", "gamma", "delta")
        assert creations(hub.db_path) == {(n, "1.0.0"): 1 for n in names}
        # The next release from the merged branch has nothing left to publish.
        again = follow.release(hub)
        assert again.returncode == 0, again.output
        assert creations(hub.db_path) == {(n, "1.0.0"): 1 for n in names}
    record(figures_file(tmp_path_factory), "concurrency", releases=3, lost=0, duplicated=0)
