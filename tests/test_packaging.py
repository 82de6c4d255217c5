"""The harness outside this checkout: a wheel and an sdist that pass `twine check`, the wheel
installed into a fresh venv without any extra (as a policy team installs it, and as action.yml
does) and used in a separate policy repository (author mode, a release against the
`policy-hub serve` the wheel ships, and the README's main job on the embedded hub), the composite
action (`action.yml`) run as GitHub runs it, and the pre-commit hook tried with
`pre-commit try-repo`.

Everything is built from a copy of the repository's files (tracked, or new and not ignored), so
tests on other xdist workers never see a half-written build folder.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.actionrun import run_steps
from tests.policyrepo import GIT_ENV, PolicyRepo, metadata

ROOT = Path(__file__).resolve().parent.parent
LISTENING = "policy-hub listening on "


@dataclass
class Built:
    source: Path  # a copy of the repository's files: the action's own checkout
    wheel: Path
    sdist: Path
    venv: Path  # a fresh venv with the wheel installed, no extra

    @property
    def bin(self) -> Path:
        return self.venv / ("Scripts" if os.name == "nt" else "bin")

    def env(self, **extra: str) -> dict[str, str]:
        """A child environment where `python` and the wheel's commands come from the venv."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICY_HUB", "GITHUB_"))}
        env.pop("PYTEST_ADDOPTS", None)
        env.pop("CI", None)
        env.update(GIT_ENV)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        env.update(extra)
        return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def copy_of_the_repository(target: Path) -> Path:
    files = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, files.split("\0")):
        src = ROOT / rel
        if src.is_file() and not src.is_symlink():
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    return target


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("packaging")
    source = copy_of_the_repository(base / "source")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    run([sys.executable, "-m", "build", "--outdir", str(base / "dist"), str(source)], base, env)
    [wheel] = (base / "dist").glob("*.whl")
    [sdist] = (base / "dist").glob("*.tar.gz")
    venv = base / "venv"
    run([sys.executable, "-m", "venv", str(venv)], base, env)
    built = Built(source, wheel, sdist, venv)
    # The plain wheel: what the README's install and action.yml give. The `[hub]` extra only
    # adds uvicorn's speedups (its metadata is checked below, without a second venv).
    run(
        [str(built.bin / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        base,
        built.env(),
    )
    return built


class ServedHub:
    """`policy-hub serve` from the fresh venv, on loopback, port 0."""

    def __init__(self, built: Built, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.token = "w-" + os.urandom(12).hex()
        (folder / "tokens").write_text(f"write {self.token}\n")
        self.db = folder / "hub.sqlite3"
        self.out = folder / "hub.stdout"
        with open(self.out, "wb") as out, open(folder / "hub.stderr", "wb") as err:
            self.process = subprocess.Popen(
                [
                    *(str(built.bin / "policy-hub"), "serve", "--db", str(self.db)),
                    *("--port", "0", "--token-file", str(folder / "tokens")),
                ],
                stdout=out,
                stderr=err,
                env=built.env(),
            )
        deadline = time.monotonic() + 30
        self.url = ""
        while not self.url and time.monotonic() < deadline and self.process.poll() is None:
            for line in self.out.read_text().splitlines():
                if line.startswith(LISTENING):
                    self.url = line[len(LISTENING) :].strip()
            time.sleep(0.05)
        assert self.url, (folder / "hub.stderr").read_text()

    def created(self) -> list[tuple[str, str]]:
        with sqlite3.connect(self.db) as conn:
            rows = conn.execute("SELECT name, version FROM policies ORDER BY name").fetchall()
        return [(str(n), str(v)) for n, v in rows]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)


@pytest.fixture
def served(built: Built, tmp_path: Path) -> Iterator[ServedHub]:
    hub = ServedHub(built, tmp_path / "hub")
    yield hub
    hub.stop()


def test_the_wheel_and_the_sdist_pass_twine_check_and_ship_their_data(built: Built) -> None:
    run(
        [sys.executable, "-m", "twine", "check", str(built.wheel), str(built.sdist)],
        ROOT,
        {**os.environ},
    )
    names = zipfile.ZipFile(built.wheel).namelist()
    for data in (
        "policy_checks/rules/rules.yaml",
        "policy_checks/rules/metadata.schema.json",
        "publisher/state/schemas/delivered.schema.json",
        "publisher/state/schemas/fragment.schema.json",
        "policy_hub/embedded.py",
        "policy_hub/templates/base.html",
        "policy_hub/templates/version.html",
        "policy_hub/static/hub.css",
    ):
        assert data in names, data
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(built.wheel).read(entry_points).decode()
    assert "policyhub = publisher.plugin" in text and "policyhub-check" in text
    # The embedded hub (the default of `pytest --release`) runs from a plain install; the hub
    # extra only adds uvicorn's speedups and the PostgreSQL driver of a standalone hub.
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [
        line.removeprefix("Requires-Dist: ")
        for line in zipfile.ZipFile(built.wheel).read(meta).decode().splitlines()
        if line.startswith("Requires-Dist: ")
    ]
    for package in ("fastapi", "uvicorn", "pydantic", "starlette", "anyio", "jinja2"):
        [spec] = [r for r in requires if r.split(">=")[0] == package]
        assert "extra ==" not in spec and ">=" in spec, spec
    hub_extra = sorted(r.split(">=")[0] for r in requires if 'extra == "hub"' in r)
    assert hub_extra == ["httptools", "psycopg-pool", "psycopg[binary]", "uvloop"], requires


def test_the_wheel_works_in_a_separate_policy_repository(
    built: Built, served: ServedHub, tmp_path: Path
) -> None:
    repo = PolicyRepo(tmp_path / "elsewhere")
    repo.add_policy("alpha", "1.0.0")
    repo.add_policy("beta", "1.0.0", meta=metadata("beta", "2.0.0"))
    repo.commit()
    python = str(built.bin / "python")
    author = subprocess.run(
        [python, "-m", "pytest", "-q"],
        cwd=repo.path,
        env=built.env(),
        capture_output=True,
        text=True,
    )
    assert author.returncode == 1 and "1 failed, 1 passed" in author.stdout, author.stdout
    assert "PytestAssertRewriteWarning" not in author.stdout + author.stderr
    repo.add_policy("beta", "1.0.0")
    repo.commit("fix beta")
    env = built.env(POLICY_HUB_URL=served.url, POLICY_HUB_TOKEN=served.token)
    release = subprocess.run(
        [python, "-m", "pytest", "--release", "-n", "2"],
        cwd=repo.path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert release.returncode == 0, release.stdout + release.stderr
    assert "Release successful – all 2 policies delivered" in release.stdout
    assert served.created() == [("alpha", "1.0.0"), ("beta", "1.0.0")]
    # The wheel's hub serves its pages (templates and stylesheet are package data).
    page = requests.get(f"{served.url}/", cookies={"policyhub_read": served.token}, timeout=10)
    assert page.status_code == 200 and ">alpha</a>" in page.text and ">beta</a>" in page.text
    assert requests.get(f"{served.url}/ui/static/hub.css", timeout=10).status_code == 200
    local = subprocess.run(
        [python, "-m", "pytest", "--release"],
        cwd=repo.path,
        env={**built.env(), "POLICY_HUB_TOKEN": ""},
        capture_output=True,
        text=True,
    )
    # The README's main job, on the embedded hub, from the plain install.
    assert local.returncode == 0, local.stdout + local.stderr
    assert "releasing to the embedded local hub" in local.stdout
    assert "Release successful – all 2 policies delivered" in local.stdout
    assert "INTERNALERROR" not in local.stdout + local.stderr
    served_help = subprocess.run(
        [str(built.bin / "policy-hub"), "serve", "--help"],
        env=built.env(),
        capture_output=True,
        text=True,
    )
    assert served_help.returncode == 0, served_help.stdout + served_help.stderr
    assert served_help.stdout.startswith("usage: policy-hub serve")


# -- the composite action, run as GitHub runs it ----------------------------------------------


def run_action(
    built: Built, repo: PolicyRepo, inputs: dict[str, str], github: dict[str, Any], summary: Path
) -> subprocess.CompletedProcess[str]:
    """action.yml's steps as GitHub runs them (tests/actionrun.py); setup-python is the fresh
    venv on PATH, upload-artifact is checked by the caller."""
    env = built.env(
        GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary), GITHUB_SHA=github["sha"]
    )
    return run_steps(built.source, repo.path, inputs, github, env)


def test_action_yml_satisfies_githubs_schema() -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-actions",
            str(ROOT / "action.yml"),
        ],
        check=True,
        capture_output=True,
    )


