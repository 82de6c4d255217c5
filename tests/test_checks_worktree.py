"""read_policy_folder: reading a version folder from a working tree, safely.

Symlinks may point anywhere inside the repository, never out of it; only regular files are read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from policy_checks import (
    DEFINITION_FILE,
    MAX_FILE_BYTES,
    METADATA_FILE,
    PolicyChecker,
    read_policy_folder,
)

pytestmark = pytest.mark.fast

FOLDER = "policies/example/v1.0.0"
EXAMPLE = Path(__file__).parent / "example-files" / "valid" / "minimal"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    folder = root / FOLDER
    folder.mkdir(parents=True)
    for name in (METADATA_FILE, DEFINITION_FILE):
        (folder / name).write_bytes((EXAMPLE / name).read_bytes())
    return root


def test_reads_both_files(repo: Path) -> None:
    files = read_policy_folder(repo, FOLDER)
    assert files.metadata == (EXAMPLE / METADATA_FILE).read_bytes()
    assert files.definition == (EXAMPLE / DEFINITION_FILE).read_bytes()
    assert files.read_errors == ()
    assert (files.name, files.version_dir) == ("example", "v1.0.0")
    assert PolicyChecker.load().check(files).ok


def test_missing_file_is_none(repo: Path) -> None:
    (repo / FOLDER / METADATA_FILE).unlink()
    files = read_policy_folder(repo, FOLDER)
    assert files.metadata is None and files.read_errors == ()
    result = PolicyChecker.load().check(files)
    assert [f.rule for f in result.findings] == ["missing-file"]


def test_symlink_inside_the_repository_is_refused_not_followed(repo: Path) -> None:
    # docs/contract.md section 1: a link anywhere under policies/ fails its folder, wherever it
    # leads.
    shared = repo / "shared" / "metadata.json"
    shared.parent.mkdir()
    (repo / FOLDER / METADATA_FILE).rename(shared)
    (repo / FOLDER / METADATA_FILE).symlink_to(Path("../../../shared/metadata.json"))
    files = read_policy_folder(repo, FOLDER)
    assert files.metadata is None
    [error] = files.read_errors
    assert (error.file, error.rule) == (f"{FOLDER}/{METADATA_FILE}", "symlink")
    # The checker reports the link, not a second "missing" finding.
    result = PolicyChecker.load().check(files)
    assert [f.rule for f in result.findings] == ["symlink"]


def test_symlink_leaving_the_repository_is_refused(repo: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("token")
    (repo / FOLDER / METADATA_FILE).unlink()
    (repo / FOLDER / METADATA_FILE).symlink_to(secret)
    files = read_policy_folder(repo, FOLDER)
    assert files.metadata is None
    [error] = files.read_errors
    assert error.file == f"{FOLDER}/{METADATA_FILE}"
    assert "symlink" in error.message and "never followed" in error.message


def test_symlinked_folder_is_one_finding_and_nothing_is_read(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (repo / FOLDER).rename(outside)
    (repo / FOLDER).symlink_to(outside, target_is_directory=True)
    files = read_policy_folder(repo, FOLDER)
    assert files.metadata is None and files.definition is None
    [error] = files.read_errors
    assert (error.file, error.rule) == (FOLDER, "symlink")
    assert [f.rule for f in PolicyChecker.load().check(files).findings] == ["symlink"]


def test_symlink_deeper_in_the_folder_is_reported(repo: Path) -> None:
    (repo / FOLDER / "examples").mkdir()
    (repo / FOLDER / "examples" / "link.yaml").symlink_to("../metadata.json")
    files = read_policy_folder(repo, FOLDER)
    assert files.metadata is not None
    [error] = files.read_errors
    assert error.file == f"{FOLDER}/examples/link.yaml"


def test_dangling_symlink_is_reported(repo: Path) -> None:
    (repo / FOLDER / METADATA_FILE).unlink()
    (repo / FOLDER / METADATA_FILE).symlink_to("nowhere.json")
    [error] = read_policy_folder(repo, FOLDER).read_errors
    assert error.rule == "symlink"


def test_directory_in_place_of_a_file_is_refused(repo: Path) -> None:
    (repo / FOLDER / DEFINITION_FILE).unlink()
    (repo / FOLDER / DEFINITION_FILE).mkdir()
    [error] = read_policy_folder(repo, FOLDER).read_errors
    assert "not a regular file" in error.message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_refused_without_blocking(repo: Path) -> None:
    (repo / FOLDER / DEFINITION_FILE).unlink()
    os.mkfifo(repo / FOLDER / DEFINITION_FILE)
    [error] = read_policy_folder(repo, FOLDER).read_errors
    assert "not a regular file" in error.message


def test_large_file_is_read_only_up_to_the_limit(repo: Path) -> None:
    (repo / FOLDER / DEFINITION_FILE).write_bytes(b"#" * (3 * MAX_FILE_BYTES))
    files = read_policy_folder(repo, FOLDER)
    assert files.definition is not None and len(files.definition) == MAX_FILE_BYTES + 1
    result = PolicyChecker.load().check(files)
    assert [f.rule for f in result.findings] == ["file-size"]
