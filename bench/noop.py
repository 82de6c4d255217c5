"""Scenario 3: a no-op release (every version already in `delivered.json`, baseline = HEAD) against
pytest collecting nothing with the same plugins loaded (`pytest --co -q` in an empty folder).

The hub URL is a closed port (127.0.0.1:9): with nothing to deliver the harness must not need it.

    python bench/noop.py                       # N = 10000
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
)

DEAD_HUB = "http://127.0.0.1:9"


def empty_collection(env: Env, workdir: Path, repeat: int) -> float:
    empty = workdir / "empty"
    empty.mkdir(parents=True, exist_ok=True)
    walls = []
    for _ in range(repeat):
        m = run_measured(env.pytest_cmd("--co"), empty, env=env.environ())
        assert m.returncode == 5, m.output  # "no tests collected"
        walls.append(m.wall)
    return min(walls)


def noop_row(env: Env, workdir: Path, n: int, floor: float, repeat: int) -> list[object]:
    repo = cached_repo(workdir, n, delivered=True)
    best = None
    for _ in range(repeat):
        m = run_measured(
            env.pytest_cmd("--release", "--hub-url", DEAD_HUB), repo, env=env.environ()
        )
        if best is None or m.wall < best.wall:
            best = m
    assert best is not None
    ok = best.returncode == 0 and "nothing" in best.output.lower()
    return [
        n,
        f"{best.wall:.2f}",
        f"{floor:.2f}",
        f"{best.wall / floor:.2f}",
        f"{best.controller_peak_mb:.0f}",
        "ok" if ok else f"FAILED (exit {best.returncode}): {best.last_line()}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best is kept)")
    add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.n, args.repeat = [1000], 1
    env = env_from(args)
    print(machine_facts())
    print("no-op release vs `pytest --co -q` in an empty folder (ratio = wall / empty)")
    floor = empty_collection(env, args.workdir, args.repeat)
    rows = [noop_row(env, args.workdir, n, floor, args.repeat) for n in args.n]
    print_table(["N delivered", "wall s", "empty --co s", "ratio", "controller MB", "check"], rows)
    return 0 if all(r[-1] == "ok" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
