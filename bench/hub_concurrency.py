"""The reference hub under concurrent clients: with injected latency L, C clients at once should
take about one L, not C·L (the harness's release figures assume the hub does not serialise).

    python bench/hub_concurrency.py [--latency-ms 250] [--clients 1 4 16 32]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_facts, print_table, running_hub


def burst(url: str, token: str, clients: int) -> float:
    """Wall time of `clients` GETs released together."""
    barrier = threading.Barrier(clients + 1)
    statuses: list[int] = []

    def client() -> None:
        barrier.wait()
        answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    barrier.wait()
    for thread in threads:
        thread.join()
    if statuses != [404] * clients:
        raise SystemExit(f"unexpected answers: {sorted(set(statuses))}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=250)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 32])
    args = parser.parse_args()
    print(machine_facts())
    latency = args.latency_ms / 1000
    rows = []
    with tempfile.TemporaryDirectory() as tmp, running_hub(Path(tmp), args.latency_ms) as hub:
        url = f"{hub.url}/policies/bench-concurrency/1.0.0"
        burst(url, hub.token, 1)  # warm-up: connections, imports, SQLite
        for clients in args.clients:
            wall = burst(url, hub.token, clients)
            rows.append(
                (clients, f"{wall:.3f}", f"{clients * latency:.2f}", f"{wall / latency:.2f}")
            )
    print(f"GET bursts against the hub, injected latency {args.latency_ms} ms")
    print_table(["clients", "wall s", "if serialised s", "wall / latency"], rows)


if __name__ == "__main__":
    main()
