"""`policyhub-check FILE...`: the pre-commit hook (`.pre-commit-hooks.yaml`). It validates, in
author mode (offline, `pytest` itself), the policy versions the given files belong to, and nothing
else: what a commit touches. A file of a deleted version is nothing to check.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path, PurePosixPath

import pytest

from policy_checks import POLICIES_DIR, looks_like_version


def touched_folders(files: list[str], deleted: bool = False) -> list[str]:
    """The version folders (or policy folders, or version-named files) the files belong to;
    with `deleted`, those that no longer exist."""
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
        folder
        for folder in folders
        if (Path(folder).exists() or Path(folder).is_symlink()) != deleted
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="policyhub-check",
        description="Validate, offline, the policy versions the given files belong to (author "
        "mode of the policy release harness: `pytest` on those version folders). The "
        "pre-commit hook passes the files a commit touches.",
        epilog="Exit status: 0 every touched version is valid (or nothing to check), 1 a "
        "version is invalid, 4 a usage error (a file that does not exist outside policies/).",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="files of policies/<name>/...")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    # A file of a deleted version is nothing to check; any other missing file is a mistake.
    missing = [
        f for f in args.files if not os.path.lexists(f) and not touched_folders([f], deleted=True)
    ]
    if missing:
        sys.stderr.write(f"policyhub-check: error: no such file: {', '.join(missing)}\n")
        return 4
    folders = touched_folders(args.files)
    if not folders:
        print("policyhub-check: nothing to check (no file given belongs to a policy version)")
        return 0
    return int(pytest.main([*folders, "-q", "--no-header", "-p", "no:cacheprovider"]))


if __name__ == "__main__":
    sys.exit(main())
