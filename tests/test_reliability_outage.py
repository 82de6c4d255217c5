"""Hub outages: the hub down for a whole release, and the hub crashing (SIGKILL) in the middle of
one. Either way the run fails cleanly with the reason, nothing is marked delivered that the hub
does not hold, the baseline stays, and the next run against the hub completes exactly once.

Runs use short client backoff (RELIABILITY_FAST_RETRY, see tests/reliability/runs.py) so that
an outage costs seconds, not the production retry budget; the retry logic itself is unchanged.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo
from tests.reliability.figures import figures_file, record
from tests.reliability.invariants import StateSnapshot, check_step, creation_count, creations
from tests.reliability.runs import (
    SIX_VERSIONS,
    ReleaseRun,
    release_env,
    six_version_repo,
    start_release,
)

VERSIONS = SIX_VERSIONS
FAST = {"RELIABILITY_FAST_RETRY": "1"}


@pytest.fixture
def repo(tmp_path: Path) -> PolicyRepo:
    return six_version_repo(tmp_path / "repo")


def test_hub_down_for_the_whole_run(
    repo: PolicyRepo, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    hub = HubProcess(tmp_path / "hub")
    hub.stop()  # its port is now closed: every connection is refused
    run = ReleaseRun.start(
        repo.path, ["-n", "2"], release_env(hub.url, hub.token, FAST), tmp_path / "logs"
    )
    down = run.wait(300)
    assert down.returncode == 1, down.output
    assert "Release failed – no policies delivered" in down.stdout
    # The reason is said once up front and once in the summary; each item says only that it
    # was not attempted (docs/contract.md section 3: a dead hub is said once, not once per item).
    assert down.stdout.count("ConnectionError") == 2, down.stdout
    assert down.stdout.count("did not answer earlier in this run") >= len(VERSIONS), down.stdout
    assert "INTERNALERROR" not in down.output
    state, bad = check_step(repo, hub.db_path, StateSnapshot({}, None), repo.head(), "down")
    assert not bad, bad.found
    assert state.delivered == {} and state.baseline is None
    hub.start()
    try:
        up = repo.release(hub, "-n", "2")
        assert up.returncode == 0, up.output
        assert creations(hub.db_path) == {key: 1 for key in VERSIONS}
        assert repo.baseline == repo.head()
    finally:
        hub.stop()
    record(figures_file(tmp_path_factory), "outage", releases=2, outages=1, lost=0, duplicated=0)


def test_hub_crashes_mid_run(
    repo: PolicyRepo, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    hub = HubProcess(tmp_path / "hub", faults="latency_ms=300,seed=5")
    try:
        run = start_release(repo, hub, "-n", "2", extra_env=FAST)
        # Crash the hub itself (not the run) once it has created two versions.
        while run.alive() and creation_count(hub.db_path) < 2:
            time.sleep(0.02)
        hub.kill()
        crashed = run.wait(300)
        assert crashed.returncode == 1, crashed.output
        assert "Partial success" in crashed.stdout or "Release failed" in crashed.stdout
        assert "ConnectionError" in crashed.stdout
        state, bad = check_step(repo, hub.db_path, StateSnapshot({}, None), repo.head(), "crash")
        assert not bad, bad.found
        assert state.baseline is None
        # The hub may die between committing a version and answering for it: that version is
        # in the hub but not (yet) in the state, and the rerun records it from the hub.
        assert len(state.delivered) <= creation_count(hub.db_path) < len(VERSIONS)

        hub.faults = None
        hub.start()
        rerun = repo.release(hub, "-n", "2")
        assert rerun.returncode == 0, rerun.output
        final, bad = check_step(repo, hub.db_path, state, repo.head(), "after the crash")
        assert not bad, bad.found
        assert creations(hub.db_path) == {key: 1 for key in VERSIONS}
        assert final.baseline == repo.head()
    finally:
        hub.stop()
    record(figures_file(tmp_path_factory), "outage", releases=2, outages=1, lost=0, duplicated=0)
