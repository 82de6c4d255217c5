"""The hub's SQLite file (the embedded default, one process): policy records, idempotency keys
and the audit trail. Immutability and idempotency are enforced here, by UNIQUE constraints and
short `BEGIN IMMEDIATE` transactions, so they hold however many requests of the process race.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from policy_hub.answers import Answer, created, exists, in_flight
from policy_hub.store import (
    JTI_KEEP_SECONDS,
    OIDC_TABLES,
    RECORD_COLUMNS,
    SUMMARY_TEXT_LIMIT,
    ListSql,
    Provenance,
    StoreError,
    StoreReads,
    StoreUnavailable,
    minted_of,
    minted_row,
    record_of,
    settled,
    stored_answer,
    utc_now,
    version_row,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS policies (
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    published_at TEXT NOT NULL,
    metadata TEXT NOT NULL,
    definition TEXT NOT NULL,
    release_sha TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    UNIQUE (name, version)
);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    body_sha256 TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in-flight', 'done')),
    claimed_at REAL NOT NULL,
    status INTEGER,
    response_json TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    method TEXT NOT NULL,
    name TEXT,
    version TEXT,
    idempotency_key TEXT,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_version ON audit (name, version, status);
CREATE TABLE IF NOT EXISTS signing_keys (
    kid TEXT PRIMARY KEY,
    jwk TEXT NOT NULL,
    first_used_at TEXT NOT NULL
);
"""
# Columns added to `policies` on 2026-12-06 (docs/contract.md section 9), to databases of every
# age alike (the CREATE above is the first schema, never edited): provenance and yank. NULL in
# records made before: `publisher: null`, no attestation, not yanked.
ADDED_COLUMNS = (
    ("policies", "publisher", "TEXT"),  # JSON of the verified caller's publisher
    ("policies", "attestation", "TEXT"),  # JSON of the DSSE envelope, made once at creation
    ("policies", "yanked_at", "TEXT"),
    ("policies", "yank_reason", "TEXT"),
)

# A claim older than this belongs to a request that died between claiming its key and
# finishing (process killed): the key is taken over instead of answering 409 forever.
STALE_CLAIM_SECONDS = 30.0
BUSY_TIMEOUT_MS = 15_000


# One (name, version) row of a VALUES list.


def _text(field: str) -> str:
    """SQL for a metadata field that is text, cut to SUMMARY_TEXT_LIMIT, else NULL."""
    path = f"'$.{field}'"
    return (
        f"CASE WHEN json_type(p.metadata, {path}) = 'text'"
        f" THEN substr(json_extract(p.metadata, {path}), 1, {SUMMARY_TEXT_LIMIT}) END"
    )


def _labels(count: int) -> str:
    # A join, not `(name, version) IN (VALUES ...)`, which SQLite answers by scanning the
    # table: one index lookup per row.
    return (
        f"SELECT p.name, {_text('title')}, {_text('owner')}"
        f" FROM (VALUES {', '.join(['(?, ?)'] * count)}) AS w"
        " JOIN policies AS p ON p.name = w.column1 AND p.version = w.column2"
    )


# SQLite compares text in byte order: the name as it is.
LIST_SQL = ListSql("?", "name", _labels, "first_used_at, rowid")


