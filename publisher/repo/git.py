"""Git, as the release flow needs it: the release commit, the baseline, the change set, and reading
policy files straight from a commit (so the published bytes are a pure function of that commit).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from policy_checks import POLICIES_DIR

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
SYMLINK_MODE = "120000"


class GitError(Exception):
    """Git could not answer; the message says what was asked and what git said."""


class ConfigurationError(Exception):
    """The repository cannot be released as it is (e.g. a shallow clone); the message says why."""


GIT_TIMEOUT = 300.0  # seconds for one git command (a push or fetch included)


def run_git(
    repo: Path, *args: str, input: bytes | None = None, timeout: float = GIT_TIMEOUT
) -> subprocess.CompletedProcess[bytes]:
    """The one way this project runs git: bounded in time, never prompting for credentials
    (`GIT_TERMINAL_PROMPT=0`: a CI job would hang on the prompt). Raises GitError when git is
    missing or gives no answer in time; the exit status is the caller's to judge."""
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *args],
            input=input,
            capture_output=True,
            timeout=timeout,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} gave no answer within {timeout:g} s") from None
    except FileNotFoundError:
        raise GitError("git is not installed, or not on PATH") from None


def succeeds(repo: Path, *args: str) -> bool:
    """Whether a git command that answers by its exit status says yes."""
    return run_git(repo, *args).returncode == 0


def git(repo: Path, *args: str, input: bytes | None = None, check: bool = True) -> str:
    """`run_git`, its stdout as text, and a GitError naming the command when it fails."""
    proc = run_git(repo, *args, input=input)
    if check and proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise GitError(f"git {' '.join(args)} failed: {err}")
    return proc.stdout.decode("utf-8", "surrogateescape")


# Answers about immutable objects (two commit ids, a commit that exists) and where a checkout's
# top level and git directory are, kept for the life of the process: `-n auto`'s estimate, the
# plan and the finalization ask several of the same questions in one run, and each git process
# costs a few milliseconds.
_CHECKOUTS: dict[str, tuple[Path, Path]] = {}
_ANCESTRY: dict[tuple[str, str, str], bool] = {}
_EXISTING: set[tuple[str, str]] = set()
_DIFFS: dict[tuple[str, ...], list[str]] = {}
_FULL_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _immutable(*ids: str) -> bool:
    return all(_FULL_ID.fullmatch(i) for i in ids)


def _checkout_facts(repo: Path) -> tuple[Path, Path] | None:
    """(top level, git directory) of the checkout at `repo`, or None outside git."""
    key = str(repo)
    if key not in _CHECKOUTS:
        proc = run_git(repo, "rev-parse", "--show-toplevel", "--absolute-git-dir")
        lines = proc.stdout.decode("utf-8", "surrogateescape").splitlines()
        if proc.returncode != 0 or len(lines) != 2:
            return None  # not (yet) a repository: asked again next time
        _CHECKOUTS[key] = (Path(lines[0]), Path(lines[1]))
    return _CHECKOUTS[key]


def git_dir(repo: Path) -> Path:
    """This checkout's own git directory (`.git`, or a worktree's folder inside it)."""
    facts = _checkout_facts(repo)
    return facts[1] if facts else Path(git(repo, "rev-parse", "--absolute-git-dir").strip())


def repo_toplevel(path: Path) -> Path | None:
    facts = _checkout_facts(path)
    return facts[0] if facts else None


def resolve_commit(repo: Path, ref: str) -> str:
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except GitError:
        raise ConfigurationError(
            f"{ref!r} is not a commit in {repo} (check --release-sha / GITHUB_SHA, "
            "and fetch it if the checkout is partial)"
        ) from None


def is_shallow(repo: Path) -> bool:
    # Asked each time: `git fetch --unshallow` changes it within a process's life.
    return git(repo, "rev-parse", "--is-shallow-repository").strip() == "true"


def is_ancestor(repo: Path, ancestor: str, commit: str) -> bool:
    key = (str(repo), ancestor, commit)
    if key in _ANCESTRY:
        return _ANCESTRY[key]
    answer = succeeds(repo, "merge-base", "--is-ancestor", ancestor, commit)
    if _immutable(ancestor, commit):
        _ANCESTRY[key] = answer
    return answer


def commit_exists(repo: Path, sha: str) -> bool:
    key = (str(repo), sha)
    if key in _EXISTING:
        return True
    exists = succeeds(repo, "cat-file", "-e", f"{sha}^{{commit}}")
    if exists and _immutable(sha):  # one that is missing may still be fetched
        _EXISTING.add(key)
    return exists


def moves_forward(repo: Path, recorded: str | None, release: str) -> bool:
    """Whether replacing the baseline `recorded` with `release` keeps it moving forward.

    Only an older release (an ancestor of the recorded baseline) would move it back; a baseline
    from a rewritten history, or none, may be replaced.
    """
    if not recorded or recorded == release or not commit_exists(repo, recorded):
        return True
    return not is_ancestor(repo, release, recorded)


@dataclass(frozen=True)
class Baseline:
    """Where the change set starts: a commit, or the empty tree with the reason."""

    sha: str | None  # the recorded baseline when it is usable
    diff_from: str  # what `git diff` compares against (the baseline or the empty tree)
    warning: str | None = None


