"""The reference hub on PostgreSQL as an operator meets it (docs/contract.md section 6): the URL
from `--db` or POLICY_HUB_DB with its password never shown, one-line errors for a URL or database
that cannot be used, the schema created once by processes starting together, and a database that is
down at start, restarts mid-run or loses a connection mid-POST: `503` (never a traceback, never a
`201` that was not committed), `/health` saying so, and recovery when it is back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
import requests

from policy_hub.attest import load_signing_key, verify_envelope
from tests.hubprocess import HubProcess
from tests.pgserver import PostgresServer, free_port, hub_backend
from tests.test_hub_api import assert_json_error, auth, policy_body
from tests.test_hub_cli import one_line_error, run_cli

SECRET = "s3cret-Pa55word"
RECOVERY_SECONDS = 20.0


def with_password(url: str) -> str:
    # The test server trusts loopback, so a password is accepted and ignored: it only has to
    # never be shown.
    return url.replace("postgres@", f"postgres:{SECRET}@", 1)


def post(hub: HubProcess, body: dict, key: str, timeout: float = 30) -> requests.Response:
    return requests.post(
        f"{hub.url}/policies", json=body, headers=auth(hub.token, key), timeout=timeout
    )


def wait_healthy(hub: HubProcess, within: float = RECOVERY_SECONDS) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if requests.get(f"{hub.url}/health", timeout=10).status_code == 200:
            return
        time.sleep(0.2)
    raise AssertionError(f"the hub did not recover within {within} s:\n{hub.stderr()}")


def assert_unavailable(response: requests.Response) -> None:
    body = assert_json_error(response, 503, "unavailable")
    assert SECRET not in response.text, body


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, fragment",
    [
        (f"postgresql://hub:{SECRET}@[::1/hub", "not a valid URL"),
        (f"postgresql://hub:{SECRET}@127.0.0.1:port/hub", "not a valid URL"),
        (f"postgresql://hub:{SECRET}@127.0.0.1:5432/hub?colour=blue", "not a valid URL"),
        (f"postgresql://hub:{SECRET}@127.0.0.1:5432", "no database name"),
        (f"mysql://hub:{SECRET}@127.0.0.1/hub", "unknown scheme"),
        # Unencoded in the password, these end the user part for a URL parser, which then
        # sees no password to hide.
        (f"postgresql://hub:{SECRET}/x@127.0.0.1:5432/hub", "not a valid URL"),
        (f"postgresql://hub:{SECRET}#x@127.0.0.1:5432/hub", "not a valid URL"),
        (f"postgresql://hub:{SECRET}?x@127.0.0.1:5432/hub", "not a valid URL"),
    ],
    ids=["bracket", "port", "parameter", "no-dbname", "scheme", "slash", "hash", "question"],
)
def test_a_bad_database_url_is_one_line_without_the_password(url: str, fragment: str) -> None:
    line = one_line_error(run_cli("--db", url, "--no-auth"), fragment)
    assert SECRET not in line


def test_no_database_at_all_is_one_line() -> None:
    one_line_error(run_cli("--no-auth"), "POLICY_HUB_DB")


def test_a_database_that_does_not_exist_is_one_line(postgres_server: PostgresServer) -> None:
    url = with_password(postgres_server.url("no_such_database"))
    line = one_line_error(run_cli("--db", url, "--no-auth"), "does not exist")
    assert SECRET not in line and "postgres:***@" in line


def test_a_schema_newer_than_the_hub_is_refused(postgres_db: str) -> None:
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE policy_hub_schema (version integer PRIMARY KEY)")
        conn.execute("INSERT INTO policy_hub_schema VALUES (99)")
    one_line_error(run_cli("--db", postgres_db, "--no-auth"), "schema version is 99", "upgrade")


def test_the_url_from_the_environment_and_its_password_never_shown(tmp_path: Path) -> None:
    """POLICY_HUB_DB names a database that does not answer (a closed port): the hub starts,
    says so once, answers 503 everywhere, and no line or body holds the password."""
    url = f"postgresql://hub:{SECRET}@127.0.0.1:{free_port()}/hub"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_HUB_")}
    env["POLICY_HUB_DB"] = url
    env["POLICY_HUB_SERVER_TOKENS"] = "write:env-writer"
    env["POLICY_HUB_SIGNING_KEY"] = str(tmp_path / "signing-key.pem")
    err_path = tmp_path / "hub.stderr"
    with open(err_path, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "policy_hub", "serve", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            text=True,
        )
    try:
        assert process.stdout is not None
        hub_url = process.stdout.readline().strip().rsplit(" ", 1)[1]
        started = time.monotonic()
        health = requests.get(f"{hub_url}/health", timeout=10)
        assert_unavailable(health)
        assert time.monotonic() - started < 3, "a known outage is answered at once"
        write = requests.post(
            f"{hub_url}/policies",
            json=policy_body(),
            headers=auth("env-writer", "k"),
            timeout=10,
        )
        assert_unavailable(write)
    finally:
        process.terminate()
        assert process.wait(15) == 0
    log = err_path.read_text()
    assert "WARNING: the database postgresql://hub:***@127.0.0.1:" in log
    assert "answering 503 until it does" in log
    assert SECRET not in log and "Traceback" not in log


# -- the schema ----------------------------------------------------------------------------


def test_processes_starting_together_create_the_schema_once(
    postgres_db: str, tmp_path: Path
) -> None:
    first = HubProcess(tmp_path / "h0", db=postgres_db, start=False)
    hubs = [first] + [
        HubProcess(tmp_path / f"h{i}", db=postgres_db, start=False, token_file=first.token_file)
        for i in (1, 2, 3)
    ]
    threads = [threading.Thread(target=hub.start) for hub in hubs]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for hub in hubs:
            assert requests.get(f"{hub.url}/health", timeout=10).json()["database"] == "ok"
        assert first.query("SELECT version FROM policy_hub_schema ORDER BY version") == [(1,), (2,)]
        # Each process sees what another wrote.
        assert post(hubs[1], policy_body(), "k").status_code == 201
        answer = requests.get(
            f"{hubs[3].url}/policies/require-tags/1.2.0", headers=auth(first.token), timeout=10
        )
        assert answer.status_code == 200
    finally:
        for hub in hubs:
            hub.stop()


def test_a_schema_lock_held_elsewhere_is_waited_for_a_bounded_time(
    postgres_db: str, tmp_path: Path
) -> None:
    """Another process stuck inside its migration (or gone with its machine) holds the schema
    lock: a hub starting meanwhile waits its lock timeout, not for ever, answers 503 (never a
    500), and migrates once the lock is free."""
    from policy_hub.postgres_store import SCHEMA_LOCK_ID

    with psycopg.connect(postgres_db, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_ID,))
        with HubProcess(tmp_path / "hub", db=postgres_db) as hub:
            assert "does not answer" in hub.stderr()
            assert_unavailable(requests.get(f"{hub.url}/health", timeout=10))
            assert_unavailable(post(hub, policy_body(), "k"))
            holder.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_ID,))
            wait_healthy(hub)
            assert post(hub, policy_body(), "k").status_code == 201
            assert "Traceback" not in hub.stderr()


# -- outages ---------------------------------------------------------------------------------


def test_database_down_at_start_then_back(own_postgres: PostgresServer, tmp_path: Path) -> None:
    url = own_postgres.create_database()
    own_postgres.stop()
    with HubProcess(tmp_path / "hub", db=url) as hub:
        assert "does not answer" in hub.stderr()
        assert_unavailable(requests.get(f"{hub.url}/health", timeout=10))
        assert_unavailable(post(hub, policy_body(), "k"))
        read = requests.get(f"{hub.url}/policies/a/1.0.0", headers=auth(hub.token), timeout=10)
        assert_unavailable(read)
        own_postgres.start()
        wait_healthy(hub)
        # The schema is made on the first request that reaches the database.
        assert post(hub, policy_body(), "k").status_code == 201
        assert hub.created("require-tags", "1.2.0") == 1
        # The key could not be listed at start: the create listed it with the record it signed.
        keys = requests.get(f"{hub.url}/keys", timeout=10).json()["keys"]
        assert [key["kid"] for key in keys] == [load_signing_key(hub.signing_key).kid]
        envelope = requests.get(
            f"{hub.url}/policies/require-tags/1.2.0/attestation",
            headers=auth(hub.token),
            timeout=10,
        ).json()
        verify_envelope(envelope, keys)
        assert "Traceback" not in hub.stderr()


def test_database_restart_mid_run_loses_nothing(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    url = own_postgres.create_database()
    with HubProcess(tmp_path / "hub", db=url) as hub:
        first = post(hub, policy_body(), "k1")
        assert first.status_code == 201
        own_postgres.stop()
        started = time.monotonic()
        assert_unavailable(post(hub, policy_body(version="2.0.0"), "k2"))
        assert_unavailable(requests.get(f"{hub.url}/health", timeout=10))
        read = requests.get(
            f"{hub.url}/policies/require-tags/1.2.0", headers=auth(hub.token), timeout=10
        )
        assert_unavailable(read)
        assert time.monotonic() - started < 15, "every wait is bounded"
        own_postgres.start()
        wait_healthy(hub)
        # The 503 acknowledged nothing: the retry with the same key creates, once.
        assert post(hub, policy_body(version="2.0.0"), "k2").status_code == 201
        replay = post(hub, policy_body(), "k1")
        assert (replay.status_code, replay.content) == (201, first.content)
        assert hub.records() == [
            ("require-tags", "1.2.0", policy_body()["digest"]),
            ("require-tags", "2.0.0", policy_body(version="2.0.0")["digest"]),
        ]
        assert hub.created("require-tags", "2.0.0") == 1
        log = hub.stderr()
        assert "unavailable" in log and "answers again" in log and "Traceback" not in log


def test_terminated_idle_connections_are_replaced_unseen(
    postgres_server: PostgresServer, hub_factory
) -> None:
    url = postgres_server.create_database()
    hub = hub_factory(db=url)
    assert post(hub, policy_body(), "k").status_code == 201
    backends = postgres_server.backends(url)
    assert backends, "the hub holds pooled connections"
    with psycopg.connect(url, autocommit=True) as conn:
        for pid in backends:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    # The pool checks a connection before lending it: a dead one is replaced, not answered 503.
    for _ in range(3):
        read = requests.get(
            f"{hub.url}/policies/require-tags/1.2.0", headers=auth(hub.token), timeout=10
        )
        assert read.status_code == 200, read.text
    assert post(hub, policy_body(version="2.0.0"), "k2").status_code == 201


def test_a_key_held_by_another_transaction_is_waited_for_then_in_flight(
    postgres_server: PostgresServer, hub_factory
) -> None:
    """Another process's POST of the same key, still in its transaction (here the test's own
    transaction stands in for it): waited for up to the lock timeout, then `409 in-flight`; a
    connection that dies while waiting is a `503`; and the key is free once the holder is gone."""
    url = postgres_server.create_database()
    hub = hub_factory(db=url)
    body = policy_body()
    with psycopg.connect(url) as holder:  # not autocommit: the transaction stays open
        holder.execute(
            "INSERT INTO idempotency (key, body_sha256, status, response_json)"
            " VALUES ('held', 'x', 0, '')"
        )
        started = time.monotonic()
        assert_json_error(post(hub, body, "held"), 409, "in-flight")
        assert 2.5 < time.monotonic() - started < 10, "waited for the lock timeout (3 s)"

        answers: list[requests.Response] = []
        waiting = threading.Thread(target=lambda: answers.append(post(hub, body, "held")))
        waiting.start()
        pid = hub_backend(url, "wait_event_type = 'Lock'")
        holder.execute("SELECT pg_terminate_backend(%s)", (pid,))
        waiting.join(30)
        assert_unavailable(answers[0])
        holder.rollback()
    assert post(hub, body, "held").status_code == 201
    assert hub.created("require-tags", "1.2.0") == 1


def test_a_connection_lost_during_commit_is_503_never_201(
    postgres_server: PostgresServer, hub_factory
) -> None:
    """A deferred trigger makes COMMIT slow; the hub's connection is killed while its COMMIT
    runs. The hub cannot know whether it committed, so it must not say 201: it says 503, and the
    client's retry with the same key settles it (here: nothing was committed, so it creates)."""
    url = postgres_server.create_database()
    hub = hub_factory(db=url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_sleep(5); RETURN NULL; END $$"
        )
        conn.execute(
            "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON policies"
            " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()"
        )
        answers: list[requests.Response] = []
        posting = threading.Thread(
            target=lambda: answers.append(post(hub, policy_body(), "commit-lost"))
        )
        posting.start()
        pid = hub_backend(url, "state = 'active' AND query = 'COMMIT'")
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        posting.join(30)
        assert_unavailable(answers[0])
        assert hub.records() == []
        conn.execute("DROP TRIGGER slow_commit ON policies")
    retry = post(hub, policy_body(), "commit-lost")
    assert retry.status_code == 201, retry.text
    assert hub.created("require-tags", "1.2.0") == 1
    assert "Traceback" not in hub.stderr()