class SqliteStore(StoreReads):
    """One SQLite file; every call opens its own short-lived connection (thread-safe)."""

    engine = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        # Keys this process saw committed to signing_keys (rows are never deleted): a create
        # lists its key in its own transaction only until then.
        self._listed_keys: set[str] = set()

    def initialize(self) -> None:
        """Create the tables and switch to WAL, or raise StoreError saying why not."""
        if not self.path.parent.is_dir():
            raise StoreError(
                f"cannot use database {self.path}: folder {self.path.parent} does not exist"
            )
        if self.path.is_dir():
            raise StoreError(f"cannot use database {self.path}: it is a directory")
        try:
            with self.connect() as conn:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"cannot use database {self.path}: WAL mode refused ({mode})")
                conn.executescript(SCHEMA)
                for statement in OIDC_TABLES:
                    conn.execute(statement)
                self._add_columns(conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot use database {self.path}: {exc}") from exc

    @staticmethod
    def _add_columns(conn: sqlite3.Connection) -> None:
        """ADDED_COLUMNS missing from this database, in one write transaction: another process
        starting at once waits for it (busy_timeout) and then finds them there."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table, column, kind in ADDED_COLUMNS:
                present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def check(self) -> None:
        try:
            with self.connect() as conn:
                conn.execute("SELECT 1 FROM policies LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"database {self.path}: {exc}") from exc

    def close(self) -> None:
        """Nothing to close: every call had its own connection."""

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        # Autocommit mode: every transaction below is an explicit BEGIN IMMEDIATE, so the
        # write lock is taken up front and concurrent writers wait (busy_timeout) instead
        # of failing on a lock upgrade.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA synchronous=FULL")
            yield conn
        finally:
            conn.close()

    # -- reads ---------------------------------------------------------------------------

    list_sql = LIST_SQL

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            return list(conn.execute(sql, params).fetchall())

    # -- writes besides the create path ----------------------------------------------------

    def add_key(self, jwk: Mapping[str, str]) -> None:
        with self.connect() as conn:
            self._add_key(conn, jwk["kid"], json.dumps(dict(jwk), sort_keys=True))
        self._listed_keys.add(jwk["kid"])

    @staticmethod
    def _add_key(conn: sqlite3.Connection, kid: str, jwk: str) -> None:
        conn.execute(
            "INSERT INTO signing_keys (kid, jwk, first_used_at) VALUES (?, ?, ?)"
            " ON CONFLICT (kid) DO NOTHING",
            (kid, jwk, utc_now()),
        )

    def yank(self, name: str, version: str, reason: str) -> dict[str, Any] | None:
        """One write transaction: the first yank sets `yanked`, a later one changes nothing."""
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                changed = conn.execute(
                    "UPDATE policies SET yanked_at = ?, yank_reason = ?"
                    " WHERE name = ? AND version = ? AND yanked_at IS NULL",
                    (utc_now(), reason, name, version),
                ).rowcount
                row = conn.execute(
                    f"SELECT {RECORD_COLUMNS} FROM policies WHERE name = ? AND version = ?",
                    (name, version),
                ).fetchone()
                if row is not None:
                    outcome = "yanked" if changed else "already-yanked"
                    self._audit(conn, "YANK", name, version, None, Answer(200, {}, outcome))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return None if row is None else record_of(row)

    # -- the create path -----------------------------------------------------------------

    def publish(
        self, key: str, body_sha256: str, policy: dict[str, Any], provenance: Provenance
    ) -> Answer:
        """Claim the key (its own transaction), then create; a claim whose create failed is
        given up, so a retry is not told "in-flight"."""
        settled = self.claim(key, body_sha256)
        if settled is not None:
            self.audit(policy["name"], policy["version"], key, settled)
            return settled
        try:
            return self.create(key, policy, provenance)
        except BaseException:
            self.release(key)
            raise

    def claim(self, key: str, body_sha256: str) -> Answer | None:
        """Claim an idempotency key; None means "yours, go on", else the answer to give."""
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT body_sha256, state, claimed_at, status, response_json"
                    " FROM idempotency WHERE key = ?",
                    (key,),
                ).fetchone()
                now = time.time()
                if row is None:
                    conn.execute(
                        "INSERT INTO idempotency (key, body_sha256, state, claimed_at)"
                        " VALUES (?, ?, 'in-flight', ?)",
                        (key, body_sha256, now),
                    )
                    conn.execute("COMMIT")
                    return None
                stored_sha, state, claimed_at, status, response_json = row
                done = state == "done"
                answer = settled(body_sha256, stored_sha, status if done else None, response_json)
                if answer is not None:
                    conn.execute("COMMIT")
                    return answer
                if now - claimed_at > STALE_CLAIM_SECONDS:
                    conn.execute("UPDATE idempotency SET claimed_at = ? WHERE key = ?", (now, key))
                    conn.execute("COMMIT")
                    return None
                conn.execute("COMMIT")
                return in_flight()
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def create(self, key: str, policy: dict[str, Any], provenance: Provenance) -> Answer:
        """Insert the record for a claimed key, with its publisher and the attestation signed
        for it, and remember the answer under that key."""
        published_at = utc_now()
        # Signed before the write lock is taken: the one writer at a time holds it no longer.
        provenance_columns = provenance.columns(policy, published_at)
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                try:
                    conn.execute(
                        "INSERT INTO policies (name, version, digest, metadata, definition,"
                        " release_sha, idempotency_key, published_at, publisher, attestation)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (*version_row(policy, key), published_at, *provenance_columns),
                    )
                except sqlite3.IntegrityError:
                    stored = conn.execute(
                        "SELECT digest FROM policies WHERE name = ? AND version = ?",
                        (policy["name"], policy["version"]),
                    ).fetchone()
                    answer = exists(policy, stored[0])
                else:
                    answer = created(policy, published_at, provenance.publisher)
                    if provenance.signer.kid not in self._listed_keys:
                        self._add_key(conn, *provenance.key_row())
                conn.execute(
                    "UPDATE idempotency SET state = 'done', status = ?, response_json = ?"
                    " WHERE key = ?",
                    (answer.status, stored_answer(answer), key),
                )
                self._audit(conn, "POST", policy["name"], policy["version"], key, answer)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if answer.outcome == "created":
            self._listed_keys.add(provenance.signer.kid)
        return answer

    def release(self, key: str) -> None:
        """Give up a claim whose create() failed, so a retry is not told "in-flight"."""
        with self.connect() as conn:
            conn.execute("DELETE FROM idempotency WHERE key = ? AND state = 'in-flight'", (key,))

    def audit(self, name: str | None, version: str | None, key: str | None, answer: Answer) -> None:
        """Record a POST answer that did not go through create() (replays, refusals)."""
        with self.connect() as conn:
            self._audit(conn, "POST", name, version, key, answer)

    @staticmethod
    def _audit(
        conn: sqlite3.Connection,
        method: str,
        name: str | None,
        version: str | None,
        key: str | None,
        answer: Answer,
    ) -> None:
        conn.execute(
            "INSERT INTO audit (at, method, name, version, idempotency_key, status, outcome)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (utc_now(), method, name, version, key, answer.status, answer.outcome),
        )

    # -- trusted publishing --------------------------------------------------------------

    def use_jti(self, issuer: str, jti: str, expires_at: float) -> bool:
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "DELETE FROM oidc_jti WHERE expires_at < ?", (time.time() - JTI_KEEP_SECONDS,)
                )
                taken = conn.execute(
                    "INSERT INTO oidc_jti (issuer, jti, expires_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (issuer, jti) DO NOTHING",
                    (issuer, jti, float(expires_at)),
                ).rowcount
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return taken == 1

    def mint_token(
        self,
        token_sha256: str,
        globs: tuple[str, ...],
        publisher: dict[str, Any],
        expires_at: float,
    ) -> None:
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM oidc_tokens WHERE expires_at < ?", (time.time(),))
                conn.execute(
                    "INSERT INTO oidc_tokens (token_sha256, globs, publisher, expires_at)"
                    " VALUES (?, ?, ?, ?)",
                    minted_row(token_sha256, globs, publisher, expires_at),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def minted_caller(self, token_sha256: str) -> tuple[tuple[str, ...], dict[str, Any]] | None:
        with self.connect() as conn:
            row = conn.execute(
                "SELECT globs, publisher FROM oidc_tokens"
                " WHERE token_sha256 = ? AND expires_at > ?",
                (token_sha256, time.time()),
            ).fetchone()
        return minted_of(row)
