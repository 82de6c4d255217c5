"""Hub outages: the hub down for a whole release, the hub crashing (SIGKILL) in the middle of
one, and a hub in an outage that still answers (503 to everything, from the start or from the
middle of a run; docs/contract.md section 3, "Every wait is bounded"). Either way the run fails
cleanly with the reason, said once, nothing is marked delivered that the hub does not hold, the
baseline stays, and the next run against the hub completes exactly once. A hub that answers a few
503s and recovers is no outage: the retries deliver everything.

Runs use short client backoff (RELIABILITY_FAST_RETRY, see tests/reliability/runs.py) so that
an outage costs seconds, not the production retry budget; the retry logic itself is unchanged.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.hostilehub import HostileHub, Rule
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
# A failing hub's request: 3 tries, 0.05-0.2 s apart (FAST), within 5 s (CI stays fast).
FAILING_LIMITS = ["-o", "policy_hub_attempts=3", "-o", "policy_hub_request_deadline=5"]
UNAVAILABLE = {"detail": "database unavailable"}
OUTAGE_SAID = "answered every try with an error (HTTP 503: database unavailable"


def unavailable_rules() -> list[Rule]:
    """What the reference hub answers while its database is down: 503 to every request."""
    return [Rule(method, "", 503, UNAVAILABLE) for method in ("GET", "POST")]


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


def test_a_hub_that_answers_503_to_everything_ends_after_one_request(
    repo: PolicyRepo, tmp_path: Path, hub: HubProcess
) -> None:
    with HostileHub(unavailable_rules(), upstream=hub.url) as failing:
        run = ReleaseRun.start(
            repo.path,
            ["-n", "2", *FAILING_LIMITS],
            release_env(failing.url, hub.token, FAST),
            tmp_path / "logs",
        )
        result = run.wait(300)
        sent = list(failing.requests)
    assert result.returncode == 1, result.output
    assert "Release failed – no policies delivered" in result.stdout
    # One request (the first hub check, 3 tries) found the outage; no version after it was
    # attempted, on the controller or on either worker: not one request deadline per item.
    assert len(sent) == 3 and {method for method, _ in sent} == {"GET"}, sent
    assert result.stdout.count(OUTAGE_SAID) == 2, result.stdout  # up front, and the summary
    assert result.stdout.count("not-attempted") >= len(VERSIONS), result.stdout
    assert "INTERNALERROR" not in result.output and "Traceback" not in result.output
    assert repo.delivered_versions() == set() and repo.baseline is None
    assert creation_count(hub.db_path) == 0
    after = repo.release(hub, "-n", "2")
    assert after.returncode == 0, after.output
    assert creations(hub.db_path) == {key: 1 for key in VERSIONS}
    assert repo.baseline == repo.head()


def test_a_hub_that_fails_mid_run_stops_the_run_and_the_baseline_stays(
    repo: PolicyRepo, tmp_path: Path
) -> None:
    more = [(f"policy-{i:02d}", "1.0.0") for i in range(6, 12)]  # so some come after it
    for name, version in more:
        repo.add_policy(name, version)
    repo.commit("six more")
    everything = {key: 1 for key in [*VERSIONS, *more]}
    hub = HubProcess(tmp_path / "hub", faults="latency_ms=300,seed=7")
    try:
        with HostileHub([], upstream=hub.url) as failing:
            run = ReleaseRun.start(
                repo.path,
                ["-n", "2", *FAILING_LIMITS],
                release_env(failing.url, hub.token, FAST),
                tmp_path / "logs",
            )
            while run.alive() and creation_count(hub.db_path) < 2:
                time.sleep(0.02)
            failing.rules.extend(unavailable_rules())  # the database goes down
            result = run.wait(300)
        assert result.returncode == 1, result.output
        assert OUTAGE_SAID in result.stdout, result.stdout
        assert "not-attempted" in result.stdout, result.stdout
        state, bad = check_step(repo, hub.db_path, StateSnapshot({}, None), repo.head(), "503")
        assert not bad, bad.found
        assert state.baseline is None
        assert 2 <= creation_count(hub.db_path) < len(everything)
        rerun = repo.release(hub, "-n", "2")  # the database is back
        assert rerun.returncode == 0, rerun.output
        assert creations(hub.db_path) == everything
        assert repo.baseline == repo.head()
    finally:
        hub.stop()


def test_a_hub_that_recovers_after_a_few_503s_delivers_everything(
    repo: PolicyRepo, tmp_path: Path, hub: HubProcess
) -> None:
    # Two 503s on the first hub check, and two on the first POST: each request's next try
    # gets through, so no request saw only errors, and nothing is taken as an outage.
    rules = [
        Rule("GET", "", 503, UNAVAILABLE, times=2),
        Rule("POST", "", 503, UNAVAILABLE, times=2),
    ]
    with HostileHub(rules, upstream=hub.url) as flaky:
        run = ReleaseRun.start(
            repo.path,
            ["-n", "2", *FAILING_LIMITS],
            release_env(flaky.url, hub.token, FAST),
            tmp_path / "logs",
        )
        result = run.wait(300)
    assert result.returncode == 0, result.output
    assert f"Release successful – all {len(VERSIONS)} policies delivered" in result.stdout
    assert "taken as down" not in result.stdout
    assert creations(hub.db_path) == {key: 1 for key in VERSIONS}
    assert repo.baseline == repo.head()
