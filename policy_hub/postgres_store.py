"""The hub on PostgreSQL (psycopg 3 and its connection pool), for any number of `serve`
processes on one database: the database keeps every promise (primary keys, one transaction per
POST, `INSERT ... ON CONFLICT`), the schema is migrated under an advisory lock, and a database
that does not answer is StoreUnavailable (503), never a guess.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

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
    version_row,
)

# Every wait is bounded (README and docs/hub.md list them):
CONNECT_TIMEOUT_SECONDS = 5  # one connection attempt (libpq connect_timeout) unless the URL says
POOL_TIMEOUT_SECONDS = 5.0  # a request waiting for a free (or new) connection; then 503
# Once the database was found away, a request waits only this long for it before its 503 (the
# pool keeps trying to reconnect meanwhile, each attempt given up after RECONNECT_SECONDS and
# started again by the next request): an outage is answered at once, a recovery seen at once.
OUTAGE_WAIT_SECONDS = 1.0
RECONNECT_SECONDS = 5.0
STATEMENT_TIMEOUT_MS = 15_000  # one statement in the server; then 503
# A POST whose key another transaction holds (the same request racing on another process) waits
# this long for it to commit, then is `409 in-flight` (the client retries and gets the replay).
LOCK_TIMEOUT_MS = 3_000
# The server ends a session left idle inside a transaction this long (a hub that vanished with
# its machine mid-POST): its key and version are then free again, as SQLite's stale claims are.
IDLE_IN_TRANSACTION_TIMEOUT_MS = 30_000
# TCP keepalives find a server or network that vanished silently: ~10 + 3 × 5 s; while data
# is unacknowledged (a host gone mid-statement or mid-COMMIT) keepalives are not sent, and
# tcp_user_timeout gives up after 20 s instead of Linux's ~15 min of retransmissions.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 20_000,
}
POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 16
APPLICATION_NAME = "policy-hub"

# pg_advisory_xact_lock key of schema migrations ("policyhu" in ASCII): processes starting at
# once take turns, and only the first one migrates.
SCHEMA_LOCK_ID = 0x706F6C6963796875
SCHEMA_TABLE = "policy_hub_schema"
# MIGRATIONS[n] takes the schema from version n to n + 1; a version is never edited once
# released, a change is a new entry.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
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
        # A row exists only once its POST committed: there is no in-flight state to go stale.
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
    ),
    # 2026-12-06 (docs/contract.md section 9): provenance and yank. NULL in records made before:
    # `publisher: null`, no attestation, not yanked. The public keys ever used, for /keys.
    (
        "ALTER TABLE policies ADD COLUMN IF NOT EXISTS publisher text",
        "ALTER TABLE policies ADD COLUMN IF NOT EXISTS attestation text",
        "ALTER TABLE policies ADD COLUMN IF NOT EXISTS yanked_at text",
        "ALTER TABLE policies ADD COLUMN IF NOT EXISTS yank_reason text",
        """CREATE TABLE IF NOT EXISTS signing_keys (
            kid text PRIMARY KEY,
            jwk text NOT NULL,
            first_used_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
# Indexes made (if missing) after every migration, under the same lock: additions that need no
# version of their own. `policies_by_name_c`: lists of policies page in byte order of name.
INDEXES = ('CREATE INDEX IF NOT EXISTS policies_by_name_c ON policies (name COLLATE "C")',)

# The database's clock, in the format SQLite's records have: every process stamps alike.
NOW_TEXT = """to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
# SQLSTATE classes that mean "not now" rather than "never": connection (08), resources (53),
# operator intervention (57: shutdown, termination), system (58), and a read-only standby.
UNAVAILABLE_CLASSES = ("08", "53", "57", "58")
UNAVAILABLE_STATES = ("25006",)

log = logging.getLogger("policy_hub")
REDACTED_LOGGERS = ("psycopg.pool", "psycopg")


def redact_url(url: str) -> str:
    """The URL with its password (in the user part or `?password=`) shown as `***`."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k == "password" for k, _ in pairs):
            query = urlencode(
                [(k, "***" if k == "password" else v) for k, v in pairs], safe="*", quote_via=quote
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


# One (name, version) row of a VALUES list.


def _text(field: str) -> str:
    """SQL for a metadata field (of `w.m`, the metadata as jsonb) that is text, cut to
    SUMMARY_TEXT_LIMIT, else NULL."""
    return (
        f"CASE WHEN jsonb_typeof(w.m -> '{field}') = 'string'"
        f" THEN left(w.m ->> '{field}', {SUMMARY_TEXT_LIMIT}) END"
    )


def _labels(count: int) -> str:
    return (
        f"SELECT w.name, {_text('title')}, {_text('owner')} FROM"
        " (SELECT p.name, p.metadata::jsonb AS m"
        f" FROM (VALUES {', '.join(['(%s, %s)'] * count)}) AS v"
        " JOIN policies AS p ON p.name = v.column1 AND p.version = v.column2) AS w"
    )


# Names compare and sort in byte order (`COLLATE "C"`, the index of INDEXES), as in SQLite,
# whatever the database's locale.
# first_used_at is clock_timestamp() (microseconds): kid only breaks a tie that cannot happen.
LIST_SQL = ListSql("%s", 'name COLLATE "C"', _labels, "first_used_at, kid")


class Redactor:
    """Removes one password from any text (a libpq message, a log record)."""

    def __init__(self, secret: str | None) -> None:
        # Its pieces too: a URL parser that stopped at an unencoded `/`, `#`, `?` or `@` in the
        # password quotes only the part before it ("Port could not be cast ... 'pa'").
        pieces = re.split(r"[/#?@]", secret or "")
        found = {secret, quote(secret or "", safe=""), *(p for p in pieces if len(p) >= 4)}
        # Longest first, so a piece never leaves the rest of the whole behind.
        self.secrets = sorted((s for s in found if s), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


class _RedactingFilter(logging.Filter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        return True


def parse_database_url(url: str) -> dict[str, Any]:
    """libpq's reading of the URL, or StoreError naming what is wrong (password redacted)."""
    shown = _safe_display(url)
    try:
        params = conninfo_to_dict(url)
        port = urlsplit(url).port  # libpq would only find out when connecting
    except (psycopg.ProgrammingError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "malformed"
        reason = Redactor(_password_guess(url))(reason)
        raise StoreError(f"cannot use database {shown}: not a valid URL ({reason})") from exc
    if port == 0:
        raise StoreError(f"cannot use database {shown}: port 0")
    if not params.get("dbname"):
        raise StoreError(
            f"cannot use database {shown}: no database name (postgresql://user@host:port/dbname)"
        )
    return params


def _split_userinfo(url: str) -> tuple[str, str, str | None, str] | None:
    """(scheme, user, password, the rest after the last `@`), read the way a person wrote it:
    a password may hold an unencoded `/`, `#`, `?` or `@`, which a URL parser would take for
    the end of the user part (and then see no password at all)."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, after = rest.rpartition("@")
    if not sep or not at:
        return None
    user, colon, password = userinfo.partition(":")
    return scheme, user, password if colon else None, after


def _password_guess(url: str) -> str | None:
    parts = _split_userinfo(url)
    return parts[2] or None if parts else None


def _safe_display(url: str) -> str:
    """The URL as it may be shown: its password, wherever it is, as `***`."""
    parts = _split_userinfo(url)
    if parts is not None and parts[2] is not None:
        scheme, user, _, after = parts
        url = f"{scheme}://{user}:***@{after}"
    try:
        return redact_url(url)
    except ValueError:
        return re.sub(r"(?i)(password=)[^&#]*", r"\1***", url)


# A migration that waited its lock_timeout or statement_timeout for another process's.
_SCHEMA_BUSY = (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled)


def _unavailable(exc: psycopg.Error) -> bool:
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return True
    state = exc.sqlstate or ""
    return state[:2] in UNAVAILABLE_CLASSES or state in UNAVAILABLE_STATES


def _refused_for_good(message: str) -> bool:
    """The server answered and said no (unknown database or role, authentication, pg_hba): a
    configuration error. Starting up or shutting down, or no answer at all, is an outage."""
    if "too many clients" in message or "remaining connection slots" in message:
        return False  # full for now: an outage, not a configuration error
    return "FATAL:" in message and "the database system is" not in message


class PostgresStore(StoreReads):
    """A pool of connections to one PostgreSQL database (thread-safe); each POST is one
    transaction, committed before it is answered."""

    engine = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        pool_timeout: float = POOL_TIMEOUT_SECONDS,
        lock_timeout_ms: int = LOCK_TIMEOUT_MS,
        pool_max_size: int = POOL_MAX_SIZE,
    ) -> None:
        self.url = url
        self.location = _safe_display(url)
        params = parse_database_url(url)
        self.redact = Redactor(params.get("password"))
        self.pool_timeout = pool_timeout
        self.lock_timeout_ms = lock_timeout_ms
        self.schema_version: int | None = None
        self.startup_problem: str | None = None
        self._connect_kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in params:
            self._connect_kwargs["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
        if "application_name" not in params:
            self._connect_kwargs["application_name"] = APPLICATION_NAME
        for key, value in KEEPALIVES.items():
            if key not in params:
                self._connect_kwargs[key] = value
        self._pool = ConnectionPool(
            url,
            kwargs=self._connect_kwargs,
            min_size=POOL_MIN_SIZE,
            max_size=pool_max_size,
            timeout=pool_timeout,
            open=False,
            configure=self._configure,
            check=ConnectionPool.check_connection,
            name="policy-hub",
            reconnect_timeout=RECONNECT_SECONDS,
        )
        self._schema_lock = threading.Lock()
        # Keys this process saw committed to signing_keys (rows are never deleted): a create
        # lists its key in its own transaction only until then, sparing a statement per POST.
        self._listed_keys: set[str] = set()
        self._available = True
        self._filter = _RedactingFilter(self.redact)
        for name in REDACTED_LOGGERS:
            logging.getLogger(name).addFilter(self._filter)

    # -- life cycle ------------------------------------------------------------------------

    def initialize(self) -> None:
        """Migrate now when the database answers; when it does not, remember why (the CLI
        warns) and migrate on the first request that reaches it. StoreError when the server
        refuses us for good or holds a newer schema."""
        try:
            with psycopg.connect(self.url, **self._connect_kwargs) as conn:
                self._configure(conn)  # bounded: a schema lock held elsewhere is waited 3 s
                self._migrate(conn)
        except psycopg.Error as exc:
            reason = self._reason(exc)
            busy = isinstance(exc, _SCHEMA_BUSY)
            if not busy and (not _unavailable(exc) or _refused_for_good(str(exc))):
                raise StoreError(f"cannot use database {self.location}: {reason}") from exc
            self.startup_problem = reason
            self._available = False  # requests meanwhile wait OUTAGE_WAIT_SECONDS, not more
        self._pool.open(wait=False)

    def close(self) -> None:
        self._pool.close(timeout=5.0)
        for name in REDACTED_LOGGERS:
            logging.getLogger(name).removeFilter(self._filter)

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(f"SET statement_timeout = {int(STATEMENT_TIMEOUT_MS)}")
        conn.execute(f"SET lock_timeout = {int(self.lock_timeout_ms)}")
        conn.execute(
            f"SET idle_in_transaction_session_timeout = {int(IDLE_IN_TRANSACTION_TIMEOUT_MS)}"
        )

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} ("
                " version integer PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            row = conn.execute(f"SELECT coalesce(max(version), 0) FROM {SCHEMA_TABLE}").fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"cannot use database {self.location}: its schema version is {current}, "
                    f"newer than this policy-hub's {SCHEMA_VERSION}; upgrade policy-hub"
                )
            for version in range(current, SCHEMA_VERSION):
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                conn.execute(f"INSERT INTO {SCHEMA_TABLE} (version) VALUES (%s)", (version + 1,))
            for statement in INDEXES:
                conn.execute(statement)
            # Trusted publishing's tables, apart from the numbered migrations (store.OIDC_TABLES).
            for statement in OIDC_TABLES:
                conn.execute(statement)
        self.schema_version = SCHEMA_VERSION

    def _migrate_now(self, conn: psycopg.Connection[Any]) -> None:
        """The migration left for the first request (the database was down at start): a lock
        held elsewhere or a schema this hub cannot use is `503` for that request, never a 500
        (nor the `409 in-flight` a POST's own lock timeout means)."""
        try:
            self._migrate(conn)
        except _SCHEMA_BUSY as exc:
            raise StoreUnavailable(
                f"the database schema is being migrated elsewhere: {self._reason(exc)}"
            ) from exc
        except StoreError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def _reason(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split()) or type(exc).__name__
        return self.redact(text)[:300]

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection to a migrated database; every database failure that means
        "not now" leaves as StoreUnavailable (its text redacted)."""
        wait = self.pool_timeout if self._available else min(self.pool_timeout, OUTAGE_WAIT_SECONDS)
        try:
            with self._pool.connection(timeout=wait) as conn:
                if self.schema_version is None:
                    with self._schema_lock:
                        if self.schema_version is None:
                            self._migrate_now(conn)
                yield conn
        except PoolTimeout as exc:
            self._went_away(f"no database connection within {wait:g} s")
            raise StoreUnavailable(
                f"the database does not answer (no connection within {wait:g} s)"
            ) from exc
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.errors.LockNotAvailable) or not _unavailable(exc):
                raise
            reason = self._reason(exc)
            self._went_away(reason)
            raise StoreUnavailable(f"the database does not answer: {reason}") from exc
        else:
            self._came_back()

    def _went_away(self, reason: str) -> None:
        if self._available:
            self._available = False
            log.warning("policy-hub: database %s unavailable: %s", self.location, reason)

    def _came_back(self) -> None:
        if not self._available:
            self._available = True
            log.warning("policy-hub: database %s answers again", self.location)

    # -- reads -----------------------------------------------------------------------------

    def check(self) -> None:
        with self._connection() as conn:
            conn.execute("SELECT 1").fetchone()

    list_sql = LIST_SQL

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            return list(conn.execute(sql, params).fetchall())

    # -- writes besides the create path ----------------------------------------------------

    def add_key(self, jwk: Mapping[str, str]) -> None:
        with self._connection() as conn:
            self._add_key(conn, jwk["kid"], json.dumps(dict(jwk), sort_keys=True))
        self._listed_keys.add(jwk["kid"])

    @staticmethod
    def _add_key(conn: psycopg.Connection[Any], kid: str, jwk: str) -> None:
        conn.execute(
            "INSERT INTO signing_keys (kid, jwk) VALUES (%s, %s) ON CONFLICT (kid) DO NOTHING",
            (kid, jwk),
        )

    def yank(self, name: str, version: str, reason: str) -> dict[str, Any] | None:
        """One transaction: the first yank sets `yanked` (a racing one waits for its row lock,
        then finds it set and changes nothing)."""
        with self._connection() as conn, conn.transaction():
            changed = conn.execute(
                f"UPDATE policies SET yanked_at = {NOW_TEXT}, yank_reason = %s"
                " WHERE name = %s AND version = %s AND yanked_at IS NULL",
                (reason, name, version),
            ).rowcount
            row = conn.execute(
                f"SELECT {RECORD_COLUMNS} FROM policies WHERE name = %s AND version = %s",
                (name, version),
            ).fetchone()
            if row is not None:
                outcome = "yanked" if changed else "already-yanked"
                self._audit(conn, name, version, None, Answer(200, {}, outcome), method="YANK")
        return None if row is None else record_of(row)

    # -- the create path -------------------------------------------------------------------

    def publish(
        self, key: str, body_sha256: str, policy: dict[str, Any], provenance: Provenance
    ) -> Answer:
        """One transaction: take the key (a concurrent holder of it, on any process, is waited
        for up to the lock timeout), then replay or refuse, or insert the version, remember the
        answer under the key and audit it. The answer is returned only after COMMIT returned:
        a connection lost before or during it is StoreUnavailable, and the client's retry with
        the same key finds the committed answer, or creates."""
        try:
            with self._connection() as conn, conn.transaction():
                answer = self._publish(conn, key, body_sha256, policy, provenance)
        except psycopg.errors.LockNotAvailable:
            # The same key is held by a transaction that has not finished in time.
            return in_flight()
        if answer.outcome == "created":
            self._listed_keys.add(provenance.signer.kid)  # committed: never listed again
        return answer

    def _publish(
        self,
        conn: psycopg.Connection[Any],
        key: str,
        body_sha256: str,
        policy: dict[str, Any],
        provenance: Provenance,
    ) -> Answer:
        # now() is the transaction's start, the same in every statement of it: the record's
        # published_at, read here so the attestation can be signed before the record is inserted.
        taken = conn.execute(
            "INSERT INTO idempotency (key, body_sha256, status, response_json)"
            f" VALUES (%s, %s, 0, '') ON CONFLICT (key) DO NOTHING RETURNING {NOW_TEXT}",
            (key, body_sha256),
        ).fetchone()
        if taken is None:
            # Committed by an earlier request (this statement waited for it if it was running).
            row = conn.execute(
                "SELECT body_sha256, status, response_json FROM idempotency WHERE key = %s",
                (key,),
            ).fetchone()
            if row is None:  # pragma: no cover - rows are never deleted
                return in_flight()
            # A row is committed with its answer, so there is always one to replay.
            answer = settled(body_sha256, *row) or in_flight()
            self._audit(conn, policy["name"], policy["version"], key, answer)
            return answer
        # The database's clock stamps the record, and the attestation signed here holds the same
        # stamp: it is made once, in this transaction, and stored with the record.
        published_at = str(taken[0])
        inserted = conn.execute(
            "INSERT INTO policies (name, version, digest, metadata, definition, release_sha,"
            " idempotency_key, published_at, publisher, attestation)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (name, version) DO NOTHING RETURNING published_at",
            (*version_row(policy, key), published_at, *provenance.columns(policy, published_at)),
        ).fetchone()
        if inserted is None:
            stored = conn.execute(
                "SELECT digest FROM policies WHERE name = %s AND version = %s",
                (policy["name"], policy["version"]),
            ).fetchone()
            assert stored is not None  # the conflicting row is committed and never deleted
            answer = exists(policy, str(stored[0]))
        else:
            answer = created(policy, str(inserted[0]), provenance.publisher)
            if provenance.signer.kid not in self._listed_keys:
                self._add_key(conn, *provenance.key_row())
        conn.execute(
            "UPDATE idempotency SET status = %s, response_json = %s WHERE key = %s",
            (answer.status, stored_answer(answer), key),
        )
        self._audit(conn, policy["name"], policy["version"], key, answer)
        return answer

    def audit(self, name: str | None, version: str | None, key: str | None, answer: Answer) -> None:
        with self._connection() as conn:
            self._audit(conn, name, version, key, answer)

    @staticmethod
    def _audit(
        conn: psycopg.Connection[Any],
        name: str | None,
        version: str | None,
        key: str | None,
        answer: Answer,
        method: str = "POST",
    ) -> None:
        conn.execute(
            "INSERT INTO audit (method, name, version, idempotency_key, status, outcome)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (method, name, version, key, answer.status, answer.outcome),
        )

    # -- trusted publishing ----------------------------------------------------------------

    def use_jti(self, issuer: str, jti: str, expires_at: float) -> bool:
        """One INSERT ... ON CONFLICT DO NOTHING: of any number of processes racing with one
        `jti`, exactly one inserts it."""
        with self._connection() as conn, conn.transaction():
            conn.execute(
                "DELETE FROM oidc_jti WHERE expires_at < %s", (time.time() - JTI_KEEP_SECONDS,)
            )
            taken = conn.execute(
                "INSERT INTO oidc_jti (issuer, jti, expires_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (issuer, jti) DO NOTHING RETURNING jti",
                (issuer, jti, float(expires_at)),
            ).fetchone()
        return taken is not None

    def mint_token(
        self,
        token_sha256: str,
        globs: tuple[str, ...],
        publisher: dict[str, Any],
        expires_at: float,
    ) -> None:
        with self._connection() as conn, conn.transaction():
            conn.execute("DELETE FROM oidc_tokens WHERE expires_at < %s", (time.time(),))
            conn.execute(
                "INSERT INTO oidc_tokens (token_sha256, globs, publisher, expires_at)"
                " VALUES (%s, %s, %s, %s)",
                minted_row(token_sha256, globs, publisher, expires_at),
            )

    def minted_caller(self, token_sha256: str) -> tuple[tuple[str, ...], dict[str, Any]] | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT globs, publisher FROM oidc_tokens"
                " WHERE token_sha256 = %s AND expires_at > %s",
                (token_sha256, time.time()),
            ).fetchone()
        return minted_of(None if row is None else tuple(row))
