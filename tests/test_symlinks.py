"""Symbolic links under `policies/` (docs/contract.md section 1): a failure of the folder they sit
in, in every mode; never followed, never skipped. Committed links are read from git objects in a
release, links in the working tree in author mode; either way nothing is sent for that folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo
from tests.reliability.invariants import access_log

pytestmark = pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")


@pytest.fixture
def repo(tmp_path: Path) -> PolicyRepo:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("real", "1.0.0")
    return repo


def linked_paths(hub_dir: Path) -> list[str]:
    return [path for _, path, _ in access_log(hub_dir) if "linked" in path or "alias" in path]


def test_a_version_folder_committed_as_a_link_fails_and_holds_the_baseline(
    repo: PolicyRepo, hub: HubProcess, tmp_path: Path
) -> None:
    (repo.path / "policies/linked").mkdir()
    (repo.path / "policies/linked/v1.0.0").symlink_to("../real/v1.0.0")
    repo.commit("a version folder that is a link")
    result = repo.release(hub, "-v")
    assert result.returncode == 1, result.output
    assert "policies/linked/v1.0.0: is a symlink; links under policies/ are never followed" in (
        result.stdout
    )
    assert "Partial success – 1 of 2 failed" in result.stdout
    assert hub.created("real", "1.0.0") == 1
    assert repo.baseline is None
    assert linked_paths(tmp_path / "hub") == [], "nothing is sent for a linked folder"
    author = repo.pytest("-q")
    assert author.returncode == 1 and "1 failed, 1 passed" in author.stdout, author.output


def test_a_policy_folder_that_is_a_link_fails_in_both_modes(
    repo: PolicyRepo, hub: HubProcess, tmp_path: Path
) -> None:
    (repo.path / "policies/alias").symlink_to("real")
    repo.commit("a policy folder that is a link")
    result = repo.release(hub)
    assert result.returncode == 1, result.output
    assert "policies/alias: is a symlink" in result.stdout
    assert linked_paths(tmp_path / "hub") == []
    author = repo.pytest("-q", "-p", "no:cacheprovider")
    assert author.returncode == 1, author.output
    assert "policies/alias: is a symlink" in author.stdout


def test_a_link_to_a_file_inside_the_repository_is_not_followed(
    repo: PolicyRepo, hub: HubProcess, tmp_path: Path
) -> None:
    repo.add_policy("linked", "1.0.0")
    shared = repo.path / "shared.yaml"
    target = repo.path / "policies/linked/v1.0.0/policy-definition.yaml"
    target.rename(shared)
    target.symlink_to("../../../shared.yaml")
    repo.commit()
    result = repo.release(hub)
    assert result.returncode == 1, result.output
    assert "policies/linked/v1.0.0/policy-definition.yaml: is a symlink" in result.stdout
    assert "policy-definition.yaml is missing" not in result.stdout
    assert linked_paths(tmp_path / "hub") == []
    assert repo.pytest("-q", "-k", "linked").returncode == 1


@pytest.mark.parametrize("where", ["docs/link", "docs/deeper/link"])
def test_a_link_in_a_policys_other_folders_fails_in_both_modes(
    repo: PolicyRepo, hub: HubProcess, tmp_path: Path, where: str
) -> None:
    # docs/contract.md section 1: a link anywhere under policies/ fails, never skipped silently; one
    # in a folder that is not a version (docs/) is a failing item of its own.
    link = repo.path / "policies/real" / where
    link.parent.mkdir(parents=True)
    (link.parent / "README.md").write_text("how to use real\n")
    link.symlink_to("/etc/passwd")
    repo.commit("a link in the docs")
    shown = f"policies/real/{where}: is a symlink"
    author = repo.pytest("-q", "-p", "no:cacheprovider")
    assert author.returncode == 1, author.output
    assert "1 failed, 1 passed" in author.stdout and shown in author.stdout
    result = repo.release(hub)
    assert result.returncode == 1, result.output
    assert shown in result.stdout and "Partial success – 1 of 2 failed" in result.stdout
    assert hub.created("real", "1.0.0") == 1
    assert [path for _, path, _ in access_log(tmp_path / "hub") if "docs" in path] == []
    assert repo.baseline is None
