"""The part of the plugin that exists only under pytest-xdist: the hand-over of the `RunSpec` to
every worker (`XdistHooks`, registered only when xdist is present, as pytest-randomly does), and
the size of `-n auto` (`auto_workers`, called by the plugin's `pytest_xdist_auto_num_workers`)."""

from __future__ import annotations

from typing import Any

import pytest

from policy_checks import POLICIES_DIR
from publisher.release.runspec import WORKERINPUT_KEY, RunSpec


class XdistHooks:
    def __init__(self, spec: RunSpec) -> None:
        self._payload = spec.to_workerinput()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        # Every worker collects the same items in the same order without running git itself.
        node.workerinput[WORKERINPUT_KEY] = self._payload


# `-n auto` sized to the work (pytest_xdist_auto_num_workers). Starting the workers costs about a
# second on a 2-core runner (docs/benchmarks.md, "small release"), so below these counts one
# process is faster; above them, never more workers than versions.
RELEASE_MIN_FOR_WORKERS = 32  # versions to deliver (each waits on the hub twice); see benchmarks.md
AUTHOR_PER_WORKER = 400  # versions to validate per worker: each costs ~1 ms of CPU


def auto_workers(config: pytest.Config, cpus: int) -> int | None:
    """How many workers `-n auto` starts for this run, or None to leave it to xdist. The count
    is the run's own (`Run.count`: the plan's versions to deliver, or the folders to
    validate), made without locking or writing anything."""
    try:
        work = _work(config)
    except Exception:  # any problem is reported by the run itself, with its proper message
        return None
    if work is None:
        return None
    if config.option.release:
        return 0 if work < RELEASE_MIN_FOR_WORKERS else min(cpus, work)
    # Validation is CPU work, and the controller takes three reports an item: it needs a core of
    # its own, and one worker beside it is slower than no xdist at all (on 2 cores, `-n 2`
    # validates 10 000 versions in 12 s, one process in 9 s: docs/benchmarks.md).
    workers = min(cpus - 1, work // AUTHOR_PER_WORKER)
    return workers if workers >= 2 else 0


def _work(config: pytest.Config) -> int | None:
    """The number of items this run will have, from the run itself (no second plan)."""
    from publisher.plugin import make_run

    if not (config.rootpath / POLICIES_DIR).is_dir():
        return None
    run = make_run(config)
    try:
        return run.count()
    finally:
        run.close()
