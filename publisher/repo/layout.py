"""Where policy version folders are, and how their two files are read: from the working tree (author
mode) or from the release commit's git objects (release mode), with the same refusals either way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from policy_checks import (
    DEFINITION_FILE,
    MAX_FILE_BYTES,
    METADATA_FILE,
    POLICIES_DIR,
    RESOURCE_SCHEMAS_DIR,
    TESTS_FILE,
    Finding,
    OtherFile,
    PolicyFiles,
    ResourceSchemaError,
    looks_like_version,
    not_a_folder_finding,
    parse_version_dir,
    read_policy_folder,
    read_resource_schema_files,
    schema_file_ignored,
    symlink_finding,
)
from policy_checks.cel.resources import FOLDER_REFUSED, LINK_REFUSED
from publisher.repo import git as gitrepo
from publisher.repo.git import SYMLINK_MODE, CommitTree

POLICY_FILES = (METADATA_FILE, DEFINITION_FILE)
READ_FILES = (*POLICY_FILES, TESTS_FILE)  # what validating a version reads of its folder


def folder_identity(folder: str) -> tuple[str, str]:
    """(name, version) of `policies/<name>/<version-dir>`; the raw dir name when not `v<semver>`."""
    parts = folder.split("/")
    name = parts[1] if len(parts) > 1 else folder
    version_dir = parts[2] if len(parts) > 2 else ""
    return name, parse_version_dir(version_dir) or version_dir.removeprefix("v")


def version_folder(name: str, version: str) -> str:
    """`policies/<name>/v<version>`: the inverse of `folder_identity` for a well-formed version."""
    return f"{POLICIES_DIR}/{name}/v{version}"


def version_folders_of(paths: Iterable[str]) -> list[str]:
    """`policies/<name>/<version-dir>/...` paths reduced to their version folders, sorted."""
    folders = set()
    for path in paths:
        parts = PurePosixPath(path).parts
        if len(parts) >= 4 and parts[0] == POLICIES_DIR and looks_like_version(parts[2]):
            folders.add("/".join(parts[:3]))
    return sorted(folders)


def loose_entries_of(paths: Iterable[str]) -> list[str]:
    """Paths under `policies/` outside every version folder: straight in `policies/` or in a
    policy folder, or deeper in a policy's other folders (`docs/`). Among them a symbolic link,
    wherever it is, or an entry named like a version straight in a policy folder is a folder of
    its own that fails validation (a link is never followed, never skipped)."""
    loose = []
    for path in paths:
        parts = PurePosixPath(path).parts
        outside_versions = len(parts) <= 3 or not looks_like_version(parts[2])
        if len(parts) >= 2 and parts[0] == POLICIES_DIR and outside_versions:
            loose.append(path)
    return sorted(loose)


def discover_version_folders(root: Path) -> list[str]:
    """Every folder under `policies/` that is, or looks like, a policy version folder.

    Each entry two levels down that looks like a version (`looks_like_version`) is a candidate,
    a folder or not (a malformed one, or a file, becomes a failing item, never a silent skip);
    other folders there (`docs/`) belong to the policy. A policy directory holding no version at
    all but files is a candidate itself, and so is every symbolic link outside a version folder,
    at any depth (it fails; it is never followed, never skipped).
    """
    base = root / POLICIES_DIR
    if not base.is_dir():
        return []
    folders = []
    for policy_dir in sorted(base.iterdir()):
        if policy_dir.is_symlink():
            folders.append(f"{POLICIES_DIR}/{policy_dir.name}")
            continue
        if not policy_dir.is_dir():
            continue
        entries = sorted(policy_dir.iterdir())
        versions = [p for p in entries if p.is_symlink() or looks_like_version(p.name)]
        if not versions and not any(p.is_dir() for p in entries):
            if any(p.is_file() for p in policy_dir.iterdir()):
                folders.append(f"{POLICIES_DIR}/{policy_dir.name}")
            continue
        folders.extend(f"{POLICIES_DIR}/{policy_dir.name}/{v.name}" for v in versions)
        for other in entries:
            if other not in versions and other.is_dir() and not other.is_symlink():
                folders.extend(_links_below(root, other))
    return folders


def _links_below(root: Path, folder: Path) -> list[str]:
    """The symbolic links anywhere under `folder` (not followed), repo-relative, sorted."""
    found = []
    for current, dirs, files in os.walk(folder):  # os.walk never descends into a linked dir
        for name in dirs + files:
            path = Path(current, name)
            if path.is_symlink():
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


class WorkingTreeSource:
    """Policy files as they are on disk (what an author is editing)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, folder: str) -> PolicyFiles:
        return read_policy_folder(self.root, folder)

    def resource_schema_files(self) -> dict[str, bytes]:
        """resource-schemas/ as it is on disk; raises ResourceSchemaError."""
        return read_resource_schema_files(self.root)


