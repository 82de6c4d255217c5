"""Starts `policy-hub serve` processes for the tests in a few milliseconds instead of ~0.6 s.

Most of a hub process's start is Python importing FastAPI, pydantic, uvicorn, cryptography and
the hub itself (`python -X importtime -m policy_hub serve`: ~0.45 s of ~0.6 s on 2 cores), and
the suite starts a hub about 250 times. This module is a process that imports all of it once and
then forks: each hub is a child of it that runs `policy_hub.cli.main(argv)` exactly as
`python -m policy_hub` does, in its own session, with its own environment, working directory,
stdin (/dev/null), stdout and stderr files. What the tests talk to is still a real hub process
over loopback HTTP, SIGTERM- and SIGKILL-able, with its real database; only the imports are
shared. The tests of how a person starts the hub (tests/test_hub_cli.py, the packaging and
README tests) exec `python -m policy_hub` as users do (`HubProcess(..., forked=False)`).

The zygote is single-threaded (fork is safe) and speaks JSON lines on its stdin/stdout:

    {"op": "spawn", "argv": [...], "env": {...}, "cwd": "...", "stdout": "...", "stderr": "..."}
        -> {"pid": 1234}
    {"op": "status", "pid": 1234}  -> {"code": null}  (running) or {"code": 0 | -9 | ...}

A child's exit status is kept until asked for. The zygote ends at EOF on its stdin (the test
process that started it is gone); the hubs it started are ended by their tests' fixtures.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import IO, Any

# What `policy-hub serve` imports (python -X importtime -m policy_hub serve).
PRELOADED = (
    "policy_hub.cli",
    "policy_hub.app",
    "policy_hub.server",
    "policy_hub.pages",
    "policy_hub.oidc",
    "policy_hub.publishers",
    "policy_hub.verify",
    "policy_hub.faults",
    "policy_hub.sqlite_store",
    "policy_hub.postgres_store",
    "psycopg_pool",
    "uvicorn",
    "uvicorn.config",
    "uvicorn.server",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.lifespan.on",
    "uvicorn.loops.asyncio",
)
START_TIMEOUT_SECONDS = 30.0  # the zygote's own start (imports), once per test process
ANSWER_TIMEOUT_SECONDS = 30.0  # a fork or a waitpid: milliseconds, unless the zygote is stuck


def _child(request: dict[str, Any]) -> None:
    """In the forked child: become `python -m policy_hub <argv>`; never returns."""
    code = 1
    try:
        os.setsid()
        stdin = os.open(os.devnull, os.O_RDONLY)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        stdout = os.open(request["stdout"], flags, 0o644)
        stderr = os.open(request["stderr"], flags, 0o644)
        for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [sys.argv[0], *request["argv"]]
        from policy_hub.cli import main

        try:
            code = main(list(request["argv"]))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # the child's last words go to its stderr file
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> None:
    """The zygote's loop: one request a line, one answer a line."""
    for name in PRELOADED:
        __import__(name)
    exited: dict[int, int] = {}
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "spawn":
            pid = os.fork()
            if pid == 0:
                _child(request)
            answer: dict[str, Any] = {"pid": pid}
        else:
            pid = int(request["pid"])
            if pid not in exited:
                try:
                    done, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done, status = 0, 0
                if done:
                    exited[pid] = os.waitstatus_to_exitcode(status)
            answer = {"code": exited.get(pid)}
        print(json.dumps(answer), flush=True)


class ZygoteError(RuntimeError):
    """The zygote could not be started or stopped answering."""


# The zygote's own environment: the test process's as it was when this module was imported, before
# any test changed it, without the hub's variables (each hub gets its own environment anyway).
_ZYGOTE_ENV = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_HUB_")}


class Zygote:
    """The test process's end of one zygote (started on first use, one per test process)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()  # tests may start hubs from several threads

    def _started(self) -> tuple[IO[str], IO[str]]:
        if self._process is None or self._process.poll() is not None:
            root = Path(__file__).resolve().parent.parent
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tests.hubzygote"],
                cwd=root,
                env=_ZYGOTE_ENV,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            assert self._process.stdout is not None
            ready = _line(self._process.stdout, START_TIMEOUT_SECONDS)
            if not ready.startswith('{"ready"'):
                self._process.kill()
                raise ZygoteError(f"the hub zygote did not start (it said {ready!r})")
        assert self._process.stdin is not None and self._process.stdout is not None
        return self._process.stdin, self._process.stdout

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            stdin, stdout = self._started()
            try:
                stdin.write(json.dumps(request) + "\n")
                stdin.flush()
                answer = _line(stdout, ANSWER_TIMEOUT_SECONDS)
            except OSError as exc:
                raise ZygoteError(f"the hub zygote stopped answering: {exc}") from exc
            if not answer:
                raise ZygoteError(
                    f"the hub zygote ended or did not answer within {ANSWER_TIMEOUT_SECONDS:.0f} s"
                )
            result: dict[str, Any] = json.loads(answer)
            return result

    def spawn(
        self, argv: list[str], env: dict[str, str], stdout: Path, stderr: Path
    ) -> ForkedProcess:
        answer = self.ask(
            {
                "op": "spawn",
                "argv": argv,
                "env": env,
                "cwd": os.getcwd(),
                "stdout": str(stdout),
                "stderr": str(stderr),
            }
        )
        return ForkedProcess(self, int(answer["pid"]), argv)


def _line(stream: IO[str], timeout: float) -> str:
    """The next line the zygote writes, or "" if none comes within `timeout` (one request is
    outstanding at a time, so nothing is ever buffered ahead of the select)."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


class ForkedProcess:
    """A hub the zygote forked, with what the tests use of `subprocess.Popen`: `pid` (also its
    process group), `poll`, `wait`, `send_signal`, `returncode`."""

    def __init__(self, zygote: Zygote, pid: int, argv: list[str]) -> None:
        self._zygote = zygote
        self.pid = pid
        self.args = argv
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            code = self._zygote.ask({"op": "status", "pid": self.pid})["code"]
            self.returncode = None if code is None else int(code)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            time.sleep(0.01)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)


ZYGOTE = Zygote()

if __name__ == "__main__":
    serve()