def test_the_action_validates_a_pull_request_and_releases(
    built: Built, served: ServedHub, tmp_path: Path
) -> None:
    repo = PolicyRepo(tmp_path / "policy-repo")
    repo.add_policy("alpha", "1.0.0")
    base = repo.commit("main")
    repo.git("checkout", "-q", "-b", "feature")
    repo.add_policy("gamma", "1.0.0")
    head = repo.commit("a pull request")

    summary = tmp_path / "pr-summary.md"
    pr = {"sha": head, "event": {"pull_request": {"base": {"sha": base}}}}
    validate = run_action(built, repo, {"mode": "validate"}, pr, summary)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "Release preview – 1 will be published by the next release" in summary.read_text()
    assert (repo.path / "report.xml").is_file() and (repo.path / "report.json").is_file()

    summary = tmp_path / "release-summary.md"
    inputs = {
        "mode": "release",
        "hub-url": served.url,
        "hub-token": served.token,
        "push": "false",
        "workers": "2",
    }
    release = run_action(built, repo, inputs, {"sha": head, "event": {}}, summary)
    assert release.returncode == 0, release.stdout + release.stderr
    assert "Release successful – all 2 policies delivered" in summary.read_text()
    assert served.token not in release.stdout + release.stderr + summary.read_text()
    assert served.created() == [("alpha", "1.0.0"), ("gamma", "1.0.0")]
    assert json.loads((repo.path / ".state/delivered.json").read_text())["policies"].keys() == {
        "alpha",
        "gamma",
    }


