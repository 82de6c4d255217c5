"""The run in the reports (docs/contract.md section 3, "The run in the reports"): the `release`
object that the plugin adds to pytest-json-report's report, and the `<testsuite>` properties of
the JUnit XML, both plain data made from a finished `Run` in any mode.
"""

from __future__ import annotations

from typing import Any

from publisher.printable import printable
from publisher.release.outcome import Outcome
from publisher.release.run import AuthorRun, FinalizeRun, ReleaseRun, Run, ShardRun

VERDICT_WORDS = ("successful", "partial", "failed", "nothing-to-deliver", "valid", "invalid")


def run_mode(run: Run) -> str:
    """`author`, `release`, `dry-run`, `shard` or `finalize`."""
    if isinstance(run, FinalizeRun):
        return "finalize"
    if isinstance(run, ShardRun):
        return "shard"
    if isinstance(run, ReleaseRun):
        return "dry-run" if run.opts.dry_run else "release"
    return "author"


def run_record(run: Run) -> dict[str, Any]:
    """The JSON report's `release` object of a run that has ended (`Run.end`)."""
    record: dict[str, Any] = {
        "mode": run_mode(run),
        "verdict": None,
        "release_sha": None,
        "baseline_before": None,
        "baseline_after": None,
        "hub_url": None,
        "counts": {},
        "versions": [],
    }
    if isinstance(run, ReleaseRun):
        record["hub_url"] = printable(run.hub_url, 2000) if run.hub_url else None
        record["baseline_before"] = run.recorded_baseline
        record["baseline_after"] = run.baseline_after
        if run.plan is not None:
            record["release_sha"] = run.plan.release_sha
        if run.report is not None:
            record["verdict"] = run.report.verdict_word()
            record["versions"] = [_printable_entry(v) for v in run.report.versions()]
    elif isinstance(run, AuthorRun):
        outcomes = sorted(run.outcomes.values(), key=lambda o: o.folder)
        record["verdict"] = "valid" if all(o.passed for o in outcomes) else "invalid"
        record["versions"] = [
            _printable_entry(
                {
                    "name": o.name,
                    "version": o.version,
                    "outcome": str(o.outcome),
                    "reason": o.reason,
                    "digest": o.digest,
                }
            )
            for o in outcomes
        ]
    counts = dict.fromkeys((str(word) for word in Outcome), 0)
    for entry in record["versions"]:
        counts[entry["outcome"]] = counts.get(entry["outcome"], 0) + 1
    record["counts"] = counts
    return record


def _printable_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """Names and versions come from folder names, reasons from the hub: shown as text."""
    return {
        key: printable(value, 2000) if isinstance(value, str) else value
        for key, value in entry.items()
    }


def suite_properties(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The JUnit `<testsuite>` properties: `mode`, `verdict`, and each outcome word's count."""
    props = [("mode", str(record["mode"])), ("verdict", str(record["verdict"] or ""))]
    props.extend((word, str(count)) for word, count in record["counts"].items())
    return props
