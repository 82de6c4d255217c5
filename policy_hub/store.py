"""What the routes need of a database, and what both engines decide alike: the `Store` protocol
and its errors; what names a POST's body under its key (`body_sha256`); what an earlier use of the
key answers (`settled`); a version's stored row and its record, with its provenance (`publisher`,
the signed attestation made once at creation) and its yank. So the engines (sqlite_store.py,
postgres_store.py) differ only in SQL and transactions; engines.py opens the one `--db` names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from policy_checks.digest import canonical_json
from policy_checks.naming import semver_key
from policy_hub.answers import Answer, key_reused
from policy_hub.attest import Signer, statement


class StoreError(Exception):
    """The database cannot be used at all (missing folder, bad URL, unknown database, a schema
    newer than this hub...): a configuration error, said in one line at start."""


class StoreUnavailable(Exception):
    """The database does not answer now (down, restarting, connection lost, no connection free in
    time): the request is answered 503 and may be retried; nothing was acknowledged."""


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

    def records(self, name: str) -> list[dict[str, Any]]:
        """Every version of `name` as GET answers it, in no particular order (the pages)."""

    def policy_page(
        self, after: str | None, limit: int, contains: str | None = None
    ) -> tuple[list[PolicySummary], str | None]:
        """Up to `limit` policies whose name sorts after `after` (and holds `contains`), in
        byte order of name, and the `after` of the next page (None on the last)."""

    def publish(
        self, key: str, body_sha256: str, policy: dict[str, Any], provenance: Provenance
    ) -> Answer:
        """The whole create path of one POST under its Idempotency-Key: a replay, `422` for the
        key with another body, `409 in-flight`, or the create (`201`/`409 exists`), whose record
        gets the provenance's publisher and attestation in the same transaction."""

    def attestation(self, name: str, version: str) -> tuple[bool, dict[str, Any] | None]:
        """(whether the version exists, its DSSE envelope or None when it was made before the
        hub signed records)."""

    def yank(self, name: str, version: str, reason: str) -> dict[str, Any] | None:
        """Mark the version yanked (once: a second yank changes nothing) and return its record;
        None when there is no such version."""

    def add_key(self, jwk: Mapping[str, str]) -> None:
        """List a public key in /keys (kept for good; adding it again changes nothing)."""

    def keys(self) -> list[dict[str, Any]]:
        """Every public key the hub has listed, oldest first."""

    def audit(self, name: str | None, version: str | None, key: str | None, answer: Answer) -> None:
        """Record a POST answer decided outside publish() (refusals of the body or the key)."""

    def close(self) -> None: ...

    # -- trusted publishing (oidc.py, POST /auth/oidc) ------------------------------------------

    def use_jti(self, issuer: str, jti: str, expires_at: float) -> bool:
        """Record a JWT's `jti` as used: False when it already was, by any process on this
        database (one atomic insert). Kept until `expires_at` (epoch seconds) is long past."""

    def mint_token(
        self,
        token_sha256: str,
        globs: tuple[str, ...],
        publisher: dict[str, Any],
        expires_at: float,
    ) -> None:
        """Keep a minted hub token, as the SHA-256 of the token alone, until `expires_at`."""

    def minted_caller(self, token_sha256: str) -> tuple[tuple[str, ...], dict[str, Any]] | None:
        """The globs and publisher of a minted token that has not expired, else None."""


