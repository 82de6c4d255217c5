"""Fixtures shared by the project's own tests: real Policy Hub processes (tests/hubprocess.py),
on SQLite or on a real PostgreSQL server the tests start (tests/pgserver.py), and pytester for
black-box runs of the harness.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from policy_checks.cel.environment import ENVIRONMENTS
from tests.browser import SCREENSHOTS_PROPERTY
from tests.hubprocess import HubProcess
from tests.pgserver import PostgresServer, PostgresUnavailable

# pytester's in-process runs forget the modules each run imported; a C++ extension imported
# again fails ("type already registered"). The CEL engine is loaded once here, before any run.
ENVIRONMENTS.running(())
ENVIRONMENTS.checking(())

# The dev extra brings schemathesis and hypothesis, whose pytest plugins every pytest these tests
# start (and each of its xdist workers) would load for nothing: ~0.6 s a start on two cores.
UNRELATED_PLUGINS = "-p no:schemathesis -p no:hypothesispytest -p no:anyio"


@pytest.fixture(autouse=True, scope="session")
def _lean_child_pytests() -> Iterator[None]:
    before = os.environ.get("PYTEST_ADDOPTS")
    os.environ["PYTEST_ADDOPTS"] = f"{before or ''} {UNRELATED_PLUGINS}".strip()
    yield
    if before is None:
        os.environ.pop("PYTEST_ADDOPTS", None)
    else:
        os.environ["PYTEST_ADDOPTS"] = before


def postgres_missing(reason: str) -> None:
    """Skip a PostgreSQL test outside CI; in CI (`CI` set) a PostgreSQL that cannot be started
    fails it, so the suite never passes there without having run these tests."""
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required when CI is set: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL cannot be started here: {reason}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server per test process (each xdist worker has its own), on a free
    loopback port; each test takes a fresh database of it (`postgres_db`)."""
    yield from _launched_postgres()


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test alone, which it may stop, start and crash."""
    yield from _launched_postgres()


def _launched_postgres() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer.launch()
    except PostgresUnavailable as exc:
        postgres_missing(str(exc))
    yield server
    server.close()


@pytest.fixture
def postgres_db(postgres_server: PostgresServer) -> str:
    """The URL of a new, empty database on the session's PostgreSQL server."""
    return postgres_server.create_database()


@pytest.fixture
def hub(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HubProcess]:
    """A fresh hub process with an empty database, stopped after the test: SQLite, or
    PostgreSQL when parametrised so (`on_both_engines` in tests/hubprocess.py)."""
    engine = getattr(request, "param", "sqlite")
    db = request.getfixturevalue("postgres_db") if engine == "postgresql" else None
    with HubProcess(tmp_path / "hub", db=db) as process:
        yield process


@pytest.fixture
def hub_factory(tmp_path: Path) -> Iterator[Callable[..., HubProcess]]:
    """`hub_factory(faults="rate_503=0.5,seed=1", extra_args=(...))` -> a started HubProcess;
    each gets its own folder and database; all are stopped after the test."""
    started: list[HubProcess] = []

    def make(faults: str | None = None, **kwargs: object) -> HubProcess:
        process = HubProcess(tmp_path / f"hub{len(started)}", faults, **kwargs)  # type: ignore[arg-type]
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()


# -- the page tests' screenshots (tests/test_hub_pages.py) ---------------------------------------


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # On the controller too: xdist ships each worker's reports, user properties included.
    for name, value in report.user_properties:
        if name == SCREENSHOTS_PROPERTY:
            _screenshot_folders.add(str(value))


_screenshot_folders: set[str] = set()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for folder in sorted(_screenshot_folders):
        terminalreporter.write_line(f"page screenshots: {folder}")