def resolve_baseline(
    repo: Path, recorded: str | None, raw_text: str | None, release: str
) -> Baseline:
    """Use the recorded baseline when it is an ancestor of the release; otherwise the empty tree.

    Starting from the empty tree counts the root commit's own files as changed, so a lost or
    rewritten baseline can never hide a version (the early filter and the hub check keep it safe).
    """
    if raw_text is None:
        return Baseline(None, EMPTY_TREE, "no baseline recorded yet: starting from the root commit")
    if recorded is None:
        return Baseline(
            None,
            EMPTY_TREE,
            "baseline.sha is not a 40-hex commit id: starting from the root commit",
        )
    if not commit_exists(repo, recorded):
        return Baseline(
            None,
            EMPTY_TREE,
            f"baseline {recorded[:12]} is not in this repository (history rewritten?): "
            "starting from the root commit",
        )
    if not is_ancestor(repo, recorded, release):
        return Baseline(
            None,
            EMPTY_TREE,
            f"baseline {recorded[:12]} is not an ancestor of the release commit "
            "(force-push?): starting from the root commit",
        )
    return Baseline(recorded, recorded)


def check_not_shallow(repo: Path) -> None:
    if is_shallow(repo):
        raise ConfigurationError(
            "this is a shallow clone, so the change set since the baseline cannot be computed; "
            "fetch full history (`git fetch --unshallow`, or `actions/checkout` with "
            "`fetch-depth: 0`)"
        )


def changed_paths(
    repo: Path, diff_from: str, release: str, pathspec: str = POLICIES_DIR
) -> list[str]:
    key = (str(repo), diff_from, release, pathspec)
    if key not in _DIFFS:
        out = git(
            repo, "diff", "--no-renames", "--name-only", "-z", diff_from, release, "--", pathspec
        )
        paths = [p for p in out.split("\0") if p]
        if not _immutable(diff_from, release):
            return paths
        _DIFFS[key] = paths
    return list(_DIFFS[key])


@dataclass
class TreeEntry:
    mode: str
    sha: str
    size: int


@dataclass
class CommitTree:
    """The files under `policies/` at one commit, read with one `ls-tree` and one `cat-file`."""

    repo: Path
    commit: str
    entries: dict[str, TreeEntry] = field(default_factory=dict)
    # Indexed once, from `entries`: asked per version folder, a scan of every entry made the
    # plan and each worker quadratic in the versions.
    links: list[str] = field(default_factory=list, repr=False)
    _children: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def load(
        cls, repo: Path, commit: str, pathspecs: Sequence[str] = (POLICIES_DIR,)
    ) -> CommitTree:
        """The files under `pathspecs` (folders) at `commit`; no pathspec reads nothing."""
        tree = cls(repo, commit)
        if pathspecs:
            tree._list(pathspecs)
        tree.links = sorted(p for p, e in tree.entries.items() if e.mode == SYMLINK_MODE)
        for path in tree.entries:
            folder, _, name = path.rpartition("/")
            tree._children.setdefault(folder, []).append(name)
        return tree

    def _list(self, pathspecs: Sequence[str]) -> None:
        # Literal: a folder named `a*` or `:x` must not act as a glob or pathspec magic.
        args = ("ls-tree", "-r", "-l", "-z", "--full-tree", self.commit, "--", *pathspecs)
        out = git(self.repo, "--literal-pathspecs", *args)
        for line in out.split("\0"):
            if not line:
                continue
            meta, path = line.split("\t", 1)
            mode, kind, sha, size = meta.split()
            if kind == "blob":
                self.entries[path] = TreeEntry(mode, sha, int(size) if size.isdigit() else 0)

    def links_in(self, folder: str) -> list[str]:
        """Symbolic links that are `folder` or lie inside it (git keeps nothing under a link)."""
        return [path for path in self.links if path == folder or path.startswith(folder + "/")]

    def names_in(self, folder: str) -> list[str]:
        """The names of the files straight inside `folder`."""
        return sorted(self._children.get(folder, ()))

    def is_link(self, path: str) -> bool:
        entry = self.entries.get(path)
        return entry is not None and entry.mode == SYMLINK_MODE

    def read_blobs(self, shas: Sequence[str]) -> dict[str, bytes]:
        """Contents of many blobs through one `git cat-file --batch` process."""
        if not shas:
            return {}
        unique = list(dict.fromkeys(shas))
        proc = run_git(
            self.repo, "cat-file", "--batch", input="".join(f"{s}\n" for s in unique).encode()
        )
        if proc.returncode != 0:
            raise GitError(f"git cat-file --batch failed: {proc.stderr.decode(errors='replace')}")
        blobs: dict[str, bytes] = {}
        data = proc.stdout
        pos = 0
        for sha in unique:
            header_end = data.index(b"\n", pos)
            header = data[pos:header_end].split()
            if len(header) < 3:
                raise GitError(f"git cat-file: {sha} is missing")
            size = int(header[2])
            start = header_end + 1
            blobs[sha] = data[start : start + size]
            pos = start + size + 1
        return blobs


def committer_args(repo: Path) -> list[str]:
    """`-c` options for a commit: the configured identity, or a bot identity when there is none."""
    if git(repo, "config", "user.email", check=False).strip():
        return []
    # CI runners often have no identity; a fixed bot identity beats a failed commit.
    return [
        "-c",
        "user.name=policy-hub-release",
        "-c",
        "user.email=policy-hub-release@users.noreply.github.com",
    ]


def commit_paths(repo: Path, paths: Sequence[str], message: str) -> bool:
    """Commit exactly `paths` (state files) with `message`; False when nothing changed."""
    git(repo, "add", "--", *paths)
    if git(repo, "diff", "--cached", "--name-only", "--", *paths).strip() == "":
        return False
    git(
        repo,
        *committer_args(repo),
        "commit",
        "--quiet",
        "--no-verify",
        "-m",
        message,
        "--",
        *paths,
    )
    return True
