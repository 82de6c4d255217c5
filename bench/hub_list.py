"""Listing a big hub: `GET /policies` (a page of 100 and of 500) and the pages that list (`/`, a
search) against one version's `GET /policies/{name}/{version}`, on a hub holding 10 000 policies
of 2 versions each, on SQLite and on PostgreSQL. Sequential requests from one client (latency,
not throughput); p50 and p95 of each, and each p50 as a multiple of the single GET's.

    python bench/hub_list.py [--policies 10000] [--requests 200] [--engines sqlite,postgresql]

The records are written straight into the database in one transaction (the rows the store
writes, `policy_hub.store.version_row`): seeding through 20 000 POSTs would measure POSTs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(PROJECT))

from common import HUB_DIR, machine_facts, print_table  # noqa: E402

from policy_checks import policy_digest  # noqa: E402
from policy_hub.store import version_row  # noqa: E402
from tests.hubprocess import HubProcess, db_query  # noqa: E402
from tests.pgserver import PostgresServer  # noqa: E402

RELEASE_SHA = "0123456789abcdef0123456789abcdef01234567"
VERSIONS = ("1.0.0", "1.1.0")
STAMP = "2026-12-06T10:00:00Z"
INSERT = (
    "INSERT INTO policies (name, version, digest, metadata, definition, release_sha,"
    " idempotency_key, published_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def policy(index: int, version: str) -> dict[str, object]:
    name = f"bench-policy-{index:05d}"
    metadata = {
        "name": name,
        "version": version,
        "title": f"Bench policy {index}",
        "description": "Resources must carry a cost-center tag. " * 4,
        "owner": f"team-{index % 37}",
        "tags": ["bench"],
    }
    definition = {
        "apiVersion": "policyhub/v1",
        "kind": "PolicyDefinition",
        "spec": {
            "severity": "high",
            "rules": [
                {"id": f"rule-{r}", "description": "holds", "condition": "params.x in resource"}
                for r in range(5)
            ],
        },
    }
    return {
        "name": name,
        "version": version,
        "metadata": metadata,
        "definition": definition,
        "digest": policy_digest(metadata, definition),
        "release_sha": RELEASE_SHA,
    }


def seed(hub: HubProcess, count: int) -> None:
    rows = [
        (*version_row(policy(i, v), f"seed:{i}:{v}"), STAMP) for i in range(count) for v in VERSIONS
    ]
    if isinstance(hub.db, str):
        import psycopg

        with psycopg.connect(hub.db, autocommit=False) as conn, conn.cursor() as cur:
            cur.executemany(INSERT.replace("?", "%s"), rows)
            conn.commit()
            cur.execute("ANALYZE policies")
    else:
        import sqlite3

        conn = sqlite3.connect(hub.db)
        with conn:
            conn.executemany(INSERT, rows)
        conn.execute("ANALYZE")
        conn.close()
    stored = db_query(hub.db, "SELECT COUNT(*) FROM policies")[0][0]
    assert stored == count * len(VERSIONS), stored


def timed(get: Callable[[], requests.Response], times: int) -> list[float]:
    for _ in range(5):  # warm-up: connection, caches
        get().raise_for_status()
    latencies = []
    for _ in range(times):
        started = time.perf_counter()
        answer = get()
        latencies.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise SystemExit(f"unexpected {answer.status_code}: {answer.text[:300]}")
    return latencies


def p95(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, int(0.95 * len(values)))]


def measure(hub: HubProcess, count: int, times: int) -> list[tuple[str, float, float]]:
    session = requests.Session()
    auth = {"Authorization": f"Bearer {hub.read_token}"}
    middle = f"bench-policy-{count // 2:05d}"
    cases: list[tuple[str, Callable[[], requests.Response]]] = [
        (
            "GET /policies/{name}/{version}",
            lambda: session.get(f"{hub.url}/policies/{middle}/1.1.0", headers=auth, timeout=60),
        ),
        ("GET /policies (first 100)", lambda: session.get(f"{hub.url}/policies", headers=auth)),
        (
            "GET /policies?after=<middle> (100)",
            lambda: session.get(
                f"{hub.url}/policies", params={"after": middle}, headers=auth, timeout=60
            ),
        ),
        (
            "GET /policies?limit=500",
            lambda: session.get(
                f"{hub.url}/policies", params={"limit": 500}, headers=auth, timeout=60
            ),
        ),
        ("page / (100 policies)", lambda: session.get(f"{hub.url}/", timeout=60)),
        (
            "page /?after=<middle>",
            lambda: session.get(f"{hub.url}/", params={"after": middle}, timeout=60),
        ),
        (
            "page /?q=policy-099 (a search)",
            lambda: session.get(f"{hub.url}/", params={"q": "policy-099"}, timeout=60),
        ),
    ]
    return [(label, *stats(timed(get, times))) for label, get in cases]


def stats(latencies: list[float]) -> tuple[float, float]:
    return statistics.median(latencies) * 1000, p95(latencies) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    print(machine_facts())
    base = HUB_DIR.parent if HUB_DIR else None
    engines = args.engines.split(",")
    server = PostgresServer.launch(fsync=True, base=base) if "postgresql" in engines else None
    hub_args = ("--public-read", "--no-access-log", "--log-level", "warning")
    try:
        with tempfile.TemporaryDirectory(dir=base) as tmp:
            for engine in engines:
                db = server.create_database("bench") if engine == "postgresql" and server else None
                with HubProcess(Path(tmp) / engine, db=db, extra_args=hub_args) as hub:
                    seed(hub, args.policies)
                    rows = measure(hub, args.policies, args.requests)
                single = rows[0][1]
                print(
                    f"\n{engine}: {args.policies} policies × {len(VERSIONS)} versions, "
                    f"{args.requests} sequential requests each, one client"
                )
                print_table(
                    ["request", "p50 ms", "p95 ms", "p50 / single GET"],
                    [
                        (label, f"{p50:.1f}", f"{hi:.1f}", f"{p50 / single:.1f}×")
                        for label, p50, hi in rows
                    ],
                )
    finally:
        if server is not None:
            server.close()


if __name__ == "__main__":
    main()
