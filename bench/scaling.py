"""Scenario 4: how release, validation and the no-op release grow with N (100, 1000, 10 000), and
the engine steps that could hide a quadratic term (reading delivered.json, the git diff and the
plan, the merge into delivered.json) timed in-process.

    python bench/scaling.py                    # N = 100, 1000, 10000
    python bench/scaling.py --quick            # N = 100, 1000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import (
    Env,
    add_common_args,
    cached_repo,
    env_from,
    git,
    machine_facts,
    print_table,
    run_measured,
    running_hub,
)

from publisher.release.plan import make_plan
from publisher.state.folder import DeliveredIndex, DeliveryRecord, StateDir, parse_baseline


def engine_row(workdir: Path, n: int) -> list[object]:
    """The controller's own steps on a repository of n delivered versions plus one new one."""
    repo = cached_repo(workdir, n, delivered=True)
    state = StateDir(repo / ".state")
    start = time.perf_counter()
    delivered = state.read_delivered()
    read = time.perf_counter() - start
    baseline_text = state.read_baseline_text()
    # From the empty tree: every version is in the diff and goes through the early filter.
    start = time.perf_counter()
    plan = make_plan(repo, git(repo, "rev-parse", "HEAD"), None, None, delivered)
    planned = time.perf_counter() - start
    assert len(plan.already_delivered) == n and not plan.to_deliver
    start = time.perf_counter()
    plan = make_plan(
        repo,
        git(repo, "rev-parse", "HEAD"),
        baseline_text,
        parse_baseline(baseline_text or ""),
        delivered,
    )
    noop_plan = time.perf_counter() - start
    new = [
        DeliveryRecord(f"new-{i}", "1.0.0", "t", "0" * 40, "sha256:" + "0" * 64, "published")
        for i in range(n)
    ]
    start = time.perf_counter()
    merged = DeliveredIndex(delivered)
    for record in new:
        merged.add(record)
    text = merged.dumps()
    merge = time.perf_counter() - start
    assert len(merged) == 2 * n and text
    return [
        n,
        f"{read * 1000:.0f}",
        f"{planned * 1000:.0f}",
        f"{noop_plan * 1000:.0f}",
        f"{merge * 1000:.0f}",
    ]


def harness_rows(env: Env, workdir: Path, n: int, workers: int, latency_ms: int) -> list[object]:
    repo = cached_repo(workdir, n)
    validate = run_measured(env.pytest_cmd("-n", str(workers)), repo, env=env.environ())
    assert validate.returncode == 0, validate.output[-2000:]
    with running_hub(workdir / "hub", latency_ms) as hub:
        release = run_measured(
            env.pytest_cmd("--release", "--hub-url", hub.url, "-n", str(workers)),
            repo,
            env=env.environ({"POLICY_HUB_TOKEN": hub.token}),
        )
        assert release.returncode == 0 and hub.count() == n, release.output[-2000:]
    noop = run_measured(
        env.pytest_cmd("--release", "--hub-url", "http://127.0.0.1:9"), repo, env=env.environ()
    )
    assert noop.returncode == 0, noop.output[-2000:]
    ideal = n * 2 * latency_ms / 1000 / workers
    return [
        n,
        f"{validate.wall:.2f}",
        f"{release.wall:.2f}",
        f"{release.wall / ideal:.2f}",
        f"{release.controller_peak_mb:.0f}",
        f"{noop.wall:.2f}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--engine-only", action="store_true", help="only the in-process steps")
    add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.n = [100, 1000]
    print(machine_facts())
    print("engine steps, in-process (ms): from a repository of N delivered versions")
    rows = [engine_row(args.workdir, n) for n in args.n]
    print_table(
        ["N", "read delivered.json", "plan from root", "plan no-op", "merge N new + dump"], rows
    )
    if args.engine_only:
        return 0
    print(
        f"\nwhole runs (s): validation -n {args.workers}, release -n {args.workers} "
        f"(L = {args.latency_ms} ms; ratio = wall / N·2·L/P), and the second, no-op, release"
    )
    rows = [
        harness_rows(env_from(args), args.workdir, n, args.workers, args.latency_ms) for n in args.n
    ]
    print_table(
        ["N", "validate s", "release s", "release/ideal", "controller MB", "no-op release s"], rows
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
