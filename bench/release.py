"""Scenario 1: `pytest --release -n P` of N new versions against the reference hub with latency L.

The physical limit: two requests per new version (GET, POST), P in flight at a time, each taking
at least L, so no harness can beat N·2·L/P. Prints wall / that ideal, and peak memory.

    python bench/release.py                    # N = 1000, 5000 × -n 8, 16; L = 20 ms
    python bench/release.py --n 1000 --workers 8 --quick
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    Env,
    add_common_args,
    cached_repo,
    env_from,
    machine_facts,
    print_table,
    run_measured,
    running_hub,
)


def release_once(env: Env, workdir: Path, n: int, workers: int, latency_ms: int) -> list[object]:
    repo = cached_repo(workdir, n)
    with running_hub(workdir / "hub", latency_ms) as hub:
        args = ["--release", "--hub-url", hub.url]
        if workers:
            args += ["-n", str(workers)]
        m = run_measured(
            env.pytest_cmd(*args), repo, env=env.environ({"POLICY_HUB_TOKEN": hub.token})
        )
        published = hub.count()
    ideal = n * 2 * latency_ms / 1000 / max(workers, 1)
    ok = m.returncode == 0 and published == n
    if not ok:
        print(f"!! N={n} -n {workers}: exit {m.returncode}, hub holds {published}")
        print(m.output[-3000:])
    return [
        n,
        workers,
        f"{m.wall:.2f}",
        f"{ideal:.2f}",
        f"{m.wall / ideal:.2f}",
        f"{m.controller_peak_mb:.0f}",
        f"{m.tree_peak_mb:.0f}",
        "ok" if ok else "FAILED",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--workers", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell (best is kept)")
    add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.n, args.workers = [1000], [8]
    print(machine_facts())
    print(f"release, hub latency {args.latency_ms} ms; ideal = N·2·L/P")
    rows = []
    for n in args.n:
        for workers in args.workers:
            runs = [
                release_once(env_from(args), args.workdir, n, workers, args.latency_ms)
                for _ in range(args.repeat)
            ]
            rows.append(min(runs, key=lambda r: float(str(r[2]))))
    print_table(
        ["N", "-n", "wall s", "ideal s", "wall/ideal", "controller MB", "tree MB", "check"], rows
    )
    return 0 if all(r[-1] == "ok" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
