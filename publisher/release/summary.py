"""The release summary: one verdict, a table of outcomes, the GitHub step summary (Markdown) and
`::error` annotations. Pure functions from outcomes to text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from policy_checks.diff import describe
from publisher.printable import printable
from publisher.release.baseline import BaselineDecision
from publisher.release.changes import VersionChanges
from publisher.release.outcome import ItemOutcome, Outcome
from publisher.release.plan import ReleasePlan
from publisher.repo.layout import folder_identity
from publisher.state.folder import DeliveredIndex

NOT_RUN_REASON = "not run in this session (deselected, interrupted or crashed)"


@dataclass
class ReleaseReport:
    plan: ReleasePlan
    outcomes: dict[str, ItemOutcome]  # by folder
    dry_run: bool = False
    baseline: BaselineDecision | None = None  # None: nothing was written (dry run, failure)
    state_written: bool = False  # delivered.json was rewritten
    notes: list[str] = field(default_factory=list)
    shard: str | None = None  # "K/N" for a --shard run, which writes a fragment, not the state
    fragment: str | None = None  # where that fragment was written
    not_run_reason: str = NOT_RUN_REASON

    def rows(self) -> list[tuple[str, str, str, str]]:
        """The table: each version to deliver, then each version changed after delivery
        (which fails the release without an item)."""
        rows: list[tuple[str, str, str, str]] = []
        for folder in self.plan.to_deliver:
            out = self.outcomes.get(folder)
            name, version = folder_identity(folder)
            if out is None:
                rows.append((name, version, str(Outcome.NOT_RUN), self.not_run_reason))
            else:
                rows.append((out.name, out.version, out.outcome, out.reason))
        for changed in self.plan.changed_after_delivery:
            rows.append(
                (
                    changed.name,
                    changed.version,
                    str(Outcome.CHANGED_AFTER_DELIVERY),
                    changed.reason(),
                )
            )
        return rows

    @property
    def total(self) -> int:
        """The versions the verdict is about: those to deliver and those changed after
        delivery (which count as failed)."""
        return len(self.plan.to_deliver) + len(self.plan.changed_after_delivery)

    def verdict_word(self) -> str:
        """The verdict as the reports spell it (docs/contract.md section 3, "The run in the
        reports"): `successful`, `partial`, `failed` or `nothing-to-deliver`; a dry run's is
        what the release would be, counting `would-publish` as delivered."""
        total, failed, not_run = self.total, self.failed, self.not_run
        if total == 0:
            return "nothing-to-deliver"
        if failed == 0 and not_run == 0:
            return "successful"
        if failed == total:
            return "failed"
        return "partial"

    def versions(self) -> list[dict[str, str | None]]:
        """Every version of the change set (a shard: of its share) with its outcome, those
        the early filter dropped included (`delivered-before`, `changed-after-delivery`)."""
        plan = self.plan
        changed = {c.folder: c for c in plan.changed_after_delivery}
        to_deliver = set(plan.to_deliver)
        scope = sorted(to_deliver | set(changed)) if self.shard else plan.change_set
        entries: list[dict[str, str | None]] = []
        for folder in scope:
            name, version = folder_identity(folder)
            entry: dict[str, str | None] = {"name": name, "version": version}
            out = self.outcomes.get(folder)
            if folder in to_deliver and out is not None:
                entry.update(outcome=out.outcome, reason=out.reason, digest=out.digest)
                if out.hub_digest:
                    entry["hub_digest"] = out.hub_digest
            elif folder in to_deliver:
                entry.update(outcome=Outcome.NOT_RUN, reason=self.not_run_reason, digest=None)
            elif folder in changed:
                c = changed[folder]
                entry.update(
                    outcome=Outcome.CHANGED_AFTER_DELIVERY,
                    reason=c.reason(),
                    digest=c.digest,
                    delivered_digest=c.delivered_digest,
                )
            else:
                entry.update(
                    outcome=Outcome.DELIVERED_BEFORE,
                    reason="already in delivered.json with this content: dropped before the run",
                    digest=plan.dropped_digests.get(folder),
                )
            entry["outcome"] = str(entry["outcome"])
            entries.append(entry)
        return entries

    @property
    def failed(self) -> int:
        """Versions that ran and were not delivered (not those that did not run; in a dry run,
        not those that would be published)."""
        return sum(
            1
            for _, _, outcome, _ in self.rows()
            if not Outcome(outcome).passed and outcome != Outcome.NOT_RUN
        )

    @property
    def not_run(self) -> int:
        return sum(1 for _, _, outcome, _ in self.rows() if outcome == Outcome.NOT_RUN)

    def verdict(self) -> str:
        # A shard's verdict is about its share only: say so before the contract's words.
        prefix = f"Shard {self.shard}: " if self.shard else ""
        return prefix + self.contract_verdict()

    def contract_verdict(self) -> str:
        total = self.total
        if self.dry_run:
            count = len(self.plan.to_deliver)
            return (
                f"Dry run – {count} policies would be checked against the hub and published if new"
            )
        if total == 0:
            return "Release successful – nothing to deliver"
        failed, not_run = self.failed, self.not_run
        if failed == 0 and not_run == 0:
            if total == 1:
                return "Release successful – the 1 policy delivered"
            return f"Release successful – all {total} policies delivered"
        if failed == total:
            if total == 1:
                return "Release failed – the 1 policy was not delivered"
            return "Release failed – no policies delivered"
        # A subset run (-k, --deselect, -x) counts what it did not run apart, never as failed.
        tail = f", {not_run} not run" if not_run else ""
        return f"Partial success – {failed} of {total} failed{tail}"

    def facts(self) -> list[str]:
        plan = self.plan
        lines = [
            f"release {plan.release_sha[:12]}, baseline "
            + (plan.baseline_sha[:12] if plan.baseline_sha else "none (from the root commit)"),
            f"{len(plan.change_set)} changed version(s), {len(plan.already_delivered)} already "
            f"delivered (dropped before the run), {len(plan.to_deliver)} to deliver",
        ]
        for c in plan.changed_after_delivery:
            lines.append(
                f"CHANGED AFTER DELIVERY: {c.reason().removeprefix('changed after delivery: ')}"
            )
        for folder in plan.deleted:
            lines.append(f"deleted: {folder} (never unpublished from the hub)")
        for out in self.outcomes.values():
            if out.hub_differs:
                lines.append(f"HUB HOLDS DIFFERENT CONTENT: {out.name}@{out.version}: {out.reason}")
        if self.dry_run:
            pass
        elif self.shard:
            lines.append(
                f"fragment written to {self.fragment}; delivered.json and the baseline are left "
                "to `pytest --release --finalize`"
                if self.fragment
                else "NO FRAGMENT WRITTEN: the finalize run will count this shard as missing"
            )
        elif self.baseline is not None:
            lines.append(self.baseline.why)
        else:
            lines.append("baseline kept: the next release retries everything not yet delivered")
        lines.extend(self.notes)
        return lines


def render_terminal(report: ReleaseReport) -> list[str]:
    rows = report.rows()
    lines = [report.verdict(), *report.facts()]
    if rows:
        headers = ("policy", "version", "outcome", "reason")
        widths = [max(len(headers[i]), *(len(r[i]) for r in rows)) for i in range(3)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
        lines.append(fmt.format(*headers))
        lines.extend(fmt.format(*(printable(cell, 500) for cell in row)) for row in rows)
    return lines


def render_markdown(report: ReleaseReport) -> str:
    verdict = report.contract_verdict()
    icon = (
        "✅"
        if verdict.startswith("Release successful")
        else ("❌" if verdict.startswith("Release failed") else "⚠️")
    )
    parts = [f"## {icon} {report.verdict()}", ""]
    parts.extend(f"- {line}" for line in report.facts())
    rows = report.rows()
    if rows:
        parts += ["", "| policy | version | outcome | reason |", "|---|---|---|---|"]
        parts.extend("| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows)
    failing = [o for o in report.outcomes.values() if not o.passed and o.findings]
    if failing:
        parts += ["", "### Problems", ""]
        for out in sorted(failing, key=lambda o: o.folder):
            parts.append(f"- **{_cell(out.name)}@{_cell(out.version)}**")
            parts.extend(f"  - {_cell(f.render())}" for f in out.findings)
    return "\n".join(parts) + "\n"


def _cell(text: str) -> str:
    return printable(text, 500).replace("|", "\\|")


@dataclass
class ReleasePreview:
    """What the next release will do with the versions a pull request changes (`pytest
    --changed-since REF`), offline: publish, skip as already delivered, fail as edited in
    place, or fail as invalid (with each problem)."""

    publish: list[ItemOutcome] = field(default_factory=list)
    delivered: list[ItemOutcome] = field(default_factory=list)
    edited: list[ItemOutcome] = field(default_factory=list)
    invalid: list[ItemOutcome] = field(default_factory=list)
    # By folder, for the versions to publish: what each changes against the delivered version
    # of its policy (changes.py), when the run compared them.
    changes: dict[str, VersionChanges] = field(default_factory=dict)

    @classmethod
    def of(cls, outcomes: Iterable[ItemOutcome], delivered: DeliveredIndex) -> ReleasePreview:
        preview = cls()
        for out in sorted(outcomes, key=lambda o: o.folder):
            if any(f.rule == "immutable" for f in out.findings):
                preview.edited.append(out)
            elif not out.passed:
                preview.invalid.append(out)
            elif (out.name, out.version) in delivered:
                preview.delivered.append(out)
            else:
                preview.publish.append(out)
        return preview

    def sections(self) -> list[tuple[str, list[ItemOutcome]]]:
        return [
            ("will be published by the next release", self.publish),
            ("already delivered (the release skips them)", self.delivered),
            (
                "edited after delivery (the release fails on them, never republishing them)",
                self.edited,
            ),
            ("invalid (the release would fail them)", self.invalid),
        ]

    def headline(self) -> str:
        counts = ", ".join(
            f"{len(items)} {title.split(' (')[0]}" for title, items in self.sections()
        )
        return f"Release preview – {counts}"


def _tests_note(out: ItemOutcome) -> str:
    return f" (tests {out.tests})" if out.tests else " (no tests)"


def tests_summary(outcomes: Iterable[ItemOutcome], limit: int = 20) -> list[str]:
    """Author mode's closing lines about tests.yaml (docs/contract.md section 8): how many versions
    have tests, how many cases passed, and which versions have none."""
    versions = [o for o in sorted(outcomes, key=lambda o: o.folder) if o.version]
    if not versions:
        return []
    tested = [o for o in versions if o.tests]
    passed = total = 0
    for out in tested:
        done, _, of = (out.tests or "0/0").partition("/")
        passed, total = passed + int(done), total + int(of)
    if tested:
        lines = [f"{len(tested)} of {len(versions)} version(s) have tests: "]
        lines[0] += f"{passed} of {total} case(s) passed"
    else:
        lines = [f"none of the {len(versions)} version(s) has tests (tests.yaml)"]
    untested = [o for o in versions if not o.tests]
    if untested:
        named = ", ".join(f"{o.name}@{o.version}" for o in untested[:limit])
        more = f" and {len(untested) - limit} more" if len(untested) > limit else ""
        lines.append(f"without tests: {printable(named, 2000)}{more}")
    return lines


# A version's changes in the preview: at most this many lines, then how many more.
CHANGE_LINES = 8
CHANGE_VALUE_LIMIT = 80


def change_lines(
    changes: VersionChanges | None, name: Any = None, value: Any = None
) -> tuple[str, list[str]]:
    """(the heading, the lines) of what a new version changes against its delivered one,
    `name` and `value` formatting ids and values for where they go (policy_checks.diff)."""
    if changes is None:
        return "", []
    if changes.against is None:
        return "first version of this policy", []
    heading = f"changes since {changes.against} (delivered)"
    if changes.diff is None:
        return heading, [changes.problem or "cannot be compared"]
    kwargs = {k: f for k, f in (("name", name), ("value", value)) if f is not None}
    lines = describe(changes.diff, CHANGE_VALUE_LIMIT, **kwargs)
    if len(lines) > CHANGE_LINES:
        more = len(lines) - CHANGE_LINES + 1
        lines = [*lines[: CHANGE_LINES - 1], f"and {more} more change(s)"]
    return heading, lines


def render_preview_terminal(preview: ReleasePreview) -> list[str]:
    lines = [preview.headline()]
    for title, items in preview.sections():
        if not items:
            continue
        lines.append(f"{title}:")
        with_problems = items is preview.invalid or items is preview.edited
        for out in items:
            lines.append(f"  {out.name}@{out.version}{_tests_note(out)}")
            if with_problems:
                lines.extend(f"    {printable(f.render(), 500)}" for f in out.findings)
            elif items is preview.publish:
                heading, changed = change_lines(preview.changes.get(out.folder))
                if heading:
                    lines.append(f"    {printable(heading)}")
                lines.extend(f"      - {printable(line, 300)}" for line in changed)
    return lines


# Markdown that a value could otherwise start: emphasis, links, images, HTML, tables, headings.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&-])")


def markdown_text(text: str, limit: int = 300) -> str:
    """Outside text as literal Markdown inline text: printable, then every character that
    Markdown or HTML would read escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", printable(text, limit))


def markdown_code(text: str) -> str:
    """An id as inline code, or as escaped text when it holds a backtick."""
    shown = printable(text, 100)
    return f"`{shown}`" if "`" not in shown else markdown_text(shown)


def _preview_changes_markdown(preview: ReleasePreview) -> list[str]:
    parts: list[str] = []
    for out in preview.publish:
        heading, changed = change_lines(
            preview.changes.get(out.folder), markdown_code, markdown_text
        )
        if not heading:
            continue
        parts.append(f"- **{_cell(out.name)}@{_cell(out.version)}**: {markdown_text(heading)}")
        parts.extend(f"  - {line}" for line in changed)
    return ["#### What changes", "", *parts, ""] if parts else []


def render_preview_markdown(preview: ReleasePreview) -> str:
    parts = [f"## 🔎 {preview.headline()}", ""]
    for title, items in preview.sections():
        if not items:
            continue
        parts += [f"### {title[0].upper()}{title[1:]}", ""]
        if items is preview.publish or items is preview.delivered:
            parts += ["| policy | version | digest | tests |", "|---|---|---|---|"]
            parts.extend(
                f"| {_cell(o.name)} | {_cell(o.version)} | `{o.digest or ''}` | "
                f"{o.tests or 'none'} |"
                for o in items
            )
            if items is preview.publish:
                parts += ["", *_preview_changes_markdown(preview)]
        else:
            parts += ["| policy | version | problem |", "|---|---|---|"]
            for out in items:
                for finding in out.findings or []:
                    parts.append(
                        f"| {_cell(out.name)} | {_cell(out.version)} | {_cell(finding.render())} |"
                    )
        parts.append("")
    return "\n".join(parts) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_annotations(
    outcomes: Iterable[ItemOutcome], report: ReleaseReport | None = None
) -> list[str]:
    """GitHub workflow commands: one `::error` per finding or failure, with file and line, and
    one per version of the release changed after delivery (it has no item)."""
    lines = []
    for c in report.plan.changed_after_delivery if report is not None else ():
        where = f"file={_escape_property(c.folder + '/metadata.json')}"
        title = _escape_property(f"{c.name}@{c.version}")
        lines.append(f"::error {where},title={title}::{_escape_data(printable(c.reason(), 2000))}")
    for out in outcomes:
        if out.passed:
            continue
        title = _escape_property(f"{out.name}@{out.version}")
        if out.findings:
            for f in out.findings:
                where = f"file={_escape_property(f.file)}" + (f",line={f.line}" if f.line else "")
                lines.append(f"::error {where},title={title}::{_escape_data(f.render())}")
        else:
            where = f"file={_escape_property(out.folder + '/metadata.json')}"
            message = f"{out.name}@{out.version}: {out.outcome}: {out.reason}"
            lines.append(f"::error {where},title={title}::{_escape_data(message)}")
    return lines