def sha256_of_body(fields: dict[str, Any]) -> str:
    """What names a POST's (validated) body under its Idempotency-Key: the same body sent again
    is the same body however its JSON was spaced or ordered.

    Not `canonical_json`: this is a stored format. Hub databases written before 2026-12-06 hold
    the hash of sorted, unspaced JSON with non-ASCII *escaped*; hashing it any other way would
    answer a retry of a non-ASCII body across an upgrade with `422 idempotency-key-reused`
    instead of its replay."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def settled(
    body_sha256: str, stored_sha256: str, status: int | None, answer_json: str | None
) -> Answer | None:
    """What an earlier use of this request's key decides: `422 idempotency-key-reused` when it
    came with another body, else the replay of its answer, or None while it has none (a request
    still in flight; whether it is alive is the engine's to tell)."""
    if stored_sha256 != body_sha256:
        return key_reused()
    if not status or not answer_json:
        return None
    return Answer(int(status), json.loads(answer_json), "replayed")


def stored_answer(answer: Answer) -> str:
    """The text kept under a key, read back by `settled`. Insertion order, not sorted: a replay
    is byte-identical to the first answer."""
    return json.dumps(answer.body, ensure_ascii=False)


def version_row(policy: dict[str, Any], key: str) -> tuple[str, ...]:
    """A version's row of `policies` but its published_at (each engine stamps it): name,
    version, digest, metadata, definition, release_sha, idempotency_key."""
    return (
        policy["name"],
        policy["version"],
        policy["digest"],
        canonical_json(policy["metadata"]).decode(),
        canonical_json(policy["definition"]).decode(),
        policy["release_sha"],
        key,
    )


# The columns record_of reads, in its order.
RECORD_COLUMNS = (
    "name, version, digest, published_at, metadata, definition, release_sha,"
    " publisher, yanked_at, yank_reason"
)
# Cap of a yank's reason, in characters (the app refuses longer ones with 422).
MAX_YANK_REASON = 500


def record_of(row: tuple[Any, ...]) -> dict[str, Any]:
    """A policies row (RECORD_COLUMNS) as GET answers it. A record made before the hub kept
    provenance has `publisher: null`; one never yanked has `yanked: null`."""
    name, version, digest, published_at, metadata, definition, release_sha = row[:7]
    publisher, yanked_at, yank_reason = row[7:10]
    return {
        "name": name,
        "version": version,
        "digest": digest,
        "published_at": published_at,
        "metadata": json.loads(metadata),
        "definition": json.loads(definition),
        "release_sha": release_sha,
        "publisher": json.loads(publisher) if publisher else None,
        "yanked": {"at": yanked_at, "reason": yank_reason} if yanked_at else None,
    }


# The tables of trusted publishing, each its own `CREATE ... IF NOT EXISTS` that both engines run
# at every start (after their own migrations): `expires_at` is epoch seconds from the hub's clock.
OIDC_TABLES = (
    """CREATE TABLE IF NOT EXISTS oidc_jti (
        issuer TEXT NOT NULL,
        jti TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (issuer, jti)
    )""",
    "CREATE INDEX IF NOT EXISTS oidc_jti_expiry ON oidc_jti (expires_at)",
    """CREATE TABLE IF NOT EXISTS oidc_tokens (
        token_sha256 TEXT PRIMARY KEY,
        globs TEXT NOT NULL,
        publisher TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS oidc_tokens_expiry ON oidc_tokens (expires_at)",
)
# A used `jti` is kept this long past its token's `exp`: the token is refused as expired by then.
JTI_KEEP_SECONDS = 600


def minted_row(
    token_sha256: str, globs: tuple[str, ...], publisher: dict[str, Any], expires_at: float
) -> tuple[str, str, str, float]:
    return (
        token_sha256,
        json.dumps(list(globs)),
        json.dumps(publisher, sort_keys=True, ensure_ascii=False),
        float(expires_at),
    )


def minted_of(row: tuple[Any, ...] | None) -> tuple[tuple[str, ...], dict[str, Any]] | None:
    if row is None:
        return None
    globs, publisher = row
    return tuple(json.loads(globs)), json.loads(publisher)


@dataclass(frozen=True)
class Provenance:
    """What a create adds to a record beyond its body: who published it (the verified caller's
    `publisher`, never the body) and the key that signs its attestation."""

    publisher: Mapping[str, Any]
    signer: Signer

    def envelope(self, policy: dict[str, Any], published_at: str) -> dict[str, Any]:
        """The DSSE envelope of the record's Statement: made once, in the transaction that
        creates the record, and stored with it."""
        return self.signer.sign(
            statement(
                policy["name"],
                policy["version"],
                policy["digest"],
                self.publisher,
                policy["release_sha"],
                published_at,
            )
        )

    def columns(self, policy: dict[str, Any], published_at: str) -> tuple[str, str]:
        """(publisher, attestation) as stored: JSON text."""
        return (
            json.dumps(dict(self.publisher), ensure_ascii=False, sort_keys=True),
            json.dumps(self.envelope(policy, published_at), sort_keys=True),
        )

    def key_row(self) -> tuple[str, str]:
        """(kid, jwk) of the signing key, listed in /keys by the same transaction."""
        return self.signer.kid, json.dumps(self.signer.jwk, sort_keys=True)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- lists of policies (GET /policies, the pages) ------------------------------------------------

LIST_LIMIT_DEFAULT = 100
LIST_LIMIT_MAX = 500
# What a summary row holds beyond name, version and published_at: whether the version is yanked
# (docs/contract.md section 9): its `yanked_at`, NULL until a yank sets it.
YANKED_SQL = "yanked_at"


@dataclass(frozen=True)
class PolicySummary:
    """One policy in a list: its name, the latest version that is not yanked (None when every
    version is), its versions in SemVer order (as `GET /policies/{name}` lists them), when it
    last published, and its latest's title and owner (from metadata; None when absent or not
    text)."""

    name: str
    latest: str | None
    versions: tuple[str, ...]
    published_at: str
    title: str | None = None
    owner: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "latest": self.latest,
            "versions": list(self.versions),
            "published_at": self.published_at,
        }


def is_yanked(record: dict[str, Any]) -> bool:
    """Whether a record carries a yank (`yanked: {at, reason}`); absent or null is not."""
    return bool(record.get("yanked"))


def summaries(
    rows: Iterable[tuple[Any, ...]],
) -> dict[str, tuple[str | None, tuple[str, ...], str, str]]:
    """(name, version, published_at, yanked) rows of some policies -> name: (latest, the
    versions in SemVer order, last published_at, the version whose metadata names it: latest,
    else the newest)."""
    by_name: dict[str, list[tuple[tuple[Any, ...], str, str, bool]]] = {}
    for name, version, published_at, yanked in rows:
        text = str(version)
        by_name.setdefault(str(name), []).append(
            (semver_key(text), text, str(published_at), bool(yanked))
        )
    out: dict[str, tuple[str | None, tuple[str, ...], str, str]] = {}
    for name, versions in by_name.items():
        versions.sort()  # SemVer precedence, each key computed once
        latest = next((v for _, v, _, yanked in reversed(versions) if not yanked), None)
        last = max(p for _, _, p, _ in versions)
        ordered = tuple(v for _, v, _, _ in versions)
        out[name] = (latest, ordered, last, latest or ordered[-1])
    return out


# What a list shows of a version's metadata: its `title` and `owner` when they are text, cut in
# the database (a description may be 1 MiB; only these two leave it). The engines' SQL for it.
SUMMARY_TEXT_LIMIT = 500


def build_summaries(
    names: list[str],
    facts: dict[str, tuple[str | None, tuple[str, ...], str, str]],
    labels: dict[str, tuple[str | None, str | None]],
) -> list[PolicySummary]:
    """The summaries of `names` (in that order) from their `summaries` and the (title, owner)
    of each one's shown version (by name)."""
    found = []
    for name in names:
        if name not in facts:
            continue  # pragma: no cover - a name is listed only when it has a version
        latest, count, last, _ = facts[name]
        title, owner = labels.get(name, (None, None))
        found.append(PolicySummary(name, latest, count, last, title, owner))
    return found


def like_pattern(contains: str) -> str:
    """A LIKE pattern (ESCAPE '\\') matching names that contain `contains` literally."""
    escaped = contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# A query of one connection: SQL and its parameters in, every row out.
Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class ListSql:
    """What the engines' list queries differ in, and nothing else: the parameter mark, the name
    as it compares and sorts in byte order, and the query of (name, title, owner) for `n`
    (name, version) pairs given as parameters; and the order of GET /keys, oldest first (a
    tie-breaker that is the order of insertion: SQLite's `first_used_at` has whole seconds, and
    a key rotated within the second it was first used must still come after it)."""

    mark: str
    name: str
    labels: Callable[[int], str]
    keys_order: str


def list_policies(
    query: Query, sql: ListSql, after: str | None, limit: int, contains: str | None
) -> tuple[list[PolicySummary], str | None]:
    """Up to `limit` policies whose name sorts after `after` (and holds `contains`), and the
    `after` of the next page (None on the last). Three queries whatever the page's size: its
    names (the UNIQUE (name, version) index, in order), the version rows of those names (a
    range of that index), and the title and owner of each one's shown version."""
    where, params = f"{sql.name} > {sql.mark}", [after or ""]
    if contains:
        where += f" AND name LIKE {sql.mark} ESCAPE '\\'"
        params.append(like_pattern(contains))
    names = [
        str(row[0])
        for row in query(
            f"SELECT DISTINCT {sql.name} FROM policies WHERE {where} ORDER BY 1 LIMIT {sql.mark}",
            (*params, limit + 1),
        )
    ]
    more = len(names) > limit
    names = names[:limit]
    if not names:
        return [], None
    rows = query(
        f"SELECT name, version, published_at, {YANKED_SQL} FROM policies"
        f" WHERE {sql.name} >= {sql.mark} AND {sql.name} <= {sql.mark} AND {where}",
        (names[0], names[-1], *params),
    )
    facts = summaries(rows)
    shown = [(name, facts[name][3]) for name in names]
    labels = {
        str(name): (title, owner)
        for name, title, owner in query(
            sql.labels(len(shown)), [value for pair in shown for value in pair]
        )
    }
    return build_summaries(names, facts, labels), names[-1] if more else None


class StoreReads:
    """The reads both engines make alike, in SQL that differs only in `ListSql`: each engine
    gives `_rows` (one query on a connection of its own) and its `list_sql`."""

    list_sql: ListSql

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def get(self, name: str, version: str) -> dict[str, Any] | None:
        m = self.list_sql.mark
        rows = self._rows(
            f"SELECT {RECORD_COLUMNS} FROM policies WHERE name = {m} AND version = {m}",
            (name, version),
        )
        return record_of(rows[0]) if rows else None

    def versions(self, name: str) -> list[str]:
        rows = self._rows(
            f"SELECT version FROM policies WHERE name = {self.list_sql.mark}", (name,)
        )
        return [str(r[0]) for r in rows]

    def records(self, name: str) -> list[dict[str, Any]]:
        m = self.list_sql.mark
        rows = self._rows(f"SELECT {RECORD_COLUMNS} FROM policies WHERE name = {m}", (name,))
        return [record_of(row) for row in rows]

    def policy_page(
        self, after: str | None, limit: int, contains: str | None = None
    ) -> tuple[list[PolicySummary], str | None]:
        return list_policies(self._rows, self.list_sql, after, limit, contains)

    def attestation(self, name: str, version: str) -> tuple[bool, dict[str, Any] | None]:
        m = self.list_sql.mark
        rows = self._rows(
            f"SELECT attestation FROM policies WHERE name = {m} AND version = {m}",
            (name, version),
        )
        if not rows:
            return False, None
        return True, json.loads(rows[0][0]) if rows[0][0] else None

    def keys(self) -> list[dict[str, Any]]:
        rows = self._rows(f"SELECT jwk FROM signing_keys ORDER BY {self.list_sql.keys_order}")
        return [json.loads(str(r[0])) for r in rows]
