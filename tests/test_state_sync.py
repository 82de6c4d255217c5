"""`--commit-state` and `--push` against a real bare remote: the state commit, and a push rejected
because the branch moved, resolved by merging the state by meaning and pushing again.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo, remote_file


def make_remote(tmp_path: Path) -> tuple[Path, PolicyRepo]:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    origin = PolicyRepo(tmp_path / "origin")
    origin.add_policy("alpha", "1.0.0")
    origin.add_policy("beta", "1.0.0")
    origin.commit("first policies")
    origin.git("remote", "add", "origin", str(remote))
    origin.git("push", "-q", "origin", "main")
    return remote, origin


def test_commit_state_commits_only_the_state_files(tmp_path: Path, hub: HubProcess) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0")
    released = repo.commit()
    repo.write("notes.txt", "unrelated work in progress\n")
    result = repo.release(hub, "--commit-state")
    assert result.returncode == 0, result.output
    assert "state committed" in result.stdout
    assert repo.git("show", "--name-only", "--format=%s", "HEAD").splitlines() == [
        f"policy-hub: record release {released[:12]}",
        "",
        ".state/baseline.sha",
        ".state/delivered.json",
    ]
    assert "notes.txt" in repo.git("status", "--porcelain")
    assert (
        repo.release(hub, "--commit-state").stdout.count("state unchanged: nothing to commit") == 1
    )


def test_push_after_the_branch_moved_merges_state_and_retries(
    tmp_path: Path, hub: HubProcess
) -> None:
    remote, _origin = make_remote(tmp_path)
    first = PolicyRepo.clone_of(remote, tmp_path / "first")
    second = PolicyRepo.clone_of(remote, tmp_path / "second")
    # Both clones release the same commit; `first` pushes its state before `second` does.
    assert first.release(hub, "--push").returncode == 0
    second.add_policy("gamma", "1.0.0")
    gamma = second.commit("gamma")
    result = second.release(hub, "--push")
    assert result.returncode == 0, result.output
    assert "state pushed to origin/main after 2 attempts" in result.stdout
    delivered = json.loads(remote_file(remote, ".state/delivered.json"))
    assert set(delivered["policies"]) == {"alpha", "beta", "gamma"}
    assert remote_file(remote, ".state/baseline.sha").strip() == gamma
    assert [hub.created(n, "1.0.0") for n in ("alpha", "beta", "gamma")] == [1, 1, 1]


def test_push_from_a_detached_head_says_what_to_do(tmp_path: Path, hub: HubProcess) -> None:
    remote, _origin = make_remote(tmp_path)
    repo = PolicyRepo.clone_of(remote, tmp_path / "clone")
    repo.git("checkout", "-q", "--detach")
    result = repo.release(hub, "--push")
    assert result.returncode == 1
    assert "HEAD is detached" in result.stdout
    assert repo.git("log", "-1", "--format=%s").startswith("first policies"), "nothing committed"
