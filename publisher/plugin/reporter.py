"""`Reporter`: what a person and a dashboard see of a run, on the controller: the outcome words
of progress lines (`P`, `A`, `W`, `F`), the release summary in the terminal, the GitHub step
summary (Markdown) and `::error` annotations. The texts themselves are
`publisher/release/summary.py`'s.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Protocol

import pytest

from publisher.plugin.worker import REPORT_ATTR
from publisher.release.outcome import ItemOutcome, Outcome
from publisher.release.summary import (
    ReleasePreview,
    ReleaseReport,
    render_markdown,
    render_preview_markdown,
    render_preview_terminal,
    render_terminal,
    tests_summary,
    workflow_annotations,
)

REPORTER_PLUGIN = "policyhub-reporter"
LETTERS = {Outcome.PUBLISHED: "P", Outcome.ALREADY_IN_HUB: "A", Outcome.WOULD_PUBLISH: "W"}


class RunResults(Protocol):
    """What the reporter reads of the controller."""

    @property
    def report(self) -> ReleaseReport | None: ...

    @property
    def outcomes(self) -> Mapping[str, ItemOutcome]: ...

    @property
    def preview(self) -> ReleasePreview | None: ...


class Reporter:
    def __init__(self, results: RunResults, annotate: bool) -> None:
        self._results = results
        # Author mode annotates too (pull-request checks); a --finalize run does not repeat
        # what its shards already annotated.
        self._annotate = annotate

    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        """Outcome words in progress lines: PUBLISHED, ALREADY-IN-HUB, INVALID, ..."""
        data = getattr(report, REPORT_ATTR, None)
        if data is None or report.when != "call":
            return None
        tests = f" (tests {data['tests']})" if data.get("tests") else ""
        if data["outcome"] == Outcome.VALID:
            return ("passed", ".", ("PASSED" + tests, {"green": True})) if tests else None
        if report.passed:
            letter = LETTERS.get(data["outcome"], ".")
            return "passed", letter, (data["outcome"].upper() + tests, {"green": True})
        return "failed", "F", (data["outcome"].upper() + tests, {"red": True})

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        report, preview = self._results.report, self._results.preview
        if report is None and self._results.outcomes:
            lines = tests_summary(self._results.outcomes.values())
            if lines:
                terminalreporter.section("policy tests")
                for line in lines:
                    terminalreporter.write_line(line)
        if report is not None:
            terminalreporter.section("policy hub release")
            for line in render_terminal(report):
                terminalreporter.write_line(line)
            _step_summary(render_markdown(report))
        if preview is not None:
            terminalreporter.section("policy release preview")
            for line in render_preview_terminal(preview):
                terminalreporter.write_line(line)
            _step_summary(render_preview_markdown(preview))
        if os.environ.get("GITHUB_ACTIONS") and self._annotate:
            for line in workflow_annotations(self._results.outcomes.values(), report):
                terminalreporter.write_line(line)


def _step_summary(markdown: str) -> None:
    """Append to the GitHub step summary, when this runs in GitHub Actions."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(markdown)
