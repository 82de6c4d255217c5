"""Two hub processes on one PostgreSQL database keep section 5's promises together (docs/contract.md
section 6): racing POSTs across the processes, a release through one read from the other, and a
release that loses a hub process (SIGKILL) or a database backend (SIGKILL: the server's crash
recovery ends every connection) mid-run, with the reliability suite's invariants: nothing
delivered that the hub lacks, nothing created twice, the baseline only at the end.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from tests.hubprocess import HubProcess
from tests.pgserver import PostgresServer, hub_backend
from tests.policyrepo import PolicyRepo
from tests.reliability.figures import figures_file, record
from tests.reliability.invariants import (
    StateSnapshot,
    check_step,
    creation_count,
    creations,
    injected_refusals,
)
from tests.reliability.runs import SIX_VERSIONS, six_version_repo, start_release
from tests.test_hub_api import auth, policy_body

VERSIONS = SIX_VERSIONS
FAST = {"RELIABILITY_FAST_RETRY": "1"}


@pytest.fixture
def two_hubs(postgres_db: str, tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess]]:
    """Two `policy-hub serve` processes on one fresh database, with the same tokens."""
    first = HubProcess(tmp_path / "hub-a", db=postgres_db)
    second = first.twin(tmp_path / "hub-b")
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


def race(
    hubs: tuple[HubProcess, ...], keys: list[str], bodies: list[dict]
) -> list[requests.Response]:
    """POST bodies[i] under keys[i] to the hubs in turn, all released at once."""
    barrier = threading.Barrier(len(keys))
    results: list[requests.Response | None] = [None] * len(keys)

    def client(i: int) -> None:
        hub = hubs[i % len(hubs)]
        barrier.wait()
        results[i] = requests.post(
            f"{hub.url}/policies", json=bodies[i], headers=auth(hub.token, keys[i]), timeout=30
        )

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(keys))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def test_racers_on_two_processes_with_distinct_keys_create_once(
    two_hubs: tuple[HubProcess, HubProcess],
) -> None:
    results = race(two_hubs, [f"key-{i}" for i in range(20)], [policy_body()] * 20)
    assert sorted(r.status_code for r in results) == [201] + [409] * 19
    assert {r.json()["error"] for r in results if r.status_code == 409} == {"exists"}
    assert {r.json()["digest"] for r in results} == {policy_body()["digest"]}
    assert two_hubs[0].created("require-tags", "1.2.0") == 1
    assert len(two_hubs[1].records()) == 1


def test_racers_on_two_processes_with_one_key_get_the_first_answer(
    two_hubs: tuple[HubProcess, HubProcess],
) -> None:
    results = race(two_hubs, ["same"] * 20, [policy_body()] * 20)
    # Each waits for the transaction holding the key, then replays its answer byte for byte.
    assert [r.status_code for r in results] == [201] * 20
    assert len({r.content for r in results}) == 1
    first, second = two_hubs
    assert first.created("require-tags", "1.2.0") == 1
    outcomes = sorted(o for (o,) in first.query("SELECT outcome FROM audit"))
    assert outcomes == ["created"] + ["replayed"] * 19
    # The same key with another body is refused by either process.
    other = policy_body(version="2.0.0")
    for hub in two_hubs:
        refused = requests.post(
            f"{hub.url}/policies", json=other, headers=auth(hub.token, "same"), timeout=30
        )
        assert refused.json()["error"] == "idempotency-key-reused"
    assert [r[1] for r in second.records()] == ["1.2.0"]


def test_a_release_through_one_process_is_read_from_the_other(
    two_hubs: tuple[HubProcess, HubProcess], tmp_path: Path
) -> None:
    first, second = two_hubs
    repo = PolicyRepo(tmp_path / "repo")
    for name, version in VERSIONS[:4]:
        repo.add_policy(name, version)
    head = repo.commit()
    published = repo.release(first, "-n", "2")
    assert published.returncode == 0, published.output
    for name, version in VERSIONS[:4]:
        path = f"/policies/{name}/{version}"
        ours = requests.get(f"{first.url}{path}", headers=auth(first.token), timeout=10)
        theirs = requests.get(f"{second.url}{path}", headers=auth(second.read_token), timeout=10)
        assert theirs.status_code == 200 and theirs.json() == ours.json()
    # Another checkout of the same commit, releasing through the other process, finds them all.
    other = PolicyRepo.clone_of(repo.path, tmp_path / "other")
    again = other.release(second)
    assert again.returncode == 0, again.output
    delivered = other.delivered()["policies"]
    assert {delivered[n][v]["outcome"] for n, v in VERSIONS[:4]} == {"already-in-hub"}
    assert other.baseline == head
    assert creations(first.db) == {key: 1 for key in VERSIONS[:4]}


@pytest.fixture
def repo(tmp_path: Path) -> PolicyRepo:
    return six_version_repo(tmp_path / "repo")


def rerun_to_completion(
    repo: PolicyRepo, hub: HubProcess, state: StateSnapshot, where: str
) -> None:
    rerun = repo.release(hub, "-n", "2")
    assert rerun.returncode == 0, rerun.output
    final, bad = check_step(repo, hub.db, state, repo.head(), where)
    assert not bad, bad.found
    assert final.baseline == repo.head()
    assert creations(hub.db) == {key: 1 for key in VERSIONS}


def test_sigkill_of_a_hub_mid_release_then_the_other_process_completes(
    repo: PolicyRepo,
    postgres_db: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    killed = HubProcess(tmp_path / "hub-a", faults="latency_ms=300,seed=5", db=postgres_db)
    survivor = killed.twin(tmp_path / "hub-b")
    try:
        run = start_release(repo, killed, "-n", "2", extra_env=FAST)
        while run.alive() and creation_count(killed.db) < 2:
            time.sleep(0.02)
        killed.kill()
        crashed = run.wait(300)
        assert crashed.returncode == 1, crashed.output
        state, bad = check_step(repo, killed.db, StateSnapshot({}, None), repo.head(), "kill")
        assert not bad, bad.found
        assert state.baseline is None
        assert 2 <= creation_count(killed.db) < len(VERSIONS)
        rerun_to_completion(repo, survivor, state, "rerun through the other process")
    finally:
        killed.stop()
        survivor.stop()
    record(figures_file(tmp_path_factory), "postgres", kills=1, releases=2, lost=0, duplicated=0)


def test_sigkill_of_a_database_backend_mid_commit(
    repo: PolicyRepo,
    own_postgres: PostgresServer,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The backend of a POST that is committing is killed with SIGKILL, so the server ends every
    session and recovers: both hub processes lose all their connections at once, one of them in
    a COMMIT whose outcome it cannot know (503). A deferred trigger makes each COMMIT last
    0.3 s, so the kill surely lands in one."""
    url = own_postgres.create_database()
    first = HubProcess(tmp_path / "hub-a", db=url)
    second = first.twin(tmp_path / "hub-b")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$"
            )
            conn.execute(
                "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON policies"
                " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()"
            )
        run = start_release(repo, first, "-n", "2")
        committing = hub_backend(url, "state = 'active' AND query = 'COMMIT'", within=60)
        os.kill(committing, signal.SIGKILL)
        result = run.wait(300)
        # Retries ride out the recovery (a second or so); a version whose retries ran out fails.
        assert result.returncode in (0, 1), result.output
        assert "INTERNALERROR" not in result.output
        assert injected_refusals(first.workdir)["503"] >= 1, "the lost COMMIT was answered 503"
        assert "Traceback" not in first.stderr()
        state, bad = check_step(repo, url, StateSnapshot({}, None), repo.head(), "backend killed")
        assert not bad, bad.found
        rerun_to_completion(repo, second, state, "rerun after the crash recovery")
    finally:
        first.stop()
        second.stop()
    record(figures_file(tmp_path_factory), "postgres", kills=1, releases=2, lost=0, duplicated=0)
