"""Reading one version folder from a working tree into `PolicyFiles`.

Owns the file-system safety rules: no symlink out of the repository, regular files only, and
never more than MAX_FILE_BYTES + 1 bytes read from any file.
"""

from __future__ import annotations

import functools
import os
import stat
from pathlib import Path

from policy_checks.model import Finding, PolicyFiles
from policy_checks.naming import DEFINITION_FILE, MAX_FILE_BYTES, METADATA_FILE


@functools.lru_cache(maxsize=16)
def _real(path: str) -> str:
    return os.path.realpath(path)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _read_file(repo_root: Path, rel: str, real_dir: str) -> tuple[bytes | None, Finding | None]:
    # Path.resolve() per file dominated reading 10 000 folders; the folder's real path is
    # resolved once by the caller, and a file is only resolved itself when it is a link.
    path = os.path.join(real_dir, os.path.basename(rel))
    try:
        is_link = stat.S_ISLNK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return None, None
    resolved = os.path.realpath(path) if is_link else path
    if not _inside(resolved, _real(str(repo_root))):
        return None, Finding(
            rel,
            "file is a symlink that leads outside the repository",
            hint="policy files must live in the repository; copy the file instead of linking it",
            rule="file-type",
        )
    try:
        # O_NONBLOCK: opening a FIFO must not hang; it is refused below as not a regular file.
        fd = os.open(resolved, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None, Finding(
            rel, "file is a symlink to a file that does not exist", rule="file-type"
        )
    except OSError as exc:
        return None, Finding(rel, f"file cannot be read: {exc.strerror}", rule="file-type")
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None, Finding(
                rel,
                "file is not a regular file",
                hint="replace it with a plain file",
                rule="file-type",
            )
        # One byte over the limit is enough for the checker to report the file as too large.
        chunks: list[bytes] = []
        remaining = MAX_FILE_BYTES + 1
        while remaining and (chunk := os.read(fd, remaining)):
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks), None
    except OSError as exc:
        return None, Finding(rel, f"file cannot be read: {exc.strerror}", rule="file-type")
    finally:
        os.close(fd)


def read_policy_folder(repo_root: Path, folder: str) -> PolicyFiles:
    """The two files of `folder` (repo-relative posix) as found in the working tree."""
    contents: dict[str, bytes | None] = {}
    errors: list[Finding] = []
    real_dir = os.path.realpath(os.path.join(repo_root, folder))
    for name in (METADATA_FILE, DEFINITION_FILE):
        data, error = _read_file(repo_root, f"{folder}/{name}", real_dir)
        contents[name] = data
        if error is not None:
            errors.append(error)
    return PolicyFiles(folder, contents[METADATA_FILE], contents[DEFINITION_FILE], tuple(errors))
