"""The reference hub on its two engines: POSTs per second and GET latency of one process on
SQLite, one on PostgreSQL and two on one PostgreSQL database (the clients alternating between the
two ports, as a load balancer would), on this machine, with no injected latency.

    python bench/hub_engines.py [--posts 1500] [--gets 1500] [--clients 8]

Both databases live on tmpfs (/dev/shm) with their durability settings as shipped (SQLite WAL,
synchronous=FULL; PostgreSQL fsync on): what is compared is the engines' and the hub's work, not
the VM's disk. The PostgreSQL server is started here (the tests' tests/pgserver.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(PROJECT))

from common import HUB_DIR, Hub, machine_facts, print_table  # noqa: E402

from policy_checks import policy_digest  # noqa: E402
from tests.pgserver import PostgresServer  # noqa: E402

RELEASE_SHA = "0123456789abcdef0123456789abcdef01234567"
LABELS = {
    "sqlite": "SQLite, 1 process",
    "postgresql-1": "PostgreSQL, 1 process",
    "postgresql-2": "PostgreSQL, 2 processes",
}


def body(index: int) -> dict[str, object]:
    name = f"bench-policy-{index:05d}"
    metadata = {"name": name, "version": "1.0.0", "description": "bench", "owner": "bench"}
    definition = {
        "apiVersion": "policyhub/v1",
        "kind": "PolicyDefinition",
        "spec": {"severity": "high", "rules": [{"id": "r", "condition": "true"}]},
    }
    return {
        "name": name,
        "version": "1.0.0",
        "metadata": metadata,
        "definition": definition,
        "digest": policy_digest(metadata, definition),
        "release_sha": RELEASE_SHA,
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def p50_p95(latencies: list[float], digits: int) -> str:
    p50, p95 = statistics.median(latencies) * 1000, percentile(latencies, 0.95) * 1000
    return f"{p50:.{digits}f} / {p95:.{digits}f}"


def spread(
    urls: list[str], token: str, count: int, clients: int, post: bool
) -> tuple[float, list[float]]:
    """`count` requests from `clients` threads, request i to urls[i % len(urls)]: wall time and
    every request's latency. Any answer but 201 (POST) or 200 (GET) stops the run."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    next_index = iter(range(count))
    barrier = threading.Barrier(clients + 1)

    def client() -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {token}"}
        barrier.wait()
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            url = urls[i % len(urls)]
            started = time.perf_counter()
            if post:
                answer = session.post(
                    f"{url}/policies",
                    json=body(i),
                    headers={**headers, "Idempotency-Key": f"bench:{i}"},
                    timeout=60,
                )
                ok = answer.status_code == 201
            else:
                name = f"bench-policy-{i % count:05d}"
                answer = session.get(f"{url}/policies/{name}/1.0.0", headers=headers, timeout=60)
                ok = answer.status_code == 200
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if not ok:
                    failures.append(f"{answer.status_code} {answer.text[:200]}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} unexpected answers, e.g. {failures[0]}")
    return wall, latencies


@contextmanager
def hubs(kind: str, work: Path, server: PostgresServer | None) -> Iterator[list[Hub]]:
    started: list[Hub] = []
    try:
        if kind == "sqlite":
            started.append(Hub(work / "sqlite", 0))
        else:
            assert server is not None
            url = server.create_database("bench")
            processes = 2 if kind == "postgresql-2" else 1
            for n in range(processes):
                token = started[0].token if started else None
                started.append(Hub(work / f"{kind}-{n}", 0, db=url, token=token))
        yield started
    finally:
        for hub in started:
            hub.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1500)
    parser.add_argument("--gets", type=int, default=1500)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    print(machine_facts())
    base = HUB_DIR.parent if HUB_DIR else None
    server = PostgresServer.launch(fsync=True, base=base)
    rows = []
    try:
        with tempfile.TemporaryDirectory(dir=base) as tmp:
            for kind in LABELS:
                with hubs(kind, Path(tmp), server) as running:
                    urls = [hub.url for hub in running]
                    token = running[0].token
                    post_wall, post_lat = spread(urls, token, args.posts, args.clients, post=True)
                    _, one = spread(urls, token, min(args.gets, args.posts), 1, post=False)
                    get_wall, many = spread(
                        urls, token, min(args.gets, args.posts), args.clients, post=False
                    )
                rows.append(
                    (
                        LABELS[kind],
                        f"{args.posts / post_wall:.0f}",
                        f"{statistics.median(post_lat) * 1000:.1f}",
                        p50_p95(one, 2),
                        p50_p95(many, 1),
                        f"{len(many) / get_wall:.0f}",
                    )
                )
    finally:
        server.close()
    print(f"{args.posts} POSTs and {args.gets} GETs; {args.clients} client threads unless noted")
    print_table(
        [
            "hub",
            "POST/s",
            "POST p50 ms",
            "GET p50 / p95 ms, 1 client",
            f"GET p50 / p95 ms, {args.clients} clients",
            "GET/s",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