# -- the pre-commit hook -------------------------------------------------------------------------


def test_the_pre_commit_hook_checks_what_a_commit_touches(tmp_path: Path) -> None:
    repo = PolicyRepo(tmp_path / "policy-repo")
    repo.add_policy("alpha", "1.0.0")
    repo.add_policy("beta", "1.0.0", meta=metadata("beta", "2.0.0"))  # invalid, not touched
    repo.commit()
    repo.add_policy("gamma", "1.0.0", meta=metadata("gamma", "9.9.9"))  # invalid, touched
    repo.git("add", "-A")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env.update(GIT_ENV)
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")
    source = copy_of_the_repository(tmp_path / "hook-source")
    subprocess.run(["git", "init", "-q"], cwd=source, check=True)
    subprocess.run(["git", "add", "-A"], cwd=source, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "snapshot"], cwd=source, check=True, env=env)
    cmd = [sys.executable, "-m", "pre_commit", "try-repo", str(source), "policyhub-check"]
    failed = subprocess.run(cmd, cwd=repo.path, env=env, capture_output=True, text=True)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "policies/gamma/v1.0.0/metadata.json" in failed.stdout
    assert "beta" not in failed.stdout, "only what the commit touches"
    repo.add_policy("gamma", "1.0.0")
    repo.git("add", "-A")
    passed = subprocess.run(cmd, cwd=repo.path, env=env, capture_output=True, text=True)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "PytestAssertRewriteWarning" not in passed.stdout + passed.stderr


def test_the_installed_policyhub_check_says_only_what_it_checked(
    built: Built, tmp_path: Path
) -> None:
    repo = PolicyRepo(tmp_path / "policy-repo")
    repo.add_policy("alpha", "1.0.0")
    repo.commit()
    result = subprocess.run(
        [str(built.bin / "policyhub-check"), "policies/alpha/v1.0.0/metadata.json"],
        cwd=repo.path,
        env=built.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "PytestAssertRewriteWarning" not in result.stdout + result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "code", "output"),
    [
        (["--help"], 0, "usage: policyhub-check [-h] [FILE ...]"),
        (["nonexistent.txt"], 4, "policyhub-check: error: no such file: nonexistent.txt"),
        (["README.md"], 0, "nothing to check (no file given belongs to a policy version)"),
        ([], 0, "nothing to check"),
        (["policies/gone/v1.0.0/metadata.json"], 0, "nothing to check"),  # a deleted version
        (["policies/alpha/v1.0.0/metadata.json"], 0, "1 passed"),
    ],
)
def test_policyhub_check_behaves_like_a_command_line(
    tmp_path: Path, args: list[str], code: int, output: str
) -> None:
    repo = PolicyRepo(tmp_path / "policy-repo")
    repo.add_policy("alpha", "1.0.0")
    (repo.path / "README.md").write_text("a policy repository\n")
    result = subprocess.run(
        [sys.executable, "-m", "publisher.plugin.precommit", *args],
        cwd=repo.path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == code, result.stdout + result.stderr
    assert output in result.stdout + result.stderr
