"""`Controller`: the xdist controller's hooks, or the only process's without xdist. It holds the
`Run` that `publisher.release.run.build_run` chose (author, release, shard or finalize), hands it
each item's outcome from the reports, lets it end the run, and turns what the end means into
pytest's exit status. It never runs an item itself (`worker.py` does, here and on every worker),
and decides nothing of the release: the run does.
"""

from __future__ import annotations

import pytest

from publisher.plugin.worker import REPORT_ATTR
from publisher.release.outcome import ItemOutcome
from publisher.release.run import Run

CONTROLLER_PLUGIN = "policyhub-controller"


class Controller:
    """Registered as a plugin object on the controller only."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, REPORT_ATTR, None)
        if data is not None:
            self.run.take(ItemOutcome.from_json(data))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        end = self.run.end()
        if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and end.nothing_to_do:
            session.exitstatus = pytest.ExitCode.OK
        # After the "nothing collected" rule: a --finalize run collects nothing by design, and
        # its failures are the shards' versions that no fragment reports as delivered.
        if end.failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.run.close()
