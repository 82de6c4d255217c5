"""Randomised release histories (seeded, bounded): commits of every kind interleaved with releases
against a real hub injecting 503/429, dropped connections after commit, latency and answers slower
than the read timeout, and SIGKILLs of the whole run. After every release: each version created at
most once, delivered.json only added to and matching the hub, the baseline moved only forward and
only over a delivered change set, state files whole; at the end a fault-free release delivers all.

CI runs `BUDGET.histories` small histories with a fixed seed; `RELIABILITY_BUDGET=large` (or a
number of histories) and `RELIABILITY_SEED` widen it; see docs/reliability.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.figures import BUDGET, figures_file, record
from tests.reliability.history import History


@pytest.mark.parametrize("index", range(BUDGET.histories))
def test_random_history_delivers_everything_exactly_once(
    index: int, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    seed = BUDGET.seed + index
    history = History(seed, tmp_path)
    counts = history.run(BUDGET.steps)
    record(figures_file(tmp_path_factory), "history", **dict(counts))
    print(f"history seed {seed}: {dict(counts)}")
    assert counts["lost"] == 0 and counts["duplicated"] == 0
