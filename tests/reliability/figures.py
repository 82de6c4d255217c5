"""The suite's budget (CI default or `RELIABILITY_BUDGET=large|<histories>`) and its figures:
every reliability test appends what it did to one JSON-lines file, and
`python -m tests.reliability.figures FILE` adds them up for docs/reliability.md.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

BUDGET_ENV = "RELIABILITY_BUDGET"
SEED_ENV = "RELIABILITY_SEED"
FIGURES_ENV = "RELIABILITY_FIGURES"
DEFAULT_SEED = 20260501


@dataclass(frozen=True)
class Budget:
    """How much randomised work one run of the suite does."""

    name: str
    histories: int
    steps: int  # commits and releases per history, before the final fault-free release
    fuzz_examples: int  # hypothesis examples per fuzz test
    seed: int

    @classmethod
    def from_env(cls) -> Budget:
        raw = os.environ.get(BUDGET_ENV, "").strip().lower()
        seed = int(os.environ.get(SEED_ENV) or DEFAULT_SEED)
        if raw in ("", "ci", "small"):
            return cls("ci", histories=2, steps=6, fuzz_examples=150, seed=seed)
        if raw == "large":
            return cls("large", histories=24, steps=14, fuzz_examples=3000, seed=seed)
        if raw.isdigit() and int(raw) > 0:
            return cls(raw, histories=int(raw), steps=12, fuzz_examples=1000, seed=seed)
        raise pytest.UsageError(f"{BUDGET_ENV}={raw!r}: use 'ci', 'large' or a number of histories")


BUDGET = Budget.from_env()


def figures_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file for the whole session, shared by xdist workers (their base temps are siblings)."""
    chosen = os.environ.get(FIGURES_ENV)
    if chosen:
        return Path(chosen)
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    return base / "reliability-figures.jsonl"


def record(path: Path, kind: str, **counts: int) -> None:
    """Append one test's figures; a lock keeps lines of parallel workers whole."""
    line = json.dumps({"kind": kind, "budget": BUDGET.name, "seed": BUDGET.seed, **counts})
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(line + "\n")


def totals(path: Path) -> Counter[str]:
    total: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        data = json.loads(line)
        total[f"tests:{data['kind']}"] += 1
        for key, value in data.items():
            if isinstance(value, int) and key != "seed":
                total[key] += value
    return total


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.reliability.figures FIGURES.jsonl", file=sys.stderr)
        return 2
    for key, value in sorted(totals(Path(argv[0])).items()):
        print(f"{key:32} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
