"""Fixtures shared by the project's own tests: real Policy Hub processes (tests/hubprocess.py)
and pytester for black-box runs of the harness.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.hubprocess import HubProcess

pytest_plugins = ["pytester"]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    """A fresh hub process with an empty database, stopped after the test."""
    with HubProcess(tmp_path / "hub") as process:
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
