"""The part of the plugin that exists only under pytest-xdist: the hand-over of the `RunSpec` to
every worker (`XdistHooks`, registered only when xdist is present, as pytest-randomly does), and
the size of `-n auto` (`auto_workers`, called by the plugin's `pytest_xdist_auto_num_workers`)."""

from __future__ import annotations

from typing import Any

import pytest

from publisher.plugin.options import resolve_options
from publisher.release.runspec import WORKERINPUT_KEY, RunSpec
from publisher.repo import git as gitrepo
from publisher.repo.git import POLICIES_DIR
from publisher.repo.layout import changed_version_folders, discover_version_folders, folder_identity
from publisher.state.folder import StateDir, parse_baseline


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
    """How many workers `-n auto` starts for this run, or None to leave it to xdist."""
    try:
        work = _work(config)
    except Exception:  # any problem is reported by the run itself, with its proper message
        return None
    if work is None:
        return None
    release = bool(config.option.release)
    if release:
        return 0 if work < RELEASE_MIN_FOR_WORKERS else min(cpus, work)
    # Validation is CPU work, and the controller takes three reports an item: it needs a core of
    # its own, and one worker beside it is slower than no xdist at all (on 2 cores, `-n 2`
    # validates 10 000 versions in 12 s, one process in 9 s: docs/benchmarks.md).
    workers = min(cpus - 1, work // AUTHOR_PER_WORKER)
    return workers if workers >= 2 else 0


def _work(config: pytest.Config) -> int | None:
    """The number of items this run will have, estimated cheaply before it is planned."""
    root = config.rootpath
    if not (root / POLICIES_DIR).is_dir():
        return None
    opts = resolve_options(config, root)
    if opts.release and opts.hub_url is None and opts.in_ci:
        return None  # a usage error before anything is read (CONTRACT section 2): not ours
    if not opts.release:
        if opts.changed_since:
            return len(changed_version_folders(root, opts.changed_since))
        return len(discover_version_folders(root))
    if opts.finalize:
        return 0
    delivered = StateDir(opts.state_dir).read_delivered()
    text = StateDir(opts.state_dir).read_baseline_text()
    release_sha = gitrepo.resolve_commit(root, opts.release_ref)
    recorded = parse_baseline(text) if text is not None else None
    baseline = gitrepo.resolve_baseline(root, recorded, text, release_sha)
    changed = gitrepo.changed_paths(root, baseline.diff_from, release_sha)
    folders = gitrepo.version_folders_of(changed) + gitrepo.loose_entries_of(changed)
    work = sum(1 for folder in folders if folder_identity(folder) not in delivered)
    return -(-work // opts.shard.total) if opts.shard else work
