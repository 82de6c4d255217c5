"""What the routes need of a database: the `Store` protocol, the answers and errors both engines
share, and `open_store`, which picks the engine from `--db`: a file path is SQLite
(sqlite_store.py, the embedded default, one process), a `postgresql://` URL is PostgreSQL
(postgres_store.py, any number of processes on one database).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

DATABASE_URL_SCHEMES = ("postgresql://", "postgres://")


class StoreError(Exception):
    """The database cannot be used at all (missing folder, bad URL, unknown database, a schema
    newer than this hub...): a configuration error, said in one line at start."""


class StoreUnavailable(Exception):
    """The database does not answer now (down, restarting, connection lost, no connection free in
    time): the request is answered 503 and may be retried; nothing was acknowledged."""


@dataclass(frozen=True)
class Answer:
    """What the hub answers to one POST: the status and the JSON body."""

    status: int
    body: dict[str, Any]
    outcome: str


class Store(Protocol):
    """One hub database. Every method may raise StoreUnavailable; none answers a POST with
    anything it has not committed."""

    engine: str  # "sqlite" or "postgresql"
    location: str  # the file or the URL, its password redacted: safe to print

    def initialize(self) -> None:
        """Create or migrate the schema, or raise StoreError saying why not."""

    def check(self) -> None:
        """Return when the database answers, else raise StoreUnavailable (for /health)."""

    def get(self, name: str, version: str) -> dict[str, Any] | None: ...

    def versions(self, name: str) -> list[str]: ...

    def publish(self, key: str, body_sha256: str, policy: dict[str, Any]) -> Answer:
        """The whole create path of one POST under its Idempotency-Key: a replay, `422` for the
        key with another body, `409 in-flight`, or the create (`201`/`409 exists`)."""

    def audit(self, name: str | None, version: str | None, key: str | None, answer: Answer) -> None:
        """Record a POST answer decided outside publish() (refusals of the body or the key)."""

    def close(self) -> None: ...


def is_database_url(db: str) -> bool:
    return db.lower().startswith(DATABASE_URL_SCHEMES)


def open_store(db: str | Path) -> Store:
    """The store `--db` names, not yet initialized; StoreError for a malformed URL."""
    text = str(db)
    if is_database_url(text):
        # Imported here: psycopg is needed only by a hub on PostgreSQL.
        from policy_hub.postgres_store import PostgresStore

        return PostgresStore(text)
    other = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", text)
    if other and not Path(text).exists():
        scheme = other.group(1)
        raise StoreError(
            f"cannot use database {scheme}://…: unknown scheme {scheme!r}; give a SQLite file "
            "path or a postgresql://user@host:port/dbname URL"
        )
    from policy_hub.sqlite_store import SqliteStore

    return SqliteStore(Path(text))


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def answer_json(answer: Answer) -> str:
    # Insertion order, not sorted: a replay is then byte-identical to the first answer.
    return json.dumps(answer.body, ensure_ascii=False)


def key_reused() -> Answer:
    return Answer(
        422,
        {
            "error": "idempotency-key-reused",
            "detail": "this Idempotency-Key was used with a different body",
        },
        "key-reused",
    )


def in_flight() -> Answer:
    return Answer(
        409,
        {
            "error": "in-flight",
            "detail": "a request with this Idempotency-Key is being processed; retry",
        },
        "in-flight",
    )


def exists(policy: dict[str, Any], stored_digest: str) -> Answer:
    return Answer(
        409,
        {
            "error": "exists",
            "detail": "this version is already published and is immutable",
            "name": policy["name"],
            "version": policy["version"],
            "digest": stored_digest,
        },
        "exists",
    )


def created(policy: dict[str, Any], published_at: str) -> Answer:
    record = {
        "name": policy["name"],
        "version": policy["version"],
        "digest": policy["digest"],
        "published_at": published_at,
        "metadata": policy["metadata"],
        "definition": policy["definition"],
        "release_sha": policy["release_sha"],
    }
    return Answer(201, record, "created")


def record_of(row: tuple[Any, ...]) -> dict[str, Any]:
    """A policies row (name, version, digest, published_at, metadata, definition, release_sha)
    as GET answers it."""
    name, version, digest, published_at, metadata, definition, release_sha = row
    return {
        "name": name,
        "version": version,
        "digest": digest,
        "published_at": published_at,
        "metadata": json.loads(metadata),
        "definition": json.loads(definition),
        "release_sha": release_sha,
    }
