"""The reference hub on its two engines: POSTs per second and GET latency of one process on
SQLite, one on PostgreSQL and two on one PostgreSQL database (the clients alternating between the
two ports, as a load balancer would), on this machine, with no injected latency.

    python bench/hub_engines.py [--posts 1500] [--gets 1500] [--clients 8]
        [--engines sqlite,postgresql-1,postgresql-2] [--baseline REV] [--verifies 20]

`--baseline REV` also runs the hub of an earlier commit (`git archive` of its packages into a temp
folder, run with PYTHONPATH), each engine right after today's: the A/B of one change on the same
machine in the same minutes (e.g. `--baseline 2bc3e6b`, the hub before it signed attestations).
Then the time of one `policy-hub verify` of a record (a new process, as a consumer runs it, and
the checks alone in this process: 3 GETs, the signature, the digest).

Both databases live on tmpfs (/dev/shm) with their durability settings as shipped (SQLite WAL,
synchronous=FULL; PostgreSQL fsync on): what is compared is the engines' and the hub's work, not
the VM's disk. The PostgreSQL server is started here (the tests' tests/pgserver.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
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
def hubs(
    kind: str, work: Path, server: PostgresServer | None, source: Path | None = None
) -> Iterator[list[Hub]]:
    started: list[Hub] = []
    try:
        if kind == "sqlite":
            started.append(Hub(work / "sqlite", 0, source=source))
        else:
            assert server is not None
            url = server.create_database("bench")
            processes = 2 if kind == "postgresql-2" else 1
            for n in range(processes):
                token = started[0].token if started else None
                started.append(Hub(work / f"{kind}-{n}", 0, db=url, token=token, source=source))
        yield started
    finally:
        for hub in started:
            hub.stop()


def export_source(revision: str, into: Path) -> Path:
    """The packages of `revision` (this repository's git) in a folder to run with PYTHONPATH."""
    archive = into / "baseline.tar"
    with open(archive, "wb") as out:
        subprocess.run(
            [
                "git",
                "-C",
                str(PROJECT),
                "archive",
                revision,
                "policy_hub",
                "policy_checks",
                "publisher",
            ],
            stdout=out,
            check=True,
        )
    source = into / "baseline-src"
    with tarfile.open(archive) as tar:
        tar.extractall(source, filter="data")
    return source


def verify_times(url: str, token: str, count: int) -> tuple[list[float], list[float]]:
    """Seconds of `count` verifies of one record: whole `policy-hub verify` processes, and the
    checks alone (policy_hub.verify.verify) in this process."""
    from policy_hub.verify import HubReader, VerifyRequest, verify

    ref = body(0)
    processes: list[float] = []
    env = {**os.environ, "POLICY_HUB_TOKEN": token}
    for _ in range(count):
        started = time.perf_counter()
        ran = subprocess.run(
            [
                sys.executable,
                "-m",
                "policy_hub",
                "verify",
                f"{ref['name']}@1.0.0",
                "--hub-url",
                url,
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        processes.append(time.perf_counter() - started)
        if ran.returncode != 0:
            raise SystemExit(f"verify failed: {ran.stdout}{ran.stderr}")
    checks: list[float] = []
    reader = HubReader(url, token)
    request = VerifyRequest(str(ref["name"]), "1.0.0")
    for _ in range(count * 5):
        started = time.perf_counter()
        results = verify(reader, request)
        checks.append(time.perf_counter() - started)
        assert all(check.held for check in results)
    reader.close()
    return processes, checks


def signing_cost(count: int = 2000) -> float:
    """Seconds to sign and encode one record's attestation (what the create path adds)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from policy_hub.attest import Signer
    from policy_hub.store import Provenance

    provenance = Provenance(
        {"kind": "token", "label": "bench"}, Signer(Ed25519PrivateKey.generate())
    )
    record = body(0)
    for _ in range(100):
        provenance.columns(record, "2026-12-06T00:00:00Z")
    started = time.perf_counter()
    for _ in range(count):
        provenance.columns(record, "2026-12-06T00:00:00Z")
        provenance.key_row()
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1500)
    parser.add_argument("--gets", type=int, default=1500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--engines", default=",".join(LABELS), help="a subset of " + str(LABELS))
    parser.add_argument("--baseline", metavar="REV", help="also run the hub of this commit")
    parser.add_argument("--verifies", type=int, default=20)
    args = parser.parse_args()
    engines = [kind for kind in args.engines.split(",") if kind]
    unknown = set(engines) - set(LABELS)
    if unknown:
        parser.error(f"unknown engines: {sorted(unknown)}")
    print(machine_facts())
    base = HUB_DIR.parent if HUB_DIR else None
    server = PostgresServer.launch(fsync=True, base=base)
    rows = []
    verified: tuple[list[float], list[float]] | None = None
    try:
        with tempfile.TemporaryDirectory(dir=base) as tmp:
            source = export_source(args.baseline, Path(tmp)) if args.baseline else None
            variants: list[tuple[str, Path | None]] = [("today", None)]
            if source is not None:
                variants.append((args.baseline, source))
            for kind in engines:
                for variant, variant_source in variants:
                    work = Path(tmp) / variant
                    with hubs(kind, work, server, variant_source) as running:
                        urls = [hub.url for hub in running]
                        token = running[0].token
                        post_wall, post_lat = spread(
                            urls, token, args.posts, args.clients, post=True
                        )
                        _, one = spread(urls, token, min(args.gets, args.posts), 1, post=False)
                        get_wall, many = spread(
                            urls, token, min(args.gets, args.posts), args.clients, post=False
                        )
                        if variant_source is None and verified is None and args.verifies:
                            verified = verify_times(urls[0], token, args.verifies)
                    label = LABELS[kind] + ("" if variant_source is None else f" ({variant})")
                    rows.append(
                        (
                            label,
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
    print(f"signing one record's attestation in the create path: {signing_cost() * 1e6:.0f} µs")
    if verified is not None:
        processes, checks = verified
        print(
            f"policy-hub verify of one record ({len(processes)} runs): "
            f"whole process p50 {statistics.median(processes) * 1000:.0f} ms "
            f"(min {min(processes) * 1000:.0f}); the checks alone ({len(checks)} runs) "
            f"p50 {statistics.median(checks) * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
