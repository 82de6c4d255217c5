"""A real `policy-hub serve` process on loopback for end-to-end tests, on a SQLite file or a
PostgreSQL database (`db=URL`), with the truth read straight from the database (`created`,
`records`, `query`).

    with HubProcess(tmp_path) as hub:            # or the `hub` / `hub_factory` fixtures
        requests.get(f"{hub.url}/health")
        hub.token, hub.read_token                # write and read-only bearer tokens
        hub.scoped_token                         # writes only SCOPED_GLOBS, label SCOPED_LABEL
        hub.restart(faults="rate_503=0.5,seed=1")  # same db file, new port maybe
        assert hub.created("require-tags", "1.2.0") == 1

    @on_both_engines          # the `hub` fixture once on SQLite, once on PostgreSQL
    def test_x(hub): ...
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

import pytest

from policy_hub.engines import is_database_url
from tests.hubzygote import ZYGOTE, ForkedProcess

START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0
LISTENING_PREFIX = "policy-hub listening on "
ENGINES = ("sqlite", "postgresql")
# The third token of every test hub: it may write only these names (docs/contract.md section 9).
SCOPED_GLOBS = "deny-*,require-labels"
SCOPED_LABEL = "team-deny"
# The `hub` fixture (tests/conftest.py) on each engine, for the tests of docs/contract.md section 5
# that reach the database; a PostgreSQL run skips (fails in CI) where no server can be started.
on_both_engines = pytest.mark.parametrize("hub", ENGINES, indirect=True)


def db_query(db: Path | str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Rows of `sql` (`?` placeholders) in a hub's database: a SQLite file or a PostgreSQL URL."""
    if isinstance(db, str) and is_database_url(db):
        import psycopg

        with psycopg.connect(db, autocommit=True, connect_timeout=10) as pg:
            return [tuple(row) for row in pg.execute(sql.replace("?", "%s"), params).fetchall()]
    conn = sqlite3.connect(db, timeout=15)
    try:
        rows = conn.execute(sql, params).fetchall()
        conn.commit()  # an UPDATE of a test that tampers with the database
        return rows
    finally:
        conn.close()


class HubStartError(RuntimeError):
    """The hub process exited or stayed silent instead of printing its URL."""


