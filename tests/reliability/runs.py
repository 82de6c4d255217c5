"""Release runs as real process groups that a test can kill at a chosen moment, and the
repository conftest that lets a run pause at a named point (so a SIGKILL lands exactly there).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.hubprocess import HubProcess
from tests.policyrepo import GIT_ENV, PolicyRepo, RunResult

# Written into the temp repository as conftest.py. Everything is off unless a RELIABILITY_*
# variable asks for it, so reruns in the same repository behave like plain releases.
REPO_CONFTEST = '''\
"""Reliability tests only: pause points for kills, and short hub timeouts (see RELIABILITY_*)."""

import os
import pathlib
import time

from publisher.state import folder as state

_PAUSE = os.environ.get("RELIABILITY_PAUSE_AT", "")
_MARKER = os.environ.get("RELIABILITY_MARKER", "")
_HOLD = float(os.environ.get("RELIABILITY_HOLD_SECONDS", "0") or 0)


def _pause(point):
    if _PAUSE == point:
        pathlib.Path(_MARKER).write_text(point)
        time.sleep(60)


if _PAUSE == "before-baseline-write":
    _write_baseline = state.StateDir.write_baseline

    def _paused_write_baseline(self, sha):
        _pause("before-baseline-write")
        return _write_baseline(self, sha)

    state.StateDir.write_baseline = _paused_write_baseline

if _PAUSE == "mid-delivered-write":
    _replace = os.replace

    def _paused_replace(src, dst, *args, **kwargs):
        # The temp file is written and fsynced, the rename has not happened yet.
        if str(dst).endswith("delivered.json"):
            _pause("mid-delivered-write")
        return _replace(src, dst, *args, **kwargs)

    state.os.replace = _paused_replace


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):
        _pause("session-start")
        if _HOLD:
            time.sleep(_HOLD)  # keeps the state lock held while a rival run starts
'''


def install_conftest(repo: PolicyRepo) -> None:
    repo.write("conftest.py", REPO_CONFTEST)


# The versions of the outage and PostgreSQL reliability tests: six, one commit.
SIX_VERSIONS = [(f"policy-{i:02d}", "1.0.0") for i in range(6)]


def six_version_repo(path: Path) -> PolicyRepo:
    """A repository with the reliability conftest and `SIX_VERSIONS` committed."""
    repo = PolicyRepo(path)
    install_conftest(repo)
    for name, version in SIX_VERSIONS:
        repo.add_policy(name, version)
    repo.commit()
    return repo


def release_env(hub_url: str, token: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of `pytest --release` as CI would give it (none of ours leaks in)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POLICY_HUB", "GITHUB_", "RELIABILITY_", "PYTEST_XDIST"))
    }
    env.pop("CI", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update(GIT_ENV)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["POLICY_HUB_URL"] = hub_url
    env["POLICY_HUB_TOKEN"] = token
    env.update(extra or {})
    # Short limits through the harness's own ini keys (README: every limit), as a user sets them.
    limits = []
    if env.get("RELIABILITY_READ_TIMEOUT"):
        limits.append(f"-o policy_hub_answer_timeout={env['RELIABILITY_READ_TIMEOUT']}")
    if env.get("RELIABILITY_FAST_RETRY"):
        limits += ["-o policy_hub_backoff=0.05", "-o policy_hub_backoff_max=0.2"]
    if limits:
        env["PYTEST_ADDOPTS"] = " ".join([env.get("PYTEST_ADDOPTS", ""), *limits]).strip()
    return env


@dataclass
class ReleaseRun:
    """One `python -m pytest --release ...` in its own process group, output to files."""

    process: subprocess.Popen[bytes]
    out_path: Path
    err_path: Path
    started: float
    killed: bool = False

    @classmethod
    def start(
        cls,
        cwd: Path,
        args: list[str],
        env: dict[str, str],
        logs: Path,
    ) -> ReleaseRun:
        logs.mkdir(parents=True, exist_ok=True)
        stamp = f"{time.monotonic_ns()}"
        out_path, err_path = logs / f"run-{stamp}.out", logs / f"run-{stamp}.err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "pytest", "--release", *args],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own group: one killpg takes the xdist workers too
            )
        return cls(process, out_path, err_path, time.monotonic())

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group (controller and xdist workers), like a lost runner."""
        if self.alive():
            self.killed = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        # A worker that outlived its controller (it should not) is still in the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def kill_when(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Kill as soon as `condition()` holds; False when the run ended first (no kill)."""
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            if condition():
                self.kill()
                return True
            time.sleep(0.02)
        if self.alive():
            self.kill()
            raise AssertionError(f"the run neither ended nor reached the kill point in {timeout}s")
        return False

    def wait(self, timeout: float = 300) -> RunResult:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"release run still running after {timeout}s") from None
        return self.result()

    def result(self) -> RunResult:
        return RunResult(
            self.process.returncode if self.process.returncode is not None else -1,
            self.out_path.read_text(errors="replace"),
            self.err_path.read_text(errors="replace"),
        )


def start_release(
    repo: PolicyRepo, hub: HubProcess, *args: str, extra_env: dict[str, str] | None = None
) -> ReleaseRun:
    env = release_env(hub.url, hub.token, extra_env)
    return ReleaseRun.start(repo.path, list(args), env, repo.path.parent / "run-logs")
