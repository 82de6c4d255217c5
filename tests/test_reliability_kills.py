"""SIGKILL of a whole `pytest --release -n 2` process group (controller and workers) at chosen
moments, then a rerun to completion: every version is created exactly once, the state files are
whole after the kill, and the baseline advances only at the end of the completing run.

The moments are reached for real: a hub with latency keeps the run in flight while the test polls
the hub's SQLite audit for K creations; the finalize moments are pause points that the repository's
conftest.py opens only when asked (tests/reliability/runs.py), where the test's SIGKILL lands.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo
from tests.reliability.figures import figures_file, record
from tests.reliability.invariants import (
    StateSnapshot,
    check_step,
    creation_count,
    creations,
    hub_records,
)
from tests.reliability.runs import install_conftest, start_release

VERSIONS = [(f"policy-{i:02d}", "1.0.0") for i in range(8)]


def kill_point(moment: str, hub: HubProcess, marker: Path) -> tuple[dict[str, str], object]:
    """The environment that opens the pause point, and the condition to kill on."""
    if moment == "mid-run":
        return {}, lambda: creation_count(hub.db_path) >= 3
    env = {"RELIABILITY_PAUSE_AT": moment, "RELIABILITY_MARKER": str(marker)}
    return env, marker.exists


@pytest.mark.parametrize(
    "moment",
    ["session-start", "mid-run", "mid-delivered-write", "before-baseline-write"],
)
def test_sigkill_then_rerun_creates_each_version_once(
    moment: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    install_conftest(repo)
    for name, version in VERSIONS:
        repo.add_policy(name, version)
    head = repo.commit()
    marker = tmp_path / "paused"
    # Latency keeps the mid-run kill inside the POSTs (8 versions on 2 workers take seconds).
    with HubProcess(tmp_path / "hub", faults="latency_ms=250,seed=1") as hub:
        env, condition = kill_point(moment, hub, marker)
        run = start_release(repo, hub, "-n", "2", extra_env=env)
        assert run.kill_when(condition, timeout=180), run.result().output  # type: ignore[arg-type]
        created_at_kill = creation_count(hub.db_path)

        before = StateSnapshot({}, None)
        after_kill, bad = check_step(repo, hub.db_path, before, head, f"killed at {moment}")
        assert not bad, bad.found
        assert after_kill.baseline is None, "a killed run must never advance the baseline"
        if moment == "session-start":
            assert created_at_kill == 0 and after_kill.delivered == {}
        elif moment == "mid-run":
            assert 3 <= created_at_kill < len(VERSIONS)
        elif moment == "mid-delivered-write":
            # The temp file was complete, the rename never happened: the old file stands.
            assert created_at_kill == len(VERSIONS) and after_kill.delivered == {}
            assert list((repo.path / ".state").glob(".delivered.json.*.tmp"))
        else:
            assert set(after_kill.delivered) == set(VERSIONS)

        hub.restart()  # the rerun without latency
        rerun = repo.release(hub, "-n", "2")
        assert rerun.returncode == 0, rerun.output
        assert "Release successful" in rerun.stdout
        final, bad = check_step(repo, hub.db_path, after_kill, head, "rerun")
        assert not bad, bad.found
        assert final.baseline == head
        assert set(final.delivered) == set(VERSIONS)
        assert creations(hub.db_path) == {key: 1 for key in VERSIONS}
        assert set(hub_records(hub.db_path)) == set(VERSIONS)
    record(figures_file(tmp_path_factory), "kill", kills=1, releases=2, lost=0, duplicated=0)


def test_kill_after_the_hub_commit_then_an_edit_keeps_state_true_to_the_hub(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Killed after the hub created the versions but before delivered.json says so; then one
    version is edited in place. The rerun says loudly that the hub holds other content and records
    the hub's digest, not the edited files' (delivered.json describes what the hub holds)."""
    repo = PolicyRepo(tmp_path / "repo")
    install_conftest(repo)
    for name, version in VERSIONS[:2]:
        repo.add_policy(name, version)
    head = repo.commit()
    marker = tmp_path / "paused"
    with HubProcess(tmp_path / "hub") as hub:
        env = {"RELIABILITY_PAUSE_AT": "mid-delivered-write", "RELIABILITY_MARKER": str(marker)}
        run = start_release(repo, hub, extra_env=env)
        assert run.kill_when(marker.exists, timeout=180), run.result().output
        killed, bad = check_step(repo, hub.db_path, StateSnapshot({}, None), head, "killed")
        assert not bad and killed.delivered == {}, bad.found
        repo.add_policy(*VERSIONS[0], rule_ids=("edited-in-place",))
        edited = repo.commit("edit a version the hub already holds")
        rerun = repo.release(hub)
        assert rerun.returncode == 0, rerun.output
        assert f"HUB HOLDS DIFFERENT CONTENT: {VERSIONS[0][0]}@{VERSIONS[0][1]}" in rerun.stdout
        final, bad = check_step(repo, hub.db_path, killed, edited, "rerun")
        assert final.baseline == edited
        assert not bad, bad.found  # includes: every delivered digest is the hub's
        assert creations(hub.db_path) == {key: 1 for key in VERSIONS[:2]}
    record(figures_file(tmp_path_factory), "kill", kills=1, releases=2, lost=0, duplicated=0)
