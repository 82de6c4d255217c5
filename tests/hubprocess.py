"""A real `policy-hub serve` process on loopback for end-to-end tests, with the truth read
straight from its SQLite file (`created`, `records`).

    with HubProcess(tmp_path) as hub:            # or the `hub` / `hub_factory` fixtures
        requests.get(f"{hub.url}/health")
        hub.token, hub.read_token                # write and read-only bearer tokens
        hub.restart(faults="rate_503=0.5,seed=1")  # same db file, new port maybe
        assert hub.created("require-tags", "1.2.0") == 1
"""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0
LISTENING_PREFIX = "policy-hub listening on "


class HubStartError(RuntimeError):
    """The hub process exited or stayed silent instead of printing its URL."""


class HubProcess:
    """`sys.executable -m policy_hub serve` in its own process group, port 0, fresh tokens.

    `faults` is a `--inject-faults` spec (None = no faults). `extra_args` are added to the
    command line. Files live in `workdir`: hub.sqlite3, tokens, hub.stdout, hub.stderr.
    """

    def __init__(
        self,
        workdir: Path,
        faults: str | None = None,
        *,
        extra_args: tuple[str, ...] = (),
        start: bool = True,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.workdir / "hub.sqlite3"
        self.token = "w-" + secrets.token_urlsafe(24)
        self.read_token = "r-" + secrets.token_urlsafe(24)
        self.token_file = self.workdir / "tokens"
        self.token_file.write_text(
            f"# written by tests/hubprocess.py\nwrite {self.token}\nread {self.read_token}\n"
        )
        self.faults = faults
        self.extra_args = extra_args
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._starts = 0
        self.stdout_path = self.workdir / "hub.0.stdout"
        self.stderr_path = self.workdir / "hub.0.stderr"
        if start:
            self.start()

    # -- lifecycle -----------------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "policy_hub", "serve", "--db", str(self.db_path)]
        cmd += ["--host", "127.0.0.1", "--port", "0", "--token-file", str(self.token_file)]
        if self.faults:
            cmd += ["--inject-faults", self.faults]
        return cmd + list(self.extra_args)

    def start(self) -> None:
        self._starts += 1
        # Files, not pipes: a chatty hub can never block on a full pipe nobody reads.
        self.stdout_path = self.workdir / f"hub.{self._starts}.stdout"
        self.stderr_path = self.workdir / f"hub.{self._starts}.stderr"
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_HUB_")}
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            for line in self.stdout_path.read_text().splitlines():
                if line.startswith(LISTENING_PREFIX):
                    self.url = line[len(LISTENING_PREFIX) :].strip()
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        self.kill()
        raise HubStartError(f"hub did not start (exit {self.process.returncode}):\n{self.stderr()}")

    def stop(self) -> int | None:
        """SIGTERM, wait; SIGKILL if it hangs. Returns the exit status."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group, like a crash."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT_SECONDS)

    def restart(self, faults: str | None = None) -> None:
        """Stop and start again on the same database and tokens (the port may change)."""
        self.stop()
        self.faults = faults
        self.start()

    def stderr(self) -> str:
        """What the current (or last) process wrote to stderr: warnings, the access log."""
        if not self.stderr_path.exists():
            return ""
        return self.stderr_path.read_text(errors="replace")

    def __enter__(self) -> HubProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the truth, from the SQLite file -------------------------------------------------

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        conn = sqlite3.connect(self.db_path, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def created(self, name: str, version: str) -> int:
        """How many times the hub answered 201 by creating (not replaying) name@version."""
        rows = self._query(
            "SELECT COUNT(*) FROM audit WHERE name = ? AND version = ?"
            " AND status = 201 AND outcome = 'created'",
            (name, version),
        )
        return int(rows[0][0])  # type: ignore[call-overload]

    def records(self) -> list[tuple[str, str, str]]:
        """Every stored (name, version, digest), sorted."""
        rows = self._query("SELECT name, version, digest FROM policies ORDER BY name, version")
        return [(str(n), str(v), str(d)) for n, v, d in rows]