class CommitSource:
    """Policy files as they are in one commit, read in bulk through `git cat-file --batch`."""

    # Past this many folders one listing of all of policies/ is cheaper than naming each.
    NAMED_FOLDERS_MAX = 1000

    def __init__(self, repo: Path, commit: str, folders: Sequence[str] | None = None) -> None:
        """All of `policies/` at `commit`, or only `folders` (a change set) when given."""
        if folders is None or len(folders) > self.NAMED_FOLDERS_MAX:
            self.tree = CommitTree.load(repo, commit)
        else:
            self.tree = CommitTree.load(repo, commit, sorted(folders))
        self._blobs: dict[str, bytes] = {}

    def prefetch(self, folders: list[str]) -> None:
        """Read every file of these folders in one git process."""
        wanted = []
        for folder in folders:
            for filename in READ_FILES:
                entry = self.tree.entries.get(f"{folder}/{filename}")
                if entry is not None and entry.mode != SYMLINK_MODE:
                    wanted.append(entry.sha)
        self._blobs.update(self.tree.read_blobs([s for s in wanted if s not in self._blobs]))

    def read(self, folder: str) -> PolicyFiles:
        links = self.tree.links_in(folder)
        errors: list[Finding] = [symlink_finding(path) for path in links]
        if folder in self.tree.entries and folder not in links:
            errors.append(not_a_folder_finding(folder))
        contents: dict[str, bytes | None] = {}
        for filename in READ_FILES:
            path = f"{folder}/{filename}"
            contents[filename] = None if path in links else self._read_file(path, errors)
        return PolicyFiles(
            folder=folder,
            metadata=contents[METADATA_FILE],
            definition=contents[DEFINITION_FILE],
            read_errors=tuple(errors),
            names=tuple(self.tree.names_in(folder)),
            tests=contents[TESTS_FILE],
            read_other=lambda rel: self._read_other(folder, links, rel),
        )

    def _read_other(self, folder: str, links: list[str], rel: str) -> OtherFile:
        """A file of the version folder at the commit; a link on the way is refused."""
        path = f"{folder}/{rel}"
        if any(path == link or path.startswith(link + "/") for link in links):
            return OtherFile(None, "is a symbolic link (links are never followed)")
        entry = self.tree.entries.get(path)
        if entry is None:
            return OtherFile(None)
        if entry.size > MAX_FILE_BYTES:
            return OtherFile(None, f"is {entry.size} bytes; the limit is {MAX_FILE_BYTES} (1 MiB)")
        return OtherFile(self._blob(entry.sha))

    def resource_schema_files(self) -> dict[str, bytes]:
        """resource-schemas/ as the commit holds it, with the working tree's refusals; raises
        ResourceSchemaError."""
        tree = CommitTree.load(self.tree.repo, self.tree.commit, [RESOURCE_SCHEMAS_DIR])
        wanted: dict[str, str] = {}
        for path, entry in sorted(tree.entries.items()):
            if path == RESOURCE_SCHEMAS_DIR:
                what = "a symbolic link" if entry.mode == SYMLINK_MODE else "a file"
                raise ResourceSchemaError(f"{path}: is {what}, not a folder of schemas")
            name, _, deeper = path.removeprefix(f"{RESOURCE_SCHEMAS_DIR}/").partition("/")
            if schema_file_ignored(name):
                continue
            if deeper:
                raise ResourceSchemaError(f"{RESOURCE_SCHEMAS_DIR}/{name}: {FOLDER_REFUSED}")
            if entry.mode == SYMLINK_MODE:
                raise ResourceSchemaError(f"{path}: {LINK_REFUSED}")
            if entry.size > MAX_FILE_BYTES:
                raise ResourceSchemaError(
                    f"{path}: is {entry.size} bytes; the limit is {MAX_FILE_BYTES} (1 MiB)"
                )
            wanted[path] = entry.sha
        blobs = tree.read_blobs(list(wanted.values()))
        return {path: blobs[sha] for path, sha in wanted.items()}

    def _blob(self, sha: str) -> bytes:
        if sha not in self._blobs:
            self._blobs.update(self.tree.read_blobs([sha]))
        return self._blobs[sha]

    def _read_file(self, path: str, errors: list[Finding]) -> bytes | None:
        entry = self.tree.entries.get(path)
        if entry is None or entry.mode == SYMLINK_MODE:
            return None
        if entry.size > MAX_FILE_BYTES:
            errors.append(
                Finding(
                    file=path,
                    message=f"is {entry.size} bytes; the limit is {MAX_FILE_BYTES} (1 MiB)",
                    rule="size",
                )
            )
            return None
        return self._blob(entry.sha)


def changed_version_folders(root: Path, ref: str) -> list[str]:
    """`--changed-since REF`: the version folders of the working tree that differ from the
    merge-base of REF and HEAD (committed, staged or not, or untracked). Raises GitError."""
    if not gitrepo.git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False):
        remote, _, branch = ref.partition("/") if "/" in ref else ("origin", "", ref)
        fetch = f"git fetch {remote} {branch}"
        raise gitrepo.GitError(
            f"no commit {ref!r} in this clone: fetch it ({fetch}; in GitHub Actions, "
            "actions/checkout with fetch-depth: 0), or name a ref that exists (git branch -a)"
        )
    base = gitrepo.git(root, "merge-base", ref, "HEAD", check=False).strip()
    if not base:
        raise gitrepo.GitError(
            f"{ref} and HEAD have no common commit in this clone (a shallow clone?): fetch "
            "their history (git fetch --unshallow; in GitHub Actions, fetch-depth: 0)"
        )
    paths = gitrepo.git(root, "diff", "--no-renames", "--name-only", "-z", base, "--", POLICIES_DIR)
    untracked = gitrepo.git(
        root, "ls-files", "--others", "--exclude-standard", "-z", "--", POLICIES_DIR
    )
    touched = version_folders_of(p for p in (paths + untracked).split("\0") if p)
    existing = set(discover_version_folders(root))
    return [f for f in touched if f in existing]


def uncommitted_version_folders(root: Path) -> list[str]:
    """The version folders of the working tree whose files differ from HEAD: new or changed,
    staged or not, or untracked (a release publishes the release commit only, never these).
    Raises GitError."""
    changed = gitrepo.git(
        root, "diff", "--no-renames", "--name-only", "-z", "HEAD", "--", POLICIES_DIR
    )
    untracked = gitrepo.git(
        root, "ls-files", "--others", "--exclude-standard", "-z", "--", POLICIES_DIR
    )
    touched = version_folders_of(p for p in (changed + untracked).split("\0") if p)
    return [f for f in touched if (root / f).is_dir()]
