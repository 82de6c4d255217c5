"""Which database `--db` names, opened by its engine: a file path is SQLite (sqlite_store.py, the
embedded default, one process), a `postgresql://` URL is PostgreSQL (postgres_store.py, any number
of processes on one database). The only module that imports both engines; neither imports it.
"""

from __future__ import annotations

import re
from pathlib import Path

from policy_hub.sqlite_store import SqliteStore
from policy_hub.store import Store, StoreError

DATABASE_URL_SCHEMES = ("postgresql://", "postgres://")


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
    return SqliteStore(Path(text))
