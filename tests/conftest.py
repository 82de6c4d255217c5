"""Fixtures shared by the project's own tests: real Policy Hub processes (tests/hubprocess.py),
on SQLite or on a real PostgreSQL server the tests start (tests/pgserver.py), and pytester for
black-box runs of the harness.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from policy_checks.cel.environment import ENVIRONMENTS
from tests.browser import SCREENSHOTS_PROPERTY
from tests.hubprocess import HubProcess
from tests.pgserver import PostgresServer, PostgresUnavailable
from tests.policyrepo import PolicyRepo
from tests.schemadocs import FAST_TIER_ENV

# pytester's in-process runs forget the modules each run imported; a C++ extension imported
# again fails ("type already registered"). The CEL engine is loaded once here, before any run.
ENVIRONMENTS.running(())
ENVIRONMENTS.checking(())

# The dev extra brings schemathesis and hypothesis, whose pytest plugins every pytest these tests
# start (and each of its xdist workers) would load for nothing: ~0.6 s a start on two cores, and
# ~2 s where their assertion-rewritten modules cannot be cached (PYTHONDONTWRITEBYTECODE).
UNRELATED_PLUGINS = "-p no:schemathesis -p no:hypothesispytest -p no:anyio"


@pytest.fixture(autouse=True, scope="session")
def _lean_child_pytests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """What every process the tests start inherits: no unrelated plugins, and bytecode cached
    in one folder outside every repository (PYTHONPYCACHEPREFIX), also where the machine says
    PYTHONDONTWRITEBYTECODE (as this project's dev container and many CI images do): without a
    cache each of the suite's ~250 pytest processes and their workers and evaluating children
    compiled the harness, and pytest rewrote its plugin modules, from source every time."""
    changed = {
        "PYTEST_ADDOPTS": f"{os.environ.get('PYTEST_ADDOPTS') or ''} {UNRELATED_PLUGINS}".strip(),
        "PYTHONPYCACHEPREFIX": str(tmp_path_factory.getbasetemp() / "pycache"),
        "PYTHONDONTWRITEBYTECODE": None,
    }
    before = {name: os.environ.get(name) for name in changed}
    _set_environment(changed)
    yield
    _set_environment(before)


def _set_environment(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    """pytester's own, whose runs (in this process or a subprocess) get the lean plugin set
    back: it clears PYTEST_ADDOPTS for isolation when it is made. Set through pytester's own
    monkeypatch (private, and there is no public way): undone with pytester's change, in the
    reverse order, so the session's PYTEST_ADDOPTS comes back whatever order the teardowns run."""
    pytester._monkeypatch.setenv("PYTEST_ADDOPTS", UNRELATED_PLUGINS)
    return pytester


# -- the fast tier (README: `pytest tests --fast -n 2`) --------------------------------------------
#
# A module of unit tests and example files says `pytestmark = pytest.mark.fast`; a test of such a
# module that starts processes (git, a pytest of its own, xdist workers) or a server says
# `@pytest.mark.process` and stays out of the tier. The tier is held to it: a test of the tier that
# starts a process or listens on a socket fails, naming what it started. The one process allowed
# is the evaluating child of policy_checks/evaluator.py, which every run of conditions has.


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="only the fast tier: unit tests and example files, no process, no server",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--fast"):
        os.environ[FAST_TIER_ENV] = "1"  # property tests try fewer examples (schemadocs.examples)
    config.addinivalue_line("markers", "fast: a module of the fast tier (see tests/conftest.py)")
    config.addinivalue_line(
        "markers", "process: starts processes or servers: never in the fast tier"
    )


def in_fast_tier(item: pytest.Item) -> bool:
    return (
        item.get_closest_marker("fast") is not None and item.get_closest_marker("process") is None
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--fast"):
        return
    kept = [item for item in items if in_fast_tier(item)]
    config.hook.pytest_deselected(items=[item for item in items if not in_fast_tier(item)])
    items[:] = kept


EVALUATING_CHILD = "from policy_checks.evaluator import serve"


@pytest.fixture(autouse=True)
def _fast_tier_starts_nothing(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not in_fast_tier(request.node):
        return
    where = request.node.nodeid
    popen_init = subprocess.Popen.__init__

    def no_process(self: subprocess.Popen[Any], args: Any, *more: Any, **kwargs: Any) -> None:
        if EVALUATING_CHILD not in str(args):
            raise AssertionError(
                f"{where} is in the fast tier but started a process: {args!r}. Mark it "
                "@pytest.mark.process (tests/conftest.py says what the tiers are)."
            )
        popen_init(self, args, *more, **kwargs)

    def no_server(self: socket.socket, *args: Any) -> None:
        raise AssertionError(
            f"{where} is in the fast tier but listens on a socket. Mark it @pytest.mark.process."
        )

    monkeypatch.setattr(subprocess.Popen, "__init__", no_process)
    monkeypatch.setattr(socket.socket, "listen", no_server)


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
def repo(tmp_path: Path) -> PolicyRepo:
    """An empty policy repository, a real git repository in this test's folder (a module may
    override it, taking this one as its `repo` argument, to add what all its tests start with)."""
    return PolicyRepo(tmp_path / "repo")


@pytest.fixture
def hub(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HubProcess]:
    """A fresh hub process with an empty database, stopped after the test: SQLite, or
    PostgreSQL when parametrised so (`on_both_engines` in tests/hubprocess.py)."""
    engine = getattr(request, "param", "sqlite")
    db = request.getfixturevalue("postgres_db") if engine == "postgresql" else None
    with HubProcess(tmp_path / "hub", db=db) as process:
        yield process
        # The test is over and has read what it needed: a graceful stop (~0.3 s of uvicorn's
        # shutdown, a fixture's teardown 300 times a suite) proves nothing more here. The tests
        # of stopping stop their hubs themselves (test_hub_cli, the reliability suite).
        process.kill()


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
        process.kill()  # as `hub` does, after the test


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
