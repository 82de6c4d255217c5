"""Scenario: the release users meet most, a few new versions in a repository of many delivered ones
(N delivered, K new), against the reference hub with latency L, with `-n auto` (what the release
workflow passes) and without `-n`. The floor is `pytest --co -q` in an empty folder with the same
plugins; target (issue 15): K = 1 with `-n auto` within 1.3 × that floor.

    python bench/small_release.py                       # N = 3000, K = 1 and 10, L = 20 ms
    python bench/small_release.py --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    add_common_args,
    cached_repo,
    env_from,
    git,
    machine_facts,
    policy_files,
    policy_name,
    print_table,
    run_measured,
    running_hub,
)
from noop import empty_collection


def with_new_versions(repo: Path, delivered: int, new: int) -> None:
    """Add `new` versions (v2.0.0 of the first policies) in one commit after the baseline."""
    for index in range(new):
        folder = repo / "policies" / policy_name(index) / "v2.0.0"
        folder.mkdir(parents=True)
        meta, definition = policy_files(index)
        (folder / "metadata.json").write_text(meta.replace('"1.0.0"', '"2.0.0"'))
        (folder / "policy-definition.yaml").write_text(definition)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"{new} new versions")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delivered", type=int, default=3000)
    parser.add_argument("--new", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (median is kept)")
    add_common_args(parser)
    args = parser.parse_args()
    env = env_from(args)
    floor = empty_collection(env, args.workdir, args.repeat)
    print(machine_facts())
    print(f"floor: pytest --co -q in an empty folder = {floor:.2f} s")
    rows, failed = [], False
    modes = (["-n", "auto"], [])
    for new in args.new:
        # The modes take turns within each repeat, so a drift of the machine's speed (a 2-core
        # VM's neighbours) does not land on one of them.
        walls: dict[int, list[float]] = {i: [] for i in range(len(modes))}
        for _ in range(args.repeat):
            for i, workers in enumerate(modes):
                repo = cached_repo(args.workdir, args.delivered, delivered=True)
                with_new_versions(repo, args.delivered, new)
                with running_hub(args.workdir / "hub", args.latency_ms) as hub:
                    m = run_measured(
                        env.pytest_cmd("--release", "--hub-url", hub.url, *workers),
                        repo,
                        env=env.environ({"POLICY_HUB_TOKEN": hub.token}),
                    )
                    ok = m.returncode == 0 and hub.count() == new
                failed |= not ok
                if not ok:
                    print(m.output[-2000:])
                walls[i].append(m.wall)
        for i, workers in enumerate(modes):
            wall = statistics.median(walls[i])
            rows.append(
                [
                    args.delivered,
                    new,
                    " ".join(workers) or "(none)",
                    f"{wall:.2f}",
                    f"{wall / floor:.2f}",
                    "ok" if not failed else "FAILED",
                ]
            )
    print_table(["delivered", "new", "-n", "wall s", "× floor", "check"], rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
