"""The README's examples for a policy repository, as a policy team copies them: its workflows pass
the audit this project's own pass (GitHub's schema, actionlint, zizmor offline and pedantic, as
`.ci/run` runs them), and its `.gitignore` ignores everything the action writes into the checkout
(found by running the action's script, `action/run.sh`, in a temp repository, not listed here).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.policyrepo import GIT_ENV, PolicyRepo

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
WORKFLOW_BLOCK = re.compile(r"```yaml\n# (\.github/workflows/[\w.-]+\.yml)[^\n]*\n(.*?)```", re.S)
GITIGNORE_BLOCK = re.compile(r"```gitignore\n(.*?)```", re.S)


def readme_workflows() -> dict[str, str]:
    """Path -> text of every example workflow in the README (its first line names the file)."""
    found = {m.group(1): f"# {m.group(1)}\n{m.group(2)}" for m in WORKFLOW_BLOCK.finditer(README)}
    assert set(found) >= {".github/workflows/policies.yml", ".github/workflows/release.yml"}
    return found


def readme_gitignore() -> str:
    [block] = GITIGNORE_BLOCK.findall(README)
    return str(block)


def tool(name: str) -> str:
    """A command of the dev extra, from this Python's environment first."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    assert found, f"{name} is in the dev extra: pip install -e '.[dev]'"
    return found


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert proc.returncode == 0, f"{cmd}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


@pytest.fixture
def copied(tmp_path: Path) -> Path:
    """A repository holding the README's example workflows, as a policy team copies them."""
    for path, text in readme_workflows().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path


def test_the_readme_workflows_are_valid_yaml_of_githubs_schema(copied: Path) -> None:
    files = sorted(str(p) for p in (copied / ".github/workflows").glob("*.yml"))
    for file in files:
        assert isinstance(yaml.safe_load(Path(file).read_text()), dict), file
    schema = [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    run([*schema, *files], copied)
    assert run([tool("actionlint"), *files], copied) == ""


def test_the_readme_workflows_pass_zizmor_pedantic(copied: Path) -> None:
    # Every finding fails, as in .ci/run; an inline ignore on its line must say why.
    output = run([tool("zizmor"), "--offline", "--persona", "pedantic", "."], copied)
    assert "No findings to report" in output, output


def test_the_release_example_keeps_what_its_push_needs(copied: Path) -> None:
    """The release job pushes the state commit with the checkout's credentials, as this
    repository's own release.yml does; every other job drops them."""
    release = yaml.safe_load((copied / ".github/workflows/release.yml").read_text())
    [checkout] = [s for s in release["jobs"]["release"]["steps"] if "checkout" in s.get("uses", "")]
    assert checkout["with"]["persist-credentials"] is True
    assert checkout["with"]["fetch-depth"] == 0
    # Trusted publishing: the ID token is this job's alone, and no hub secret is passed.
    assert release["jobs"]["release"]["permissions"] == {"contents": "write", "id-token": "write"}
    assert release.get("permissions") == {"contents": "read"}
    [action] = [s for s in release["jobs"]["release"]["steps"] if "harness" in s.get("uses", "")]
    assert "hub-token" not in action["with"]
    own = yaml.safe_load((ROOT / ".github/workflows/release.yml").read_text())
    [own_checkout] = [s for s in own["jobs"]["release"]["steps"] if "checkout" in s.get("uses", "")]
    assert own_checkout["uses"] == checkout["uses"], "the same pinned checkout"
    assert own_checkout["with"]["persist-credentials"] is True
    policies = yaml.safe_load((copied / ".github/workflows/policies.yml").read_text())
    for job in policies["jobs"].values():
        for step in job["steps"]:
            if "actions/checkout" in step.get("uses", ""):
                assert step["with"]["persist-credentials"] is False


def action_script_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICY_HUB", "GITHUB_"))}
    env.pop("CI", None)
    env.update(GIT_ENV)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["WORKERS"] = "0"
    env.update(extra)
    return env


def untracked(repo: PolicyRepo) -> list[str]:
    out = repo.git("status", "--porcelain", "--untracked-files=all")
    return sorted(line[3:] for line in out.splitlines() if line.startswith("?? "))


def test_the_readme_gitignore_ignores_everything_the_action_writes(tmp_path: Path) -> None:
    repo = PolicyRepo(tmp_path / "policy-repo")
    (repo.path / ".gitignore").unlink()  # the test helper's own: here the README's is tried
    repo.add_policy("alpha", "1.0.0")
    base = repo.commit("main")
    repo.add_policy("beta", "1.0.0")
    head = repo.commit("a change")
    script = str(ROOT / "action" / "run.sh")
    # Each mode of the action's script: validate, a shard, and a release (to the embedded hub:
    # no network here) without the push, which the README's workflow adds.
    run(["bash", script, "validate"], repo.path, action_script_env(BASE_REF=base))
    shard = action_script_env(POLICY_HUB_URL="local", RELEASE_SHA=head, SHARD="1/2")
    run(["bash", script, "release"], repo.path, shard)
    release = action_script_env(POLICY_HUB_URL="local", RELEASE_SHA=head, PUSH="false")
    run(["bash", script, "release"], repo.path, release)

    written = untracked(repo)
    # What action.yml uploads is among what its script wrote.
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    [upload] = [s for s in action["runs"]["steps"] if "upload-artifact" in s.get("uses", "")]
    uploaded = upload["with"]["path"].split()
    assert set(uploaded) <= set(written), (uploaded, written)
    assert any(path.startswith("policyhub-fragment-") for path in written), written
    assert any(path.startswith(".policyhub-local/") for path in written), written

    (repo.path / ".gitignore").write_text(readme_gitignore())
    assert untracked(repo) == [".gitignore"], "the README's .gitignore leaves something out"
