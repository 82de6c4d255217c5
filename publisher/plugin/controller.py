"""`Controller`: the xdist controller's hooks, or the only process's without xdist. It holds the
`Run` that `publisher.release.run.build_run` chose (author, release, shard or finalize), hands it
each item's outcome from the reports, lets it end the run, turns what the end means into pytest's
exit status, and puts the whole run into the reports that pytest writes at the session's end
(the JSON report's `release` object, the JUnit `<testsuite>` properties: `release/record.py`).
It never runs an item itself (`worker.py` does, here and on every worker), and decides nothing of
the release: the run does.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
from _pytest.junitxml import xml_key

from publisher.plugin.worker import REPORT_ATTR
from publisher.release.outcome import ItemOutcome
from publisher.release.record import run_record, suite_properties
from publisher.release.run import Run

CONTROLLER_PLUGIN = "policyhub-controller"


class Controller:
    """Registered as a plugin object on the controller only."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.record: dict[str, Any] | None = None  # the JSON report's `release` object

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, REPORT_ATTR, None)
        if data is not None:
            self.run.take(ItemOutcome.from_json(data))

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(
        self, session: pytest.Session, exitstatus: int
    ) -> Generator[None, None, None]:
        # Around every other plugin's: the run ends and the exit status is final before
        # pytest-json-report and junitxml write their files, so both carry it.
        end = self.run.end()
        if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and end.nothing_to_do:
            session.exitstatus = pytest.ExitCode.OK
        # After the "nothing collected" rule: a --finalize run collects nothing by design, and
        # its failures are the shards' versions that no fragment reports as delivered.
        if end.failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        record = self.record = run_record(self.run)
        xml = session.config.stash.get(xml_key, None)
        if xml is not None:
            for name, value in suite_properties(record):
                xml.add_global_property(name, value)
        return (yield)

    @pytest.hookimpl(optionalhook=True)
    def pytest_json_modifyreport(self, json_report: dict[str, Any]) -> None:
        if self.record is not None:
            json_report["release"] = self.record

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.run.close()
