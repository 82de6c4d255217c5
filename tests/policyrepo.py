"""Real policy repositories in temp folders for the end-to-end tests: git history, policies,
state, and the harness run as a real `pytest` subprocess in them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from policy_checks import policy_digest

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Policy Author",
    "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Policy Author",
    "GIT_COMMITTER_EMAIL": "author@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}

PYPROJECT = """\
[tool.pytest.ini_options]
testpaths = ["policies"]
junit_family = "xunit1"
"""


def metadata(name: str, version: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "title": f"{name} policy",
        "description": f"Checks {name}.",
        "owner": "platform-security",
        "tags": ["example"],
        **extra,
    }


def definition(rule_ids: tuple[str, ...] = ("rule-one",), severity: str = "high") -> dict[str, Any]:
    return {
        "apiVersion": "policyhub/v1",
        "kind": "PolicyDefinition",
        "spec": {
            "severity": severity,
            "enforcement": "deny",
            "rules": [
                {"id": rid, "description": f"{rid} holds", "condition": "resource.ok == true"}
                for rid in rule_ids
            ],
        },
    }


@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class PolicyRepo:
    """A git repository holding policies, with helpers to change it and run the harness."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        (path / "pyproject.toml").write_text(PYPROJECT)
        (path / ".gitignore").write_text(".policyhub-local/\n__pycache__/\n.pytest_cache/\n")
        state = path / ".state"
        state.mkdir()
        (state / "delivered.json").write_text('{\n  "policies": {},\n  "version": 1\n}\n')

    @classmethod
    def existing(cls, path: Path) -> PolicyRepo:
        """A repository that already exists (a clone, a subfolder): nothing is written."""
        repo = cls.__new__(cls)
        repo.path = path
        return repo

    @classmethod
    def clone_of(cls, source: str | Path, target: Path, *git_args: str) -> PolicyRepo:
        subprocess.run(
            ["git", "clone", "-q", *git_args, str(source), str(target)],
            check=True,
            env={**os.environ, **GIT_ENV},
        )
        return cls.existing(target)

    def git(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(
            ["git", "-C", str(self.path), *args],
            capture_output=True,
            text=True,
            env={**os.environ, **GIT_ENV},
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout.strip()

    def add_policy(
        self,
        name: str,
        version: str,
        meta: dict[str, Any] | None = None,
        definition_text: str | None = None,
        rule_ids: tuple[str, ...] = ("rule-one",),
    ) -> Path:
        folder = self.path / "policies" / name / f"v{version}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metadata.json").write_text(json.dumps(meta or metadata(name, version), indent=2))
        text = definition_text or yaml.safe_dump(definition(rule_ids), sort_keys=False)
        (folder / "policy-definition.yaml").write_text(text)
        return folder

    def with_committed(self, *names: str) -> PolicyRepo:
        """Version 1.0.0 of each name, committed: what many tests start from."""
        for name in names:
            self.add_policy(name, "1.0.0")
        self.commit()
        return self

    def write(self, relpath: str, text: str) -> None:
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def commit(self, message: str = "change policies") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    @property
    def baseline(self) -> str | None:
        path = self.path / ".state" / "baseline.sha"
        return path.read_text().strip() if path.exists() else None

    def delivered(self, state_dir: str = ".state") -> dict[str, Any]:
        return json.loads((self.path / state_dir / "delivered.json").read_text())

    def delivered_versions(self, state_dir: str = ".state") -> set[tuple[str, str]]:
        data = self.delivered(state_dir)["policies"]
        return {(name, version) for name, versions in data.items() for version in versions}

    def pytest(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 300,
    ) -> RunResult:
        """Run the harness as users do: `python -m pytest ...` in the repository."""
        run_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("POLICY_HUB", "GITHUB_"))
        }
        run_env.pop("CI", None)
        run_env.update(GIT_ENV)
        run_env.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", *args],
            cwd=self.path,
            capture_output=True,
            text=True,
            env=run_env,
            timeout=timeout,
            check=False,
        )
        return RunResult(proc.returncode, proc.stdout, proc.stderr)

    def release(self, hub: Any, *args: str, env: dict[str, str] | None = None) -> RunResult:
        """`pytest --release` against a real hub process (tests/hubprocess.HubProcess)."""
        return self.pytest(
            "--release",
            *args,
            env={"POLICY_HUB_URL": hub.url, "POLICY_HUB_TOKEN": hub.token, **(env or {})},
        )


def remote_file(remote: Path, path: str, branch: str = "main") -> str:
    """A file as the bare repository `remote` holds it on `branch`."""
    return subprocess.run(
        ["git", "--git-dir", str(remote), "show", f"{branch}:{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def seed_hub(hub: Any, name: str, version: str, meta: dict[str, Any] | None = None) -> str:
    """Create a version in the hub directly, as another publisher would have; its digest."""
    meta = meta or metadata(name, version)
    body = {
        "name": name,
        "version": version,
        "metadata": meta,
        "definition": definition(),
        "digest": policy_digest(meta, definition()),
        "release_sha": "0" * 40,
    }
    answer = requests.post(
        f"{hub.url}/policies",
        json=body,
        headers={
            "Authorization": f"Bearer {hub.token}",
            "Idempotency-Key": f"seed:{name}@{version}",
        },
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return str(body["digest"])


def junit_properties(junit: Path) -> dict[str, dict[str, str]]:
    """testcase name -> its <properties> (either JUnit family)."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        found[case.get("name", "")] = {
            p.get("name", ""): p.get("value", "") for p in case.iter("property")
        }
    return found
