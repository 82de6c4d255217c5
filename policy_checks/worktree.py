"""Reading one version folder from a working tree into `PolicyFiles`.

Owns the file-system safety rules: no symbolic link followed (each is a finding), regular files
only, and never more than MAX_FILE_BYTES + 1 bytes read from any file.
"""

from __future__ import annotations

import functools
import os
import stat
from pathlib import Path

from policy_checks.cel.resources import (
    FOLDER_REFUSED,
    LINK_REFUSED,
    RESOURCE_SCHEMAS_DIR,
    ResourceSchemaError,
    schema_file_ignored,
)
from policy_checks.model import Finding, OtherFile, PolicyFiles
from policy_checks.naming import DEFINITION_FILE, MAX_FILE_BYTES, METADATA_FILE, TESTS_FILE

SYMLINK_HINT = "commit the file or folder itself instead of a link"


def symlink_finding(rel: str) -> Finding:
    """The finding for a symbolic link under `policies/` (docs/contract.md section 1), in every
    mode."""
    return Finding(
        rel,
        "is a symlink; links under policies/ are never followed",
        hint=SYMLINK_HINT,
        rule="symlink",
    )


def not_a_folder_finding(folder: str) -> Finding:
    """A file where a version folder would be (`policies/<name>/v2.0.0` as a file)."""
    return Finding(
        folder,
        "is a file, not a version folder",
        hint=f"a version is a folder holding {METADATA_FILE} and {DEFINITION_FILE}: "
        f"{folder}/{METADATA_FILE}",
        rule="layout",
    )


@functools.lru_cache(maxsize=4096)
def _is_link(path: str) -> bool:
    # `policies/` and `policies/<name>/` are shared by many version folders: asked once each.
    return os.path.islink(path)


def symlinks_of(repo_root: Path, folder: str, names: list[str] | None = None) -> list[str]:
    """Symbolic links that make up `folder` (it or a parent below the repository) or lie
    anywhere inside it, as repository-relative paths; [] when there is none. The names of the
    folder's own entries are added to `names` on the way (one scan serves both)."""
    parts = folder.split("/")
    for depth in range(1, len(parts)):
        rel = "/".join(parts[:depth])
        if _is_link(os.path.join(repo_root, rel)):
            return [rel]
    if os.path.islink(os.path.join(repo_root, folder)):
        return [folder]
    found: list[str] = []
    pending = [folder]
    while pending:
        rel = pending.pop()
        try:
            entries = os.scandir(os.path.join(repo_root, rel))
        except OSError:
            continue
        with entries:
            for entry in entries:
                child = f"{rel}/{entry.name}"
                if names is not None and rel == folder:
                    names.append(entry.name)
                if entry.is_symlink():
                    found.append(child)
                elif entry.is_dir(follow_symlinks=False):
                    pending.append(child)
    return sorted(found)


def _read_file(path: str, rel: str) -> tuple[bytes | None, Finding | None]:
    try:
        # O_NONBLOCK: opening a FIFO must not hang; it is refused below as not a regular file.
        # O_NOFOLLOW: a link that appeared since the folder was scanned is still not followed.
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        return None, None
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
    """The two files of `folder` (repo-relative posix) as found in the working tree; a link in
    or above the folder is a finding and is never followed."""
    names: list[str] = []
    links = symlinks_of(repo_root, folder, names)
    errors = [symlink_finding(rel) for rel in links]
    if any(rel == folder or folder.startswith(rel + "/") for rel in links):
        return PolicyFiles(folder, None, None, tuple(errors))
    if os.path.isfile(os.path.join(repo_root, folder)):
        errors.append(not_a_folder_finding(folder))
        return PolicyFiles(folder, None, None, tuple(errors))
    contents: dict[str, bytes | None] = {}
    base = os.path.join(repo_root, folder)
    for name in (METADATA_FILE, DEFINITION_FILE, TESTS_FILE):
        rel = f"{folder}/{name}"
        if rel in links:
            contents[name] = None
            continue
        data, error = _read_file(os.path.join(base, name), rel)
        contents[name] = data
        if error is not None:
            errors.append(error)
    return PolicyFiles(
        folder,
        contents[METADATA_FILE],
        contents[DEFINITION_FILE],
        tuple(errors),
        tuple(names),
        tests=contents[TESTS_FILE],
        read_other=functools.partial(_read_other, base, folder, tuple(links)),
    )


def _read_other(base: str, folder: str, links: tuple[str, ...], rel: str) -> OtherFile:
    """A file of the version folder by its relative path; a link on the way is refused."""
    path = f"{folder}/{rel}"
    if any(path == link or path.startswith(link + "/") for link in links):
        return OtherFile(None, "is a symbolic link (links are never followed)")
    data, error = _read_file(os.path.join(base, *rel.split("/")), path)
    if error is not None:
        return OtherFile(None, error.message.removeprefix("file "))
    return OtherFile(data)


def read_resource_schema_files(repo_root: Path) -> dict[str, bytes]:
    """The files of `resource-schemas/` in the working tree, by repo-relative path; raises
    ResourceSchemaError for a link, a folder in it, or a file that cannot be read."""
    top = os.path.join(repo_root, RESOURCE_SCHEMAS_DIR)
    if os.path.islink(top):
        raise ResourceSchemaError(f"{RESOURCE_SCHEMAS_DIR}: {LINK_REFUSED}")
    if not os.path.exists(top):
        return {}
    if not os.path.isdir(top):
        raise ResourceSchemaError(f"{RESOURCE_SCHEMAS_DIR}: is a file, not a folder of schemas")
    files: dict[str, bytes] = {}
    with os.scandir(top) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            rel = f"{RESOURCE_SCHEMAS_DIR}/{entry.name}"
            if schema_file_ignored(entry.name):
                continue
            if entry.is_symlink():
                raise ResourceSchemaError(f"{rel}: {LINK_REFUSED}")
            if entry.is_dir(follow_symlinks=False):
                raise ResourceSchemaError(f"{rel}: {FOLDER_REFUSED}")
            data, error = _read_file(entry.path, rel)
            if error is not None:
                raise ResourceSchemaError(error.render())
            if data is not None:
                files[rel] = data
    return files
