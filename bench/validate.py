"""Scenario 2: author-mode validation (`pytest -n 2`, and single-process) of N policies, against a
bare Python loop in the same interpreter that reads, parses and schema-checks the same files.

    python bench/validate.py                   # N = 2000, 10000
    python bench/validate.py --n 2000 --quick
"""

from __future__ import annotations

import argparse
import subprocess
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

# The floor: what any validator must do per file, with validators compiled once, in one process,
# started as a fresh interpreter like pytest is (imports included in its wall time).
BARE_LOOP = """
import json, sys
from pathlib import Path
import jsonschema, yaml
from importlib import resources
rules = resources.files("policy_checks") / "rules"
meta_v = jsonschema.Draft202012Validator(json.loads((rules / "metadata.schema.json").read_text()))
defn_v = jsonschema.Draft202012Validator(json.loads((rules / "definition.schema.json").read_text()))
errors = 0
for folder in sorted(Path("policies").glob("*/v*")):
    meta = json.loads((folder / "metadata.json").read_bytes())
    defn = yaml.load((folder / "policy-definition.yaml").read_bytes(), Loader=yaml.CSafeLoader)
    errors += sum(1 for _ in meta_v.iter_errors(meta)) + sum(1 for _ in defn_v.iter_errors(defn))
print(errors, "errors")
"""


def validate_rows(env: Env, workdir: Path, n: int, workers: list[int]) -> list[list[object]]:
    repo = cached_repo(workdir, n)
    bare = run_measured([env.python, "-c", BARE_LOOP], repo, env=env.environ())
    assert bare.returncode == 0 and bare.last_line() == "0 errors", bare.output
    rows: list[list[object]] = [
        [n, "bare loop", f"{bare.wall:.2f}", "1.00", f"{bare.controller_peak_mb:.0f}", "", "ok"]
    ]
    for count in workers:
        args = ["-n", str(count)] if count else ["-p", "no:xdist"]
        m = run_measured(env.pytest_cmd(*args), repo, env=env.environ())
        ok = m.returncode == 0 and f"{n} passed" in m.last_line()
        label = f"pytest -n {count}" if count else "pytest -p no:xdist"
        rows.append(
            [
                n,
                label,
                f"{m.wall:.2f}",
                f"{m.wall / bare.wall:.2f}",
                f"{m.controller_peak_mb:.0f}",
                f"{m.tree_peak_mb:.0f}",
                "ok" if ok else f"FAILED: {m.last_line()}",
            ]
        )
    subprocess.run(["rm", "-rf", str(repo)], check=False)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[2, 0], help="-n values; 0 = -p no:xdist"
    )
    add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.n = [2000]
    print(machine_facts())
    print("author-mode validation vs a bare parse + schema-check loop (ratio = wall / bare)")
    rows = [
        row for n in args.n for row in validate_rows(env_from(args), args.workdir, n, args.workers)
    ]
    print_table(["N", "run", "wall s", "ratio", "controller MB", "tree MB", "check"], rows)
    return 0 if all(r[-1] == "ok" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
