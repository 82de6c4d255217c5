"""Committing and pushing `.state/` after a release (`--commit-state`, `--push`).

When a push is rejected because the branch moved (another release, a merged PR), the remote branch
is fetched and merged; the state files are merged by meaning, not by text: the union of
deliveries, and the baseline that is further along history. Then the push is retried.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from publisher.printable import printable
from publisher.repo import git as gitrepo
from publisher.repo.git import GitError
from publisher.state.folder import (
    BASELINE_FILE,
    DELIVERED_FILE,
    DeliveredIndex,
    StateDir,
    StateError,
    parse_baseline,
    parse_delivered,
)

PUSH_ATTEMPTS = 5
PUSH_TIMEOUT = 120  # seconds for one `git push`


class StateSyncError(Exception):
    """The state could not be committed or pushed; the message says what to do."""


def _state_paths(repo: Path, state: StateDir) -> tuple[str, str]:
    try:
        rel = state.path.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        raise StateSyncError(
            f"{state.display} is outside the repository; cannot commit it"
        ) from None
    return f"{rel}/{DELIVERED_FILE}", f"{rel}/{BASELINE_FILE}"


def commit_and_push(repo: Path, state: StateDir, release_sha: str, push: bool) -> list[str]:
    """Commit the state files of the release `release_sha`; with `push`, push them. Returns lines
    for the summary."""
    delivered_path, baseline_path = _state_paths(repo, state)
    paths = [p for p in (delivered_path, baseline_path) if (repo / p).exists()]
    branch = _current_branch(repo) if push else None
    message = f"policy-hub: record release {release_sha[:12]}\n\nState written by pytest --release."
    notes = []
    if gitrepo.commit_paths(repo, paths, message):
        notes.append(f"state committed ({', '.join(paths)})")
    else:
        notes.append("state unchanged: nothing to commit")
    if branch:
        notes.append(_push_with_retry(repo, state, branch, delivered_path, baseline_path))
    return notes


def _current_branch(repo: Path) -> str:
    branch = gitrepo.git(repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
    if not branch:
        raise StateSyncError(
            "HEAD is detached, so there is no branch to push the state to; check out the branch "
            "(e.g. actions/checkout with ref: main) and pass --release-sha for the released commit"
        )
    return branch


def _push_with_retry(
    repo: Path, state: StateDir, branch: str, delivered_path: str, baseline_path: str
) -> str:
    error = ""
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        try:
            proc = gitrepo.run_git(
                repo, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", timeout=PUSH_TIMEOUT
            )
        except GitError as exc:
            error = str(exc)
        else:
            if proc.returncode == 0:
                return f"state pushed to origin/{branch}" + (
                    f" after {attempt} attempts" if attempt > 1 else ""
                )
            error = proc.stderr.decode("utf-8", "replace").strip()
        if attempt == PUSH_ATTEMPTS:
            break
        # Jittered, so concurrent releases that raced for the branch do not race again.
        time.sleep(min(8.0, 0.5 * 2 ** (attempt - 1)) * random.uniform(1.0, 2.0))
        gitrepo.git(repo, "fetch", "--quiet", "origin", branch)
        merge_remote_state(repo, state, "FETCH_HEAD", delivered_path, baseline_path)
    raise StateSyncError(
        f"push to origin/{branch} still rejected after {PUSH_ATTEMPTS} attempts: "
        f"{printable(error, 500)}"
    )


def merge_remote_state(
    repo: Path, state: StateDir, remote: str, delivered_path: str, baseline_path: str
) -> None:
    """Merge `remote` into HEAD, resolving the state files by meaning."""
    ours = state.read_delivered()
    our_baseline = parse_baseline(state.read_baseline_text() or "")
    theirs = _read_remote_delivered(repo, remote, delivered_path)
    their_baseline = parse_baseline(
        gitrepo.git(repo, "show", f"{remote}:{baseline_path}", check=False)
    )
    proc = gitrepo.run_git(repo, "merge", "--no-ff", "--no-commit", "--quiet", remote)
    conflicted = gitrepo.git(repo, "diff", "--name-only", "--diff-filter=U").split()
    outside = [p for p in conflicted if p not in (delivered_path, baseline_path)]
    if outside or (proc.returncode != 0 and not conflicted):
        gitrepo.git(repo, "merge", "--abort", check=False)
        raise StateSyncError(
            f"cannot merge {remote} automatically "
            f"({', '.join(outside) or proc.stderr.decode('utf-8', 'replace').strip()}); "
            "the state commit is kept locally: merge by hand and push"
        )
    state.write_delivered(ours.merged(theirs))
    baseline = _later_baseline(repo, our_baseline, their_baseline)
    if baseline:
        state.write_baseline(baseline)
    gitrepo.git(
        repo, "add", "--", *[p for p in (delivered_path, baseline_path) if (repo / p).exists()]
    )
    gitrepo.git(
        repo, *gitrepo.committer_args(repo), "commit", "--quiet", "--no-verify", "--no-edit"
    )


def _read_remote_delivered(repo: Path, remote: str, path: str) -> DeliveredIndex:
    proc = gitrepo.run_git(repo, "show", f"{remote}:{path}")
    if proc.returncode != 0:
        return DeliveredIndex()
    try:
        return parse_delivered(proc.stdout.decode("utf-8"), f"{remote}:{path}")
    except (StateError, UnicodeDecodeError) as exc:
        raise StateSyncError(f"the remote state is unreadable: {exc}") from None


def _later_baseline(repo: Path, ours: str | None, theirs: str | None) -> str | None:
    """The baseline only moves forward along history: the descendant of the two wins."""
    if not ours or not theirs or ours == theirs:
        return ours or theirs
    if gitrepo.is_ancestor(repo, theirs, ours):
        return ours
    return theirs
