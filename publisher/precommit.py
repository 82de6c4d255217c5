"""`policyhub-check FILE...`: the pre-commit hook (`.pre-commit-hooks.yaml`). It validates, in
author mode (offline, `pytest` itself), the policy versions the given files belong to, and nothing
else: what a commit touches. A file of a deleted version is nothing to check.
"""

from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath

import pytest

from policy_checks import looks_like_version
from publisher.gitrepo import POLICIES_DIR


def touched_folders(files: list[str]) -> list[str]:
    """The version folders (or policy folders, or version-named files) the files belong to."""
    folders = set()
    for file in files:
        parts = PurePosixPath(Path(file).as_posix()).parts
        if len(parts) < 2 or parts[0] != POLICIES_DIR:
            continue
        if len(parts) >= 3 and looks_like_version(parts[2]):
            folders.add("/".join(parts[:3]))
        elif len(parts) == 2:
            folders.add("/".join(parts))
    return sorted(
        folder for folder in folders if Path(folder).exists() or Path(folder).is_symlink()
    )


def main(argv: list[str] | None = None) -> int:
    folders = touched_folders(sys.argv[1:] if argv is None else argv)
    if not folders:
        return 0
    return int(pytest.main([*folders, "-q", "--no-header", "-p", "no:cacheprovider"]))


if __name__ == "__main__":
    sys.exit(main())
