"""Who may write what, provenance, attestations, /keys and yank (docs/contract.md section 9)
against real hub processes over loopback, on both engines where the database is the witness.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from policy_hub.attest import PREDICATE_TYPE, EnvelopeError, load_signing_key, pae, verify_envelope
from policy_hub.auth import READ, WRITE, Caller, TokenConfigError, Tokens, parse_token_lines
from policy_hub.engines import open_store
from policy_hub.sqlite_store import SqliteStore
from policy_hub.store import Provenance, sha256_of_body
from publisher.hub.client import HubRecord, hub_record
from tests.hubprocess import SCOPED_LABEL, HubProcess, db_query, on_both_engines
from tests.test_hub_api import RELEASE_SHA, assert_json_error, auth, policy_body
from tests.test_hub_cli import one_line_error, run_cli

# -- token lines and the Caller (unit) ---------------------------------------------------


def test_token_lines_with_globs_and_labels() -> None:
    entries = parse_token_lines(
        [
            "write plain-token",
            "write scoped-token deny-*,require-tags label=team-a",
            "write labelled-token label=ci.bot_1",
            "read reader-token",
        ],
        "tokens",
    )
    assert [(e.scope, e.globs, e.label) for e in entries] == [
        (WRITE, None, None),
        (WRITE, ("deny-*", "require-tags"), "team-a"),
        (WRITE, None, "ci.bot_1"),
        (READ, None, None),
    ]
    assert "scoped-token" not in repr(entries)


@pytest.mark.parametrize(
    "line",
    [
        "write tok Deny-*",  # uppercase can never match a name
        "write tok deny-*,",  # an empty glob
        "write tok deny-* require-tags",  # globs are one comma-separated word
        "read tok deny-*",  # a read token writes nothing: globs make no sense
        "write tok label=",  # an empty label
        "write tok label=has space",
        "write tok deny-* label=a label=b",
        "admin tok",
        "write",
        "write tök",
    ],
)
def test_a_bad_token_line_is_named_never_shown(line: str) -> None:
    with pytest.raises(TokenConfigError) as raised:
        parse_token_lines(["# first", line], "/etc/hub/tokens")
    message = str(raised.value)
    assert message.startswith("/etc/hub/tokens:2: expected")
    assert "tok " not in message and "tök" not in message


def test_a_caller_may_write_only_its_globs() -> None:
    tokens = Tokens(
        entries=tuple(
            parse_token_lines(
                ["write a deny-*,require-tags label=team", "read a", "read r", "write w"], "t"
            )
        )
    )
    scoped = tokens.caller_of("Bearer a")
    assert scoped == Caller(
        frozenset({READ, WRITE}), ("deny-*", "require-tags"), {"kind": "token", "label": "team"}
    )
    assert scoped.may_write("deny-privileged") and scoped.may_write("require-tags")
    assert not scoped.may_write("require-tags-x") and not scoped.may_write("allow-all")
    reader = tokens.caller_of("Bearer r")
    assert reader is not None and reader.scopes == {READ} and not reader.may_write("deny-x")
    writer = tokens.caller_of("Bearer w")
    assert writer is not None and writer.globs is None and writer.may_write("anything")
    assert writer.publisher == {"kind": "token", "label": None}
    assert tokens.caller_of("Bearer unknown") is None and tokens.caller_of(None) is None
    anyone = Tokens(open_access=True).caller_of(None)
    assert anyone is not None and anyone.may_write("x") and anyone.publisher["label"] is None


# -- forbidden-name over HTTP ------------------------------------------------------------


@on_both_engines
def test_a_post_outside_the_tokens_globs_is_403_and_stores_nothing(hub: HubProcess) -> None:
    body = policy_body(name="require-tags")
    refused = requests.post(
        f"{hub.url}/policies", json=body, headers=auth(hub.scoped_token, "k1"), timeout=10
    )
    assert assert_json_error(refused, 403, "forbidden-name")["name"] == "require-tags"
    assert hub.records() == []
    # The same answer when the version exists: the token learns nothing and changes nothing.
    assert (
        requests.post(
            f"{hub.url}/policies", json=body, headers=auth(hub.token, "k2"), timeout=10
        ).status_code
        == 201
    )
    again = requests.post(
        f"{hub.url}/policies", json=body, headers=auth(hub.scoped_token, "k3"), timeout=10
    )
    assert assert_json_error(again, 403, "forbidden-name")["name"] == "require-tags"
    assert hub.created("require-tags", "1.2.0") == 1
    # Its key was never claimed: the same key may still be used for a name it may write.
    allowed = requests.post(
        f"{hub.url}/policies",
        json=policy_body(name="deny-privileged"),
        headers=auth(hub.scoped_token, "k1"),
        timeout=10,
    )
    assert allowed.status_code == 201, allowed.text
    assert hub.records()[0][0] == "deny-privileged"


# -- provenance: publisher, attestation, /keys ---------------------------------------------


def post_as(hub: HubProcess, token: str, body: dict[str, Any], key: str) -> requests.Response:
    return requests.post(f"{hub.url}/policies", json=body, headers=auth(token, key), timeout=10)


def get(hub: HubProcess, path: str, token: str | None = None) -> requests.Response:
    headers = auth(token) if token else {}
    return requests.get(f"{hub.url}{path}", headers=headers, timeout=10)


def keys_of(hub: HubProcess) -> list[dict[str, Any]]:
    answer = get(hub, "/keys")
    assert answer.status_code == 200, answer.text
    keys: list[dict[str, Any]] = answer.json()["keys"]
    return keys


@on_both_engines
def test_a_record_carries_its_publisher_and_a_signed_statement_of_itself(
    hub: HubProcess,
) -> None:
    body = policy_body(name="deny-privileged")
    created = post_as(hub, hub.scoped_token, body, "k1")
    assert created.status_code == 201, created.text
    record = created.json()
    assert record["publisher"] == {"kind": "token", "label": SCOPED_LABEL}
    assert record["yanked"] is None
    assert get(hub, "/policies/deny-privileged/1.2.0", hub.read_token).json() == record
    # Unlabelled tokens publish as {"kind": "token", "label": null}.
    plain = post_as(hub, hub.token, policy_body(name="plain"), "k2").json()
    assert plain["publisher"] == {"kind": "token", "label": None}

    envelope = get(hub, "/policies/deny-privileged/1.2.0/attestation", hub.read_token).json()
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    keys = keys_of(hub)
    assert [set(k) for k in keys] == [{"kty", "crv", "x", "kid"}]
    keyid, statement = verify_envelope(envelope, keys)
    assert keyid == keys[0]["kid"] == envelope["signatures"][0]["keyid"]
    assert statement == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {
                "name": "deny-privileged@1.2.0",
                "digest": {"sha256": body["digest"][len("sha256:") :]},
            }
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "publisher": {"kind": "token", "label": SCOPED_LABEL},
            "release_sha": RELEASE_SHA,
            "published_at": record["published_at"],
        },
    }
    # The signature is over DSSE's PAE of exactly the payload: one changed byte breaks it.
    payload = base64.b64decode(envelope["payload"])
    forged = {**envelope, "payload": base64.b64encode(payload.replace(b"1.2.0", b"1.2.1")).decode()}
    with pytest.raises(EnvelopeError, match="no signature verifies"):
        verify_envelope(forged, keys)
    # Stored once: a replay and later reads give the very same envelope.
    assert post_as(hub, hub.scoped_token, body, "k1").status_code == 201
    again = get(hub, "/policies/deny-privileged/1.2.0/attestation", hub.read_token).json()
    assert again == envelope
    assert hub.query("SELECT COUNT(*) FROM signing_keys") == [(1,)]


def test_pae_is_dsses_encoding() -> None:
    # The example of the DSSE v1 specification (protocol.md).
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


@on_both_engines
def test_the_body_cannot_say_who_published(hub: HubProcess) -> None:
    body = {**policy_body(), "publisher": {"kind": "github-oidc", "repository": "evil/repo"}}
    refused = post_as(hub, hub.token, body, "k")
    assert assert_json_error(refused, 422, "invalid")["errors"][0]["loc"] == ["body", "publisher"]
    assert hub.records() == []


@on_both_engines
def test_a_new_signing_key_is_added_to_keys_and_old_records_still_verify(
    hub: HubProcess, tmp_path: Path
) -> None:
    assert post_as(hub, hub.token, policy_body(version="1.0.0"), "k1").status_code == 201
    first_keys = keys_of(hub)
    hub.signing_key = tmp_path / "rotated.pem"
    hub.restart()
    second_keys = keys_of(hub)
    # Listed at start, before it signs anything; the old one stays.
    assert len(second_keys) == 2 and second_keys[0] == first_keys[0]
    assert post_as(hub, hub.token, policy_body(version="2.0.0"), "k2").status_code == 201
    for version, key in (("1.0.0", first_keys[0]), ("2.0.0", second_keys[1])):
        path = f"/policies/require-tags/{version}/attestation"
        envelope = get(hub, path, hub.read_token).json()
        assert verify_envelope(envelope, keys_of(hub))[0] == key["kid"]
    assert (tmp_path / "rotated.pem").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_keys_rotated_within_one_second_are_listed_in_the_order_first_used(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # SQLite keeps first_used_at in whole seconds: a key rotated within that second (as a test's
    # restart does) must still come after the old one, whatever the order of their kids.
    db = tmp_path / "hub.db" if engine == "sqlite" else request.getfixturevalue("postgres_db")
    store = open_store(db)
    store.initialize()
    old, new = (
        {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": k} for x, k in (("x1", "z"), ("x2", "a"))
    )
    try:
        store.add_key(old)
        store.add_key(new)
        listed = store.keys()
        assert [key["kid"] for key in listed] == ["z", "a"]
    finally:
        store.close()


def test_processes_on_one_postgresql_database_agree_on_the_keys(
    postgres_db: str, tmp_path: Path
) -> None:
    first = HubProcess(tmp_path / "a", db=postgres_db)
    # Another process of the same hub with another key (say, mid-rotation).
    second = HubProcess(
        tmp_path / "b", db=postgres_db, token_file=first.token_file, signing_key=tmp_path / "b.pem"
    )
    with first, second:
        for hub, version in ((first, "1.0.0"), (second, "2.0.0")):
            created = post_as(hub, first.token, policy_body(version=version), version)
            assert created.status_code == 201, created.text
        assert keys_of(first) == keys_of(second)
        assert len(keys_of(first)) == 2
        for version in ("1.0.0", "2.0.0"):
            path = f"/policies/require-tags/{version}/attestation"
            verify_envelope(get(first, path, first.read_token).json(), keys_of(second))


def test_a_signing_key_file_that_is_not_ed25519_is_one_line_naming_it(tmp_path: Path) -> None:
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cases = {
        "rsa.pem": (rsa_pem, "not an Ed25519 key"),
        "garbage.pem": (b"not-a-key SECRET-CONTENT-1234\n", "not a PEM private key"),
    }
    for file, (content, said) in cases.items():
        key = tmp_path / file
        key.write_bytes(content)
        result = run_cli(
            "--db", str(tmp_path / "hub.sqlite3"), "--no-auth", "--signing-key", str(key)
        )
        line = one_line_error(result, str(key), said)
        assert "SECRET-CONTENT" not in line and "PRIVATE KEY" not in line
    folder = tmp_path / "missing-folder" / "key.pem"
    one_line_error(
        run_cli("--db", str(tmp_path / "hub.sqlite3"), "--no-auth", "--signing-key", str(folder)),
        str(folder),
        "cannot create it",
    )


def test_a_postgresql_hub_needs_a_signing_key(postgres_db: str) -> None:
    one_line_error(run_cli("--db", postgres_db, "--no-auth"), "--signing-key")


def test_a_sqlite_hub_keeps_its_key_beside_the_database(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path, start=False)  # its files; started here without --signing-key
    command = [sys.executable, "-m", "policy_hub", "serve", "--db", str(hub.db_path)]
    command += ["--port", "0", "--token-file", str(hub.token_file)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("policy-hub listening on ")
        key = tmp_path / "hub.sqlite3.signing-key.pem"
        assert key.stat().st_mode & 0o777 == 0o600
        assert b"PRIVATE KEY" in key.read_bytes()
    finally:
        process.terminate()
        assert process.wait(10) == 0


def test_the_key_file_is_made_once_when_many_start_together(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    signers: list[Any] = []

    def load() -> None:
        try:
            signers.append(load_signing_key(path))
        except Exception as exc:  # the assertion below shows it
            signers.append(exc)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({signer.kid for signer in signers}) == 1, signers
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]


# -- yank ----------------------------------------------------------------------------------


def yank(hub: HubProcess, token: str, path: str, body: Any) -> requests.Response:
    return requests.post(
        f"{hub.url}/policies/{path}/yank", json=body, headers=auth(token), timeout=10
    )


@on_both_engines
def test_a_yank_marks_the_version_once_and_it_is_never_published_again(hub: HubProcess) -> None:
    body = policy_body(name="deny-privileged")
    created = post_as(hub, hub.token, body, "k1").json()
    first = yank(hub, hub.scoped_token, "deny-privileged/1.2.0", {"reason": "CVE-2026-0001"})
    assert first.status_code == 200, first.text
    record = first.json()
    assert record["yanked"]["reason"] == "CVE-2026-0001"
    assert {k: v for k, v in record.items() if k != "yanked"} == {
        k: v for k, v in created.items() if k != "yanked"
    }
    # A second yank answers the first, unchanged, whatever its reason.
    second = yank(hub, hub.token, "deny-privileged/1.2.0", {"reason": "another"})
    assert second.status_code == 200 and second.json() == record
    assert get(hub, "/policies/deny-privileged/1.2.0", hub.read_token).json() == record
    # Never deleted, never published again: a POST of it is still 409 exists.
    again = post_as(hub, hub.token, body, "k2")
    assert assert_json_error(again, 409, "exists")["digest"] == body["digest"]
    assert hub.records() == [("deny-privileged", "1.2.0", body["digest"])]
    rows = hub.query("SELECT outcome FROM audit WHERE method = 'YANK' ORDER BY id")
    assert rows == [("yanked",), ("already-yanked",)]


@on_both_engines
def test_a_yank_outside_the_tokens_globs_is_403_whether_or_not_it_exists(
    hub: HubProcess,
) -> None:
    assert post_as(hub, hub.token, policy_body(), "k1").status_code == 201
    for path in ("require-tags/1.2.0", "require-tags/9.9.9"):
        refused = yank(hub, hub.scoped_token, path, {"reason": "x"})
        assert assert_json_error(refused, 403, "forbidden-name")["name"] == "require-tags"
    read_only = yank(hub, hub.read_token, "require-tags/1.2.0", {"reason": "x"})
    assert_json_error(read_only, 403, "forbidden")
    assert get(hub, "/policies/require-tags/1.2.0", hub.read_token).json()["yanked"] is None
    missing = yank(hub, hub.token, "require-tags/9.9.9", {"reason": "x"})
    assert_json_error(missing, 404, "not-found")


@pytest.mark.parametrize(
    "body",
    [
        {"reason": "x" * 501},
        {"reason": "two\nlines"},
        {"reason": "bell\x07"},
        {"reason": "nel\x85"},
        {"reason": ""},
        {"reason": "   "},
        {"reason": 5},
        {},
        {"reason": "ok", "extra": 1},
    ],
    ids=["long", "newline", "bell", "c1", "empty", "blank", "number", "missing", "extra"],
)
def test_a_bad_yank_reason_is_422_naming_the_field(hub: HubProcess, body: Any) -> None:
    assert post_as(hub, hub.token, policy_body(), "k1").status_code == 201
    refused = yank(hub, hub.token, "require-tags/1.2.0", body)
    errors = assert_json_error(refused, 422, "invalid")["errors"]
    field = "extra" if "extra" in body else "reason"
    assert errors[0]["loc"] == ["body", field], errors
    assert get(hub, "/policies/require-tags/1.2.0", hub.read_token).json()["yanked"] is None


def test_a_yank_reason_of_the_cap_with_any_script_is_kept(hub: HubProcess) -> None:
    assert post_as(hub, hub.token, policy_body(), "k1").status_code == 201
    reason = ("Ünïcode ✓ " * 50)[:500]
    answer = yank(hub, hub.token, "require-tags/1.2.0", {"reason": reason})
    assert answer.status_code == 200 and answer.json()["yanked"]["reason"] == reason


# -- databases made before provenance are migrated on start --------------------------------

OLD_SQLITE = Path(__file__).parent / "hubdb" / "hub-before-provenance.sqlite3"
OLD_RECORDS = [
    ("deny-privileged", "2.1.0", policy_body(name="deny-privileged", version="2.1.0")["digest"]),
    ("require-tags", "1.0.0", policy_body(name="require-tags", version="1.0.0")["digest"]),
]


def assert_old_records_served(hub: HubProcess) -> None:
    """The records an earlier hub wrote, unchanged, with `publisher: null`, no attestation, and
    their idempotency keys still replaying."""
    assert hub.records() == OLD_RECORDS
    for name, version, digest in OLD_RECORDS:
        record = get(hub, f"/policies/{name}/{version}", hub.read_token).json()
        body = policy_body(name=name, version=version)
        assert record["digest"] == digest and record["definition"] == body["definition"]
        assert record["publisher"] is None and record["yanked"] is None
        missing = get(hub, f"/policies/{name}/{version}/attestation", hub.read_token)
        assert (
            "before this hub signed" in assert_json_error(missing, 404, "no-attestation")["detail"]
        )
    replay = post_as(hub, hub.token, policy_body(name="require-tags", version="1.0.0"), "old-key-1")
    assert replay.status_code == 201 and "publisher" not in replay.json()  # the first answer
    assert hub.created("require-tags", "1.0.0") == 1
    # Old records can be yanked; new ones get provenance.
    assert yank(hub, hub.token, "require-tags/1.0.0", {"reason": "old"}).status_code == 200
    new = post_as(hub, hub.token, policy_body(name="require-tags", version="3.0.0"), "new-key")
    assert new.json()["publisher"] == {"kind": "token", "label": None}
    envelope = get(hub, "/policies/require-tags/3.0.0/attestation", hub.read_token).json()
    verify_envelope(envelope, keys_of(hub))


def test_a_sqlite_database_of_the_earlier_hub_is_migrated_on_start(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path, start=False)
    shutil.copyfile(OLD_SQLITE, hub.db_path)
    hub.start()
    with hub:
        assert_old_records_served(hub)
        hub.restart()  # the migration is done once; starting again changes nothing
        assert len(hub.records()) == 3


def test_sqlite_processes_starting_at_once_on_an_old_database_migrate_it_once(
    tmp_path: Path,
) -> None:
    """SQLite is one process per file in service, but the schema code must not break when two
    start together (a restart overlapping the old process): each adds what is missing under
    BEGIN IMMEDIATE, so nobody adds a column twice."""
    db = tmp_path / "hub.sqlite3"
    shutil.copyfile(OLD_SQLITE, db)
    failures: list[BaseException] = []

    def start() -> None:
        try:
            SqliteStore(db).initialize()
        except BaseException as exc:  # shown by the assertion
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    columns = [row[1] for row in db_query(db, "PRAGMA table_info(policies)")]
    assert columns[-4:] == ["publisher", "attestation", "yanked_at", "yank_reason"]


# The schema of PostgreSQL hubs before 2026-12-06, as policy_hub/postgres_store.py of commit
# 2bc3e6b created it (MIGRATIONS[0] and its bookkeeping), copied here so the test keeps
# describing that database however the code changes.
OLD_POSTGRES_DDL = (
    """CREATE TABLE policy_hub_schema (
        version integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE policies (
        name text NOT NULL,
        version text NOT NULL,
        digest text NOT NULL,
        published_at text NOT NULL,
        metadata text NOT NULL,
        definition text NOT NULL,
        release_sha text NOT NULL,
        idempotency_key text NOT NULL,
        PRIMARY KEY (name, version)
    )""",
    """CREATE TABLE idempotency (
        key text PRIMARY KEY,
        body_sha256 text NOT NULL,
        status integer NOT NULL,
        response_json text NOT NULL,
        answered_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE audit (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        method text NOT NULL,
        name text,
        version text,
        idempotency_key text,
        status integer NOT NULL,
        outcome text NOT NULL
    )""",
    "CREATE INDEX audit_by_version ON audit (name, version, status)",
    "INSERT INTO policy_hub_schema (version) VALUES (1)",
)


def test_a_postgresql_database_of_the_earlier_hub_is_migrated_once_by_processes_starting_at_once(
    postgres_db: str, tmp_path: Path
) -> None:
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        for statement in OLD_POSTGRES_DDL:
            conn.execute(statement)
        # Its records, copied from the SQLite file the earlier hub wrote (the same rows).
        for row in db_query(
            OLD_SQLITE,
            "SELECT name, version, digest, published_at, metadata, definition, release_sha,"
            " idempotency_key FROM policies",
        ):
            conn.execute("INSERT INTO policies VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", tuple(row))
        for row in db_query(
            OLD_SQLITE, "SELECT key, body_sha256, status, response_json FROM idempotency"
        ):
            conn.execute("INSERT INTO idempotency VALUES (%s, %s, %s, %s)", tuple(row))
        conn.execute(
            "INSERT INTO audit (method, name, version, idempotency_key, status, outcome)"
            " VALUES ('POST', 'require-tags', '1.0.0', 'old-key-1', 201, 'created')"
        )
    first = HubProcess(tmp_path / "h0", db=postgres_db, start=False)
    hubs = [first] + [
        HubProcess(
            tmp_path / f"h{i}",
            db=postgres_db,
            start=False,
            token_file=first.token_file,
            signing_key=first.signing_key,
        )
        for i in (1, 2, 3)
    ]
    threads = [threading.Thread(target=hub.start) for hub in hubs]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(hub.url for hub in hubs), [hub.stderr() for hub in hubs]
        assert first.query("SELECT version FROM policy_hub_schema ORDER BY version") == [
            (1,),
            (2,),
        ]
        assert_old_records_served(hubs[2])
        assert len(keys_of(hubs[1])) == 1  # one key file for all four
    finally:
        for hub in hubs:
            hub.stop()


def test_the_harness_reads_records_with_provenance_and_yank(hub: HubProcess) -> None:
    """The harness's one check of a hub record (publisher/hub/client.py, used by its GET and
    409 paths: publisher/release/hubchecks.py, delivery.py) takes the new fields in its stride."""
    body = policy_body()
    assert post_as(hub, hub.token, body, "k").status_code == 201
    assert yank(hub, hub.token, "require-tags/1.2.0", {"reason": "r"}).status_code == 200
    record = get(hub, "/policies/require-tags/1.2.0", hub.read_token).json()
    assert record["publisher"] and record["yanked"]
    assert hub_record(record, "require-tags", "1.2.0") == HubRecord(
        "require-tags", "1.2.0", body["digest"]
    )
    exists = post_as(hub, hub.token, body, "k2").json()
    assert hub_record(exists, "require-tags", "1.2.0") is not None


def test_a_key_that_signs_is_listed_by_the_creating_transaction(tmp_path: Path) -> None:
    """A process whose start could not list its key (a database down at start) lists it with
    the first record it signs; later creates of the process skip that statement."""
    store = SqliteStore(tmp_path / "hub.sqlite3")
    store.initialize()
    signer = load_signing_key(tmp_path / "key.pem")
    provenance = Provenance({"kind": "token", "label": None}, signer)
    assert store.keys() == []
    for version in ("1.0.0", "2.0.0"):
        body = policy_body(version=version)
        assert store.publish(version, sha256_of_body(body), body, provenance).status == 201
    assert store.keys() == [signer.jwk]
    # Another process (its own store object) with the same key lists it once, not twice.
    other = SqliteStore(tmp_path / "hub.sqlite3")
    body = policy_body(version="3.0.0")
    assert other.publish("3", sha256_of_body(body), body, provenance).status == 201
    assert store.keys() == [signer.jwk]


@on_both_engines
def test_racing_yanks_all_answer_the_one_that_won(hub: HubProcess) -> None:
    assert post_as(hub, hub.token, policy_body(), "k").status_code == 201
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def racer(n: int) -> None:
        answer = yank(hub, hub.token, "require-tags/1.2.0", {"reason": f"racer {n}"})
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {a.status_code for a in answers} == {200}
    assert len({json.dumps(a.json(), sort_keys=True) for a in answers}) == 1
    rows = hub.query("SELECT outcome FROM audit WHERE method = 'YANK'")
    assert sorted(r[0] for r in rows) == ["already-yanked"] * 11 + ["yanked"]
