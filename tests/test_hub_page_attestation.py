"""What a version's page says of its signature (`policy_hub.pages.attestation_check`): the
checks of `policy-hub verify` against the hub's own keys, on a real SQLite store whose file is
changed behind the hub's back the way a tampered database would be."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policy_hub.attest import Signer
from policy_hub.pages import attestation_check
from policy_hub.sqlite_store import SqliteStore
from policy_hub.store import Provenance
from tests.test_hub_api import policy_body

pytestmark = pytest.mark.fast

PUBLISHER = {"kind": "token", "label": "platform-team"}


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "hub.sqlite3")
    store.initialize()
    signer = Signer(Ed25519PrivateKey.generate())
    assert store.create("k", policy_body(), Provenance(PUBLISHER, signer)).status == 201
    return store


def record(store: SqliteStore) -> dict:
    found = store.get("require-tags", "1.2.0")
    assert found is not None
    return found


def change(store: SqliteStore, sql: str, *args: object) -> None:
    with sqlite3.connect(store.path) as conn:
        conn.execute(sql, args)


def test_a_record_as_signed_verifies(store: SqliteStore) -> None:
    check = attestation_check(store, record(store))
    assert check.state == "verified"
    assert check.text.startswith("signed by this hub, key ")


def test_a_definition_changed_in_the_database_does_not_verify(store: SqliteStore) -> None:
    changed = dict(record(store)["definition"], kind="Tampered")
    change(store, "UPDATE policies SET definition = ?", json.dumps(changed))
    check = attestation_check(store, record(store))
    assert check.state == "failed"
    assert "metadata and definition hash to sha256:" in check.text


def test_a_publisher_changed_in_the_database_does_not_verify(store: SqliteStore) -> None:
    change(store, "UPDATE policies SET publisher = ?", json.dumps({"kind": "token", "label": "x"}))
    check = attestation_check(store, record(store))
    assert check.state == "failed"
    assert "publisher, release_sha or published_at is not what was signed" in check.text


def test_a_signature_of_another_key_does_not_verify(store: SqliteStore) -> None:
    change(store, "DELETE FROM signing_keys")  # /keys no longer lists the key that signed
    check = attestation_check(store, record(store))
    assert check.state == "failed"
    assert "not among the trusted keys" in check.text


def test_a_record_made_before_signing_has_no_attestation(store: SqliteStore) -> None:
    change(store, "UPDATE policies SET attestation = NULL, publisher = NULL")
    check = attestation_check(store, record(store))
    assert (check.state, check.text) == ("none", "no attestation: published before this hub signed")
