"""A real PostgreSQL server for the tests: `initdb` into a temp folder and `postgres` on a free
loopback port, run as an unprivileged user when the tests run as root (postgres refuses root),
with a fresh database per test and stop/start for the outage tests.

    server = PostgresServer.launch()      # PostgresUnavailable says why it cannot
    url = server.create_database()        # postgresql://postgres@127.0.0.1:PORT/hub_3
    server.stop(); server.start()         # the same data, the same port
    server.close()                        # stopped, folder removed
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 30.0
INITDB_TIMEOUT_SECONDS = 120.0
# Where Debian/Ubuntu (postgresql-NN), RPM distributions and Homebrew put the server binaries;
# none of them is on PATH by default.
# Names the folder to use instead of searching (a PostgreSQL version of your choice).
BINDIR_ENV = "POLICYHUB_TEST_PG_BINDIR"
BINDIR_GLOBS = (
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
)


class PostgresUnavailable(Exception):
    """PostgreSQL cannot be started on this machine (no binaries, initdb or start failed)."""


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", str(path))) or (0,)


def find_bindir() -> Path | None:
    """The folder holding `initdb` and `postgres`: PATH, `pg_config --bindir`, or the newest
    of the distributions' own folders."""
    chosen = os.environ.get(BINDIR_ENV)
    if chosen:
        folder = Path(chosen)
        return folder if (folder / "initdb").is_file() and (folder / "postgres").is_file() else None
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            candidates.append(Path(out))
    for pattern in BINDIR_GLOBS:
        found = sorted(Path("/").glob(pattern.lstrip("/")), key=_version_key, reverse=True)
        candidates.extend(found)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    return None


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged user to run the server as when we are root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailable("running as root and neither a 'postgres' nor a 'nobody' user")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in its own temp folder, listening on 127.0.0.1:`port` only."""

    def __init__(self, bindir: Path, *, fsync: bool = False, base: Path | None = None) -> None:
        self.bindir = bindir
        self.fsync = fsync
        self.user = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="policyhub-pg-", dir=base))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)

    @classmethod
    def launch(cls, *, fsync: bool = False, base: Path | None = None) -> PostgresServer:
        """A new cluster (in a new folder under `base`, default the temp folder), started;
        PostgresUnavailable (with the reason) when that fails. Tests run with fsync off."""
        bindir = find_bindir()
        if bindir is None:
            raise PostgresUnavailable(
                f"no PostgreSQL server binaries (initdb, postgres) in ${BINDIR_ENV}, on PATH, "
                "from pg_config or in /usr/lib/postgresql/*/bin; install the 'postgresql' package"
            )
        server = cls(bindir, fsync=fsync, base=base)
        try:
            server.initdb()
            server.start()
        except BaseException:
            server.close()
            raise
        return server

    def _popen_kwargs(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def initdb(self) -> None:
        cmd = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres"]
        cmd += ["--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"]
        try:
            done = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=INITDB_TIMEOUT_SECONDS,
                cwd=self.root,
                **self._popen_kwargs(),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise PostgresUnavailable(f"initdb could not run: {exc}") from exc
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise PostgresUnavailable(f"initdb failed: {' / '.join(tail)}")

    def start(self) -> None:
        """Start (again) on the same folder and port; returns once it accepts connections."""
        cmd = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        cmd += ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}"]
        cmd += ["-c", "max_connections=300", "-c", f"fsync={'on' if self.fsync else 'off'}"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                start_new_session=True,
                **self._popen_kwargs(),
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PostgresUnavailable(f"postgres exited at start: {self.log_tail()}")
            if self._answers():
                return
            time.sleep(0.05)
        self.stop("immediate")
        raise PostgresUnavailable(f"postgres did not answer in time: {self.log_tail()}")

    def _answers(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def stop(self, mode: str = "fast") -> None:
        """`fast` (SIGINT: sessions ended, clean shutdown) or `immediate` (SIGQUIT)."""
        if self.process is None or self.process.poll() is not None:
            return
        sig = signal.SIGINT if mode == "fast" else signal.SIGQUIT
        self.process.send_signal(sig)
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT_SECONDS)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 5) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return " / ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-lines:])

    # -- databases ---------------------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, prefix: str = "hub") -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"{prefix}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def backends(self, url: str, application: str = "policy-hub") -> list[int]:
        """The server pids of the connections `application` holds to the database of `url`."""
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = %s",
                (application,),
            ).fetchall()
        return [int(row[0]) for row in rows]


def hub_backend(url: str, where: str, within: float = 10.0) -> int:
    """The pid of the hub's connection that matches `where` on pg_stat_activity, once it does."""
    import psycopg

    deadline = time.monotonic() + within
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'policy-hub'"
                f" AND datname = current_database() AND {where}"
            ).fetchone()
            if row:
                return int(row[0])
            time.sleep(0.02)
    raise AssertionError(f"no hub connection with {where} within {within} s")
