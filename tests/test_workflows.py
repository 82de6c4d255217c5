"""The GitHub workflows in `.github/workflows/`: they parse, satisfy GitHub's workflow schema
(check-jsonschema's built-in copy, offline), pin every action, grant the least they need, and the
`pytest` commands this repository's action runs for them (action/run.sh, run by bash with the
inputs each workflow gives) use only options the harness defines.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.actionrun import run_steps, substitute
from tests.policyrepo import PolicyRepo, metadata

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))


def load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(data, dict)
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as the boolean True.
    return workflow.get("on", workflow.get(True))  # type: ignore[no-any-return]


def steps(workflow: dict[Any, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job_id, step) for job_id, job in workflow["jobs"].items() for step in job["steps"]]


# Stand-ins for the runner's contexts when a workflow's `with:` values are evaluated.
CONTEXT: dict[str, Any] = {
    "matrix": {"shard": "1"},
    "strategy": {"job-total": "4"},
    "vars": {"POLICY_HUB_URL": "https://hub.example.invalid"},
    "secrets": {"POLICY_HUB_TOKEN": "secret-token"},
    "inputs": {"dry-run": False},
}
SHA, BASE = "a" * 40, "b" * 40
FAKE_PYTHON = '#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGV_FILE"\n'


def action_steps(workflow: dict[Any, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(job id, step) of every step that uses this repository's own action (`uses: ./`)."""
    return [(j, s) for j, s in steps(workflow) if s.get("uses", "").split(" ")[0] == "./"]


def pytest_commands(
    workflow: dict[Any, Any], tmp_path: Path, context: dict[str, Any] | None = None
) -> list[tuple[str, list[str]]]:
    """(job id, pytest argv) of every use of the action, as action/run.sh would run it: the
    `with:` values evaluated, the action's steps run under bash, `python` a stand-in that
    records its arguments. The working folder holds fragments, so a finalize glob matches."""
    fake = tmp_path / "bin"
    fake.mkdir(parents=True, exist_ok=True)
    (fake / "python").write_text(FAKE_PYTHON)
    (fake / "python").chmod(0o755)
    fragment = tmp_path / "work" / "fragments" / "fragment-1" / "policyhub-fragment-1-of-4.json"
    fragment.parent.mkdir(parents=True, exist_ok=True)
    fragment.write_text("{}")
    found = []
    for job_id, step in action_steps(workflow):
        inputs = {
            k: substitute(str(v), {**CONTEXT, **(context or {})}) for k, v in step["with"].items()
        }
        argv_file = tmp_path / f"argv-{job_id}"
        env = {
            "PATH": f"{fake}:{os.environ['PATH']}",
            "ARGV_FILE": str(argv_file),
            "HOME": str(tmp_path),
        }
        github = {"sha": SHA, "event": {"pull_request": {"base": {"sha": BASE}}}}
        # The install step is the runner's too here: it would pip install into the stand-in.
        result = run_steps(ROOT, tmp_path / "work", inputs, github, env)
        assert result.returncode == 0, result.stdout + result.stderr
        argv = argv_file.read_text().splitlines()
        assert argv[:2] == ["-m", "pytest"], argv
        found.append((job_id, ["pytest", *argv[2:]]))
    return found


# Stops pytest right after it has parsed the command line (strictly: no abbreviations, no unknown
# flag), before any plugin is configured: a flag check that runs nothing.
PARSE_ONLY_PLUGIN = """\
import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    return 0
"""


@pytest.fixture(scope="module")
def policy_repo(tmp_path_factory: pytest.TempPathFactory) -> PolicyRepo:
    repo = PolicyRepo(tmp_path_factory.mktemp("workflows") / "repo")
    repo.write("parse_only.py", PARSE_ONLY_PLUGIN)
    assert repo.pytest("-p", "parse_only", "--no-such-flag").returncode == 4
    return repo


def test_the_workflows_exist() -> None:
    assert {p.name for p in WORKFLOW_FILES} >= {
        "release.yml",
        "release-sharded.yml",
        "validate.yml",
    }


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_workflow_satisfies_githubs_schema(path: Path) -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    proc = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_pytest_commands_use_only_options_the_harness_defines(
    path: Path, policy_repo: PolicyRepo, tmp_path: Path
) -> None:
    commands = pytest_commands(load(path.name), tmp_path)
    assert commands, f"{path.name} uses the action nowhere"
    for _, argv in commands:
        result = policy_repo.pytest("-p", "parse_only", *argv[1:])
        assert result.returncode == 0, f"{path.name}: {shlex.join(argv)}\n{result.output}"