class HubProcess:
    """`sys.executable -m policy_hub serve` in its own process group, port 0, fresh tokens.

    `faults` is a `--inject-faults` spec (None = no faults). `extra_args` are added to the
    command line. `db` is a `postgresql://` URL, else the database is `workdir`/hub.sqlite3.
    Files live in `workdir`: hub.sqlite3, tokens, hub.N.stdout, hub.N.stderr.

    The process is forked from a process that has imported the hub (tests/hubzygote.py: a start
    takes ~0.1 s, not ~0.6 s) unless `forked` is False (the class default `FORKED` says it for
    a module): then it is exec'd exactly as the command line says, as a person starts it.
    """

    FORKED = hasattr(os, "fork")  # where there is no fork, every hub is exec'd

    def __init__(
        self,
        workdir: Path,
        faults: str | None = None,
        *,
        extra_args: tuple[str, ...] = (),
        start: bool = True,
        db: str | None = None,
        token_file: Path | None = None,
        signing_key: Path | None = None,
        forked: bool | None = None,
    ) -> None:
        self.forked = self.FORKED if forked is None else forked
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.workdir / "hub.sqlite3"
        self.db: Path | str = db if db is not None else self.db_path
        self.token = "w-" + secrets.token_urlsafe(24)
        self.read_token = "r-" + secrets.token_urlsafe(24)
        self.scoped_token = "s-" + secrets.token_urlsafe(24)
        self.token_file = self.workdir / "tokens"
        if token_file is not None:
            # Another process's tokens: a second process of one hub accepts the same ones.
            self.token_file = token_file
            self.token, self.read_token, self.scoped_token = _tokens_in(token_file)
        else:
            self.token_file.write_text(
                f"# written by tests/hubprocess.py\nwrite {self.token}\nread {self.read_token}\n"
                f"write {self.scoped_token} {SCOPED_GLOBS} label={SCOPED_LABEL}\n"
            )
        # A PostgreSQL hub needs one; every process of one hub (twin) signs with the same.
        self.signing_key = signing_key or self.workdir / "signing-key.pem"
        self.faults = faults
        self.extra_args = extra_args
        self.url = ""
        self.process: subprocess.Popen[bytes] | ForkedProcess | None = None
        self._starts = 0
        self.stdout_path = self.workdir / "hub.0.stdout"
        self.stderr_path = self.workdir / "hub.0.stderr"
        if start:
            self.start()

    # -- lifecycle -----------------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "policy_hub", "serve", "--db", str(self.db)]
        cmd += ["--host", "127.0.0.1", "--port", "0", "--token-file", str(self.token_file)]
        cmd += ["--signing-key", str(self.signing_key)]
        if self.faults:
            cmd += ["--inject-faults", self.faults]
        return cmd + list(self.extra_args)

    def start(self) -> None:
        self._starts += 1
        # Files, not pipes: a chatty hub can never block on a full pipe nobody reads.
        self.stdout_path = self.workdir / f"hub.{self._starts}.stdout"
        self.stderr_path = self.workdir / f"hub.{self._starts}.stderr"
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_HUB_")}
        command = self.command()
        if self.forked and command[:3] == [sys.executable, "-m", "policy_hub"]:
            self.stdout_path.write_bytes(b"")
            self.stderr_path.write_bytes(b"")
            self.process = ZYGOTE.spawn(command[3:], env, self.stdout_path, self.stderr_path)
        else:
            with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
                self.process = subprocess.Popen(
                    command,
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                )
        try:
            if self._listening(time.monotonic() + START_TIMEOUT_SECONDS):
                return
        finally:
            if not self.url:
                self.kill()  # whatever ended the wait, no hub is left behind
        raise HubStartError(f"hub did not start (exit {self.process.returncode}):\n{self.stderr()}")

    def _listening(self, deadline: float) -> bool:
        """Whether the process printed its URL (now in `url`) before it exited or `deadline`."""
        assert self.process is not None
        self.url = ""
        while time.monotonic() < deadline:
            for line in self.stdout_path.read_text().splitlines():
                if line.startswith(LISTENING_PREFIX):
                    self.url = line[len(LISTENING_PREFIX) :].strip()
                    return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.01)
        return False

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

    def twin(self, workdir: Path, faults: str | None = None) -> HubProcess:
        """Another process of the same hub: the same PostgreSQL database, the same tokens."""
        return HubProcess(
            workdir,
            faults,
            db=str(self.db),
            token_file=self.token_file,
            extra_args=self.extra_args,
            signing_key=self.signing_key,
            forked=self.forked,
        )

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

    # -- the truth, from the database ----------------------------------------------------

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        return db_query(self.db, sql, params)

    def created(self, name: str, version: str) -> int:
        """How many times the hub answered 201 by creating (not replaying) name@version."""
        rows = self.query(
            "SELECT COUNT(*) FROM audit WHERE name = ? AND version = ?"
            " AND status = 201 AND outcome = 'created'",
            (name, version),
        )
        return int(rows[0][0])  # type: ignore[call-overload]

    def records(self) -> list[tuple[str, str, str]]:
        """Every stored (name, version, digest), sorted."""
        rows = self.query("SELECT name, version, digest FROM policies ORDER BY name, version")
        return [(str(n), str(v), str(d)) for n, v, d in rows]


def _tokens_in(token_file: Path) -> tuple[str, str, str]:
    """The write, read and scoped tokens of a file this module wrote (in that order)."""
    lines = [line.split() for line in token_file.read_text().splitlines() if line[:1] != "#"]
    return lines[0][1], lines[1][1], lines[2][1]
