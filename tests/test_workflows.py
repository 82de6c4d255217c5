"""The GitHub workflows in `.github/workflows/`: they parse, satisfy GitHub's workflow schema
(check-jsonschema's built-in copy, offline), and every `pytest` command in them uses only options
the harness defines, so the workflows run exactly the commands the other tests run.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.policyrepo import PolicyRepo, metadata

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
EXPRESSION_RE = re.compile(r"\$\{\{.*?\}\}")


def load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(data, dict)
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as the boolean True.
    return workflow.get("on", workflow.get(True))  # type: ignore[no-any-return]


def steps(workflow: dict[Any, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job_id, step) for job_id, job in workflow["jobs"].items() for step in job["steps"]]


def pytest_commands(workflow: dict[Any, Any]) -> list[tuple[str, list[str]]]:
    """(job id, argv) of every `pytest ...` command in the workflow's `run:` scripts."""
    found = []
    for job_id, step in steps(workflow):
        script = step.get("run", "").replace("\\\n", " ")
        for line in script.splitlines():
            # An expression is one value (`${{ matrix.shard }}/${{ strategy.job-total }}`).
            words = shlex.split(EXPRESSION_RE.sub("EXPR", line))
            if words[:1] == ["pytest"]:
                found.append((job_id, words))
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
    path: Path, policy_repo: PolicyRepo
) -> None:
    commands = pytest_commands(load(path.name))
    assert commands, f"{path.name} runs no pytest command"
    for _, argv in commands:
        args = [word.replace("EXPR/EXPR", "1/4") for word in argv[1:]]
        result = policy_repo.pytest("-p", "parse_only", *args)
        assert result.returncode == 0, f"{path.name}: {shlex.join(argv)}\n{result.output}"


def test_release_workflow() -> None:
    workflow = load("release.yml")
    on = triggers(workflow)
    assert on["release"]["types"] == ["published"]
    assert on["workflow_dispatch"]["inputs"]["dry-run"]["type"] == "boolean"
    assert workflow["concurrency"]["cancel-in-progress"] is False
    commands = [argv for _, argv in pytest_commands(workflow)]
    assert all(argv[:4] == ["pytest", "--release", "-n", "auto"] for argv in commands)
    assert all("--release-sha" in argv for argv in commands)
    assert any("--push" in argv for argv in commands) and any(
        "--dry-run" in argv for argv in commands
    )


def test_sharded_release_workflow_runs_the_tested_shard_and_finalize_commands() -> None:
    workflow = load("release-sharded.yml")
    assert workflow["concurrency"] == load("release.yml")["concurrency"]
    shard_job, finalize_job = workflow["jobs"]["shard"], workflow["jobs"]["finalize"]
    assert shard_job["strategy"]["fail-fast"] is False
    assert len(shard_job["strategy"]["matrix"]["shard"]) <= 256
    (shard_cmd,) = [a for j, a in pytest_commands(workflow) if j == "shard"]
    (final_cmd,) = [a for j, a in pytest_commands(workflow) if j == "finalize"]
    assert shard_cmd[shard_cmd.index("--shard") + 1] == "EXPR/EXPR"
    assert "--finalize" in final_cmd and "--push" in final_cmd
    assert "--shard" not in final_cmd and "--push" not in shard_cmd
    assert finalize_job["needs"] == "shard" and "cancelled()" in finalize_job["if"]

    uploads = [s for _, s in steps(workflow) if s.get("uses", "").startswith("actions/upload")]
    fragment = next(s for s in uploads if "fragment" in s["with"]["name"])
    # upload-artifact v4: a unique name per matrix job, and never a dot-file (left out).
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


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_least_privilege_and_full_history(path: Path) -> None:
    workflow = load(path.name)
    assert workflow["permissions"] == {"contents": "read"}
    for job_id, job in workflow["jobs"].items():
        pushes = any("--push" in argv for j, argv in pytest_commands(workflow) if j == job_id)
        expected = {"contents": "write"} if pushes else None
        assert job.get("permissions") == expected, f"{path.name}: job {job_id}"
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout"):
                assert step["with"]["fetch-depth"] == 0, f"{path.name}: job {job_id}"
            if step.get("uses", "").startswith("actions/setup-python"):
                assert step["with"]["cache"] == "pip"
    text = path.read_text()
    if "POLICY_HUB_URL" in text:
        assert "POLICY_HUB_URL: ${{ vars.POLICY_HUB_URL }}" in text
    if "POLICY_HUB_TOKEN" in text:
        assert "POLICY_HUB_TOKEN: ${{ secrets.POLICY_HUB_TOKEN }}" in text


def test_validate_workflow_checks_changed_policies_with_annotations(tmp_path: Path) -> None:
    workflow = load("validate.yml")
    assert "policies/**" in triggers(workflow)["pull_request"]["paths"]
    (argv,) = [a for j, a in pytest_commands(workflow) if j == "policies"]
    assert argv[:3] == ["pytest", "--changed-since", "$BASE_SHA"]
    assert any("bash .ci/run" in s.get("run", "") for _, s in steps(workflow))

    # What that command does on a pull request: only the changed version, with an annotation.
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0")
    base = repo.commit("base")
    repo.add_policy("beta", "1.0.0", meta=metadata("beta", "2.0.0"))
    repo.commit("a pull request with a broken version")
    result = repo.pytest(
        "--changed-since", base, "-n", "2", env={"GITHUB_ACTIONS": "true", "BASE_SHA": base}
    )
    assert result.returncode == 1, result.output
    assert "1 failed" in result.stdout and "alpha" not in result.stdout
    assert "::error file=policies/beta/v1.0.0/metadata.json,line=" in result.stdout