def test_release_workflow(tmp_path: Path) -> None:
    workflow = load("release.yml")
    on = triggers(workflow)
    assert on["release"]["types"] == ["published"]
    assert on["workflow_dispatch"]["inputs"]["dry-run"]["type"] == "boolean"
    assert workflow["concurrency"]["cancel-in-progress"] is False
    [(_, release)] = pytest_commands(workflow, tmp_path / "release")
    assert release[:2] == ["pytest", "--release"]
    assert release[release.index("--release-sha") + 1] == SHA
    assert "--push" in release and "--dry-run" not in release
    assert release[release.index("-n") + 1] == "auto"
    [(_, dry)] = pytest_commands(workflow, tmp_path / "dry", {"inputs": {"dry-run": True}})
    assert "--dry-run" in dry and "--push" not in dry


def test_sharded_release_workflow_runs_the_tested_shard_and_finalize_commands(
    tmp_path: Path,
) -> None:
    workflow = load("release-sharded.yml")
    assert workflow["concurrency"] == load("release.yml")["concurrency"]
    shard_job, finalize_job = workflow["jobs"]["shard"], workflow["jobs"]["finalize"]
    assert shard_job["strategy"]["fail-fast"] is False
    assert len(shard_job["strategy"]["matrix"]["shard"]) <= 256
    commands = dict(pytest_commands(workflow, tmp_path))
    shard_cmd, final_cmd = commands["shard"], commands["finalize"]
    assert shard_cmd[shard_cmd.index("--shard") + 1] == "1/4"
    assert final_cmd[final_cmd.index("--finalize") + 1] == (
        "fragments/fragment-1/policyhub-fragment-1-of-4.json"
    )
    assert "--push" in final_cmd and "--shard" not in final_cmd and "--push" not in shard_cmd
    assert finalize_job["needs"] == "shard" and "cancelled()" in finalize_job["if"]

    uploads = [s for _, s in steps(workflow) if s.get("uses", "").startswith("actions/upload")]
    fragment = next(s for s in uploads if "fragment" in s["with"]["name"])
    # upload-artifact: a unique name per matrix job, and never a dot-file (left out).
    assert "${{ matrix.shard }}" in fragment["with"]["name"]
    assert not Path(fragment["with"]["path"]).name.startswith(".")
    assert (
        (fragment["with"]["path"])
        == "policyhub-fragment-${{ matrix.shard }}-of-${{ strategy.job-total }}.json"
    )
    (download,) = [s for _, s in steps(workflow) if s.get("uses", "").startswith("actions/down")]
    assert download["with"]["merge-multiple"] is False
    pattern = download["with"]["pattern"].rstrip("*")
    assert fragment["with"]["name"].startswith(pattern)


PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")


@pytest.mark.parametrize("path", [*WORKFLOW_FILES, ROOT / "action.yml"], ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version(path: Path) -> None:
    lines = [line.strip().removeprefix("- ") for line in path.read_text().splitlines()]
    uses = [line.split(":", 1)[1].strip() for line in lines if line.startswith("uses:")]
    assert uses
    for use in uses:
        assert use.startswith("./ ") or PINNED.match(use), f"{path.name}: {use}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_least_privilege_and_full_history(path: Path, tmp_path: Path) -> None:
    workflow = load(path.name)
    assert workflow["permissions"] == {"contents": "read"}
    commands = pytest_commands(workflow, tmp_path)
    for job_id, job in workflow["jobs"].items():
        pushes = any("--push" in argv for j, argv in commands if j == job_id)
        assert job.get("permissions") == ({"contents": "write"} if pushes else None), job_id
        for step in job["steps"]:
            uses = step.get("uses", "")
            if uses.startswith("actions/checkout"):
                assert step["with"]["fetch-depth"] == 0, f"{path.name}: job {job_id}"
                # Credentials stay on disk only in a job that pushes the state commit.
                assert step["with"]["persist-credentials"] is pushes, f"{path.name}: {job_id}"
            if uses.startswith("actions/setup-python"):
                assert "cache" not in step.get("with", {}), "no dependency cache at all"
    text = path.read_text()
    if "POLICY_HUB_URL" in text:
        assert "${{ vars.POLICY_HUB_URL }}" in text
    if "POLICY_HUB_TOKEN" in text:
        assert "${{ secrets.POLICY_HUB_TOKEN }}" in text


def test_validate_workflow_checks_changed_policies_with_annotations(tmp_path: Path) -> None:
    workflow = load("validate.yml")
    assert "policies/**" in triggers(workflow)["pull_request"]["paths"]
    [(job, argv)] = pytest_commands(workflow, tmp_path / "commands")
    assert job == "policies" and argv[:3] == ["pytest", "--changed-since", BASE]
    assert any("bash .ci/run" in s.get("run", "") for _, s in steps(workflow))

    # What that command does on a pull request: only the changed version, with an annotation.
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0")
    base = repo.commit("base")
    repo.add_policy("beta", "1.0.0", meta=metadata("beta", "2.0.0"))
    repo.commit("a pull request with a broken version")
    result = repo.pytest("--changed-since", base, "-n", "2", env={"GITHUB_ACTIONS": "true"})
    assert result.returncode == 1, result.output
    assert "1 failed" in result.stdout and "alpha" not in result.stdout
    assert "::error file=policies/beta/v1.0.0/metadata.json,line=" in result.stdout
