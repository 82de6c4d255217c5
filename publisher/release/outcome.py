"""What happened to a policy version in a run: the outcome words (`Outcome`), as reports, the
summary table, fragments and `delivered.json` spell them, and the one record of a version's run
(`ItemOutcome`) that reports, fragments and the controller share, with one serialisation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from policy_checks import Finding
from publisher.printable import printable
from publisher.state.folder import DeliveryRecord


class Outcome(StrEnum):
    VALID = "valid"  # author mode: the checks pass
    INVALID = "invalid"  # a check failed; nothing sent
    PUBLISHED = "published"  # the hub created it in this run
    ALREADY_IN_HUB = "already-in-hub"  # the hub already held it (GET 200 or POST 409)
    PUBLISH_FAILED = "publish-failed"  # the hub did not take it
    NOT_ATTEMPTED = "not-attempted"  # not sent: the token was refused, or the hub is down
    WOULD_PUBLISH = "would-publish"  # --dry-run: new in the hub and valid
    NOT_RUN = "not-run"  # in the plan, but no item ran (deselected, interrupted, shard missing)
    # Dropped by the early filter (docs/contract.md section 3, step 3): no item, reports only.
    DELIVERED_BEFORE = "delivered-before"  # delivered.json holds it with this content
    CHANGED_AFTER_DELIVERY = "changed-after-delivery"  # holds it with other content: fails

    @property
    def delivered(self) -> bool:
        return self in DELIVERED

    @property
    def passed(self) -> bool:
        return (
            self in (Outcome.VALID, Outcome.WOULD_PUBLISH, Outcome.DELIVERED_BEFORE)
            or self.delivered
        )


def first_problem(findings: list[Finding]) -> str:
    """A failing version's `reason` in every report: its first problem as text (file, line,
    rule, message), never only a count; the others are in the failure report."""
    return printable(findings[0].render(), REASON_LIMIT) if findings else ""


REASON_LIMIT = 500  # characters of a reason in a report; the failure report has every problem

# What `delivered.json` may record.
DELIVERED = frozenset({Outcome.PUBLISHED, Outcome.ALREADY_IN_HUB})


@dataclass
class ItemOutcome:
    """The result of one policy version in one run; plain data for reports and the controller."""

    folder: str
    name: str
    version: str
    outcome: str
    reason: str = ""
    digest: str | None = None
    hub_digest: str | None = None  # set when the hub holds different content for this version
    get_status: int | None = None
    post_status: int | None = None
    findings: list[Finding] = field(default_factory=list)
    delivery: DeliveryRecord | None = None
    tests: str | None = None  # "passed/total" cases of the version's tests.yaml, when it ran

    @property
    def passed(self) -> bool:
        return Outcome(self.outcome).passed

    @property
    def hub_differs(self) -> bool:
        return self.hub_digest is not None

    def properties(self) -> list[tuple[str, Any]]:
        """The JUnit properties / JSON report metadata of this item."""
        props: list[tuple[str, Any]] = [
            ("policy", self.name),
            ("version", self.version),
            ("outcome", str(self.outcome)),  # plain str: xdist cannot ship an enum
        ]
        if self.digest:  # absent when unknown (files that do not parse), never ""
            props.append(("digest", self.digest))
        if self.reason:
            props.append(("reason", self.reason))
        if self.get_status is not None:
            props.append(("hub_get_status", self.get_status))
        if self.post_status is not None:
            props.append(("hub_post_status", self.post_status))
        if self.hub_digest:
            props.append(("hub_digest", self.hub_digest))
        if self.tests:
            props.append(("tests", self.tests))
        return props

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-like data (what crosses the xdist channel on a test report, and a fragment's
        outcome entry): every field, by `dataclasses.asdict`, so none can be left out. The
        outcome words become plain `str` (execnet cannot ship an enum)."""
        data = asdict(self)
        data["outcome"] = str(self.outcome)
        if self.delivery is not None:
            data["delivery"]["outcome"] = str(self.delivery.outcome)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ItemOutcome:
        """The inverse of `to_json`; a field the data lacks takes its default, and a key this
        version does not know is left out."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["findings"] = [Finding(**f) for f in values.get("findings") or ()]
        if values.get("delivery"):
            values["delivery"] = DeliveryRecord(**values["delivery"])
        return cls(**values)

    def without_delivery(self) -> dict[str, Any]:
        """`to_json` less the delivery record, which a fragment keeps as delivered.json does."""
        data = self.to_json()
        del data["delivery"]
        return data

    def failure_text(self) -> str:
        """The item's failure report. Its first line is all that pytest's short summary
        (`FAILED <id> - <first line>`) shows, cut to the terminal's width, so it carries the
        first problem, not only the count; the other problems follow, one a line."""
        head = f"{self.name}@{self.version}: {self.outcome}"
        if not self.findings:
            return head + (f" – {self.reason}" if self.reason else "")
        first, *rest = self.findings
        lines = [f"{head} – {len(self.findings)} problem(s): {first.render()}"]
        lines.extend(f"  {f.render()}" for f in rest)
        return "\n".join(lines)
