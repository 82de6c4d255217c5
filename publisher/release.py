"""The release engine without pytest: the plan (baseline, change set, early filter), the delivery
of one policy version (hub check → validate → publish) and its `ItemOutcome`, the author-mode
immutability guard, and the run's shared outage file (`HubOutage`). Hub checks sent before their
item runs live in `publisher/hubchecks.py`.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from policy_checks import (
    NAME_RE,
    SEMVER_RE,
    CheckResult,
    Finding,
    content_digest,
    looks_like_version,
    publish_body,
)
from publisher import gitrepo
from publisher.hubclient import HubAnswer, HubClient, describe_body, hub_record
from publisher.layout import CommitSource, folder_identity
from publisher.outcome import Outcome
from publisher.state import DeliveredIndex, DeliveryRecord


@dataclass
class ChangedAfterDelivery:
    folder: str
    name: str
    version: str
    delivered_at: str  # when and in which release the recorded content was delivered
    release_sha: str


@dataclass
class ReleasePlan:
    """What one release run will do; plain data so it can travel to xdist workers as JSON."""

    release_sha: str
    baseline_sha: str | None
    baseline_warning: str | None
    change_set: list[str]  # version folders changed since the baseline that exist at the release
    to_deliver: list[str]  # the change set less what delivered.json already holds
    already_delivered: list[str]
    changed_after_delivery: list[ChangedAfterDelivery] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    # Folders refused before any request: a symlink in or at them, or a file named like one.
    refused: list[str] = field(default_factory=list)

    def sendable(self, folder: str) -> bool:
        """Whether a request may name this folder's version: well formed, and no link in it."""
        return well_formed(*folder_identity(folder)) and folder not in self.refused

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReleasePlan:
        data = dict(data)
        data["changed_after_delivery"] = [
            ChangedAfterDelivery(**c) for c in data.get("changed_after_delivery", [])
        ]
        return cls(**data)

    def versions(self) -> list[tuple[str, str]]:
        return [folder_identity(f) for f in self.change_set]


def make_plan(
    repo: Path,
    release_sha: str,
    baseline_text: str | None,
    baseline_sha: str | None,
    delivered: DeliveredIndex,
) -> ReleasePlan:
    """Baseline → change set → early filter (CONTRACT.md section 3, steps 1-3)."""
    gitrepo.check_not_shallow(repo)
    baseline = gitrepo.resolve_baseline(repo, baseline_sha, baseline_text, release_sha)
    changed = gitrepo.changed_paths(repo, baseline.diff_from, release_sha)
    touched = gitrepo.version_folders_of(changed)
    loose = gitrepo.loose_entries_of(changed)
    source = CommitSource(repo, release_sha, touched + loose)
    existing = source.tree.version_folders()
    # A link anywhere outside a version folder, or a file named like a version where one would
    # be (`policies/<name>/v2.0.0`), is a folder of its own that fails.
    loose_folders = [
        p
        for p in loose
        if p in source.tree.entries
        and (
            source.tree.is_link(p)
            or (p.count("/") <= 2 and looks_like_version(PurePosixPath(p).name))
        )
    ]
    change_set = sorted([f for f in touched if f in existing] + loose_folders)
    deleted = [f for f in touched if f not in existing]
    to_deliver: list[str] = []
    dropped: list[str] = []
    for folder in change_set:
        (dropped if folder_identity(folder) in delivered else to_deliver).append(folder)
    changed_after: list[ChangedAfterDelivery] = []
    source.prefetch(dropped)
    for folder in dropped:
        name, version = folder_identity(folder)
        record = delivered.get(name, version)
        assert record is not None
        if not record.holds(content_digest(source.read(folder))):
            changed_after.append(
                ChangedAfterDelivery(folder, name, version, record.delivered_at, record.release_sha)
            )
    return ReleasePlan(
        release_sha=release_sha,
        baseline_sha=baseline.sha,
        baseline_warning=baseline.warning,
        change_set=change_set,
        to_deliver=to_deliver,
        already_delivered=dropped,
        changed_after_delivery=changed_after,
        deleted=deleted,
        refused=[f for f in change_set if source.tree.links_in(f) or f in source.tree.entries],
    )


def plan_is_complete(plan: ReleasePlan, delivered: DeliveredIndex) -> bool:
    """The baseline invariant: every version of the change set is in delivered.json."""
    return all(key in delivered for key in plan.versions())


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
        """Plain JSON-like data: what crosses the xdist channel on a test report."""
        return {
            "folder": self.folder,
            "name": self.name,
            "version": self.version,
            "outcome": str(self.outcome),
            "reason": self.reason,
            "digest": self.digest,
            "hub_digest": self.hub_digest,
            "get_status": self.get_status,
            "post_status": self.post_status,
            "findings": [asdict(f) for f in self.findings],
            "delivery": self.delivery.to_json() if self.delivery else None,
            "tests": self.tests,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ItemOutcome:
        delivery = data.get("delivery")
        return cls(
            folder=data["folder"],
            name=data["name"],
            version=data["version"],
            outcome=data["outcome"],
            reason=data["reason"],
            digest=data["digest"],
            hub_digest=data["hub_digest"],
            get_status=data["get_status"],
            post_status=data["post_status"],
            findings=[Finding(**f) for f in data["findings"]],
            delivery=(
                DeliveryRecord.from_json(data["name"], data["version"], delivery)
                if delivery
                else None
            ),
            tests=data.get("tests"),
        )

    def failure_text(self) -> str:
        """The item's failure report. Its first line is all that pytest's short summary
        (`FAILED <id> - <first line>`) shows, cut to the terminal's width, so it carries the
        first problem, not only the count; the other problems follow, one a line."""
        head = f"{self.name}@{self.version}: {self.outcome}"
        head += f" – {self.reason}" if self.reason else ""
        if not self.findings:
            return head
        first, *rest = self.findings
        lines = [f"{head}: {first.render()}"]
        lines.extend(f"  {f.render()}" for f in rest)
        return "\n".join(lines)


def check_only(result: CheckResult, delivered: DeliveryRecord | None = None) -> ItemOutcome:
    """Author mode: the checks, and the immutability guard (CONTRACT section 2): a version that
    `delivered` records with other content is a failure, offline, before any release."""
    findings = list(result.findings)
    changed = edited_after_delivery(result.digest, delivered)
    if changed is not None:
        findings.insert(0, changed)
    outcome = ItemOutcome(
        folder=result.folder,
        name=result.name,
        version=result.version,
        outcome=Outcome.VALID if not findings else Outcome.INVALID,
        digest=result.digest,
        findings=findings,
        tests=result.tests,
    )
    if findings:
        outcome.reason = "changed after delivery" if changed else f"{len(findings)} problem(s)"
    return outcome


def edited_after_delivery(digest: str | None, record: DeliveryRecord | None) -> Finding | None:
    """The finding for a delivered version whose files now have another digest, or None.

    Formatting never changes a digest, and a version whose hub content differs (`hub_digest`)
    matches either digest, so only a real edit of the content is flagged."""
    if record is None or digest is None or record.holds(digest):
        return None
    folder = f"policies/{record.name}/v{record.version}"
    successor = next_version(record.version)
    return Finding(
        folder,
        f"{record.name}@{record.version} was delivered on {record.delivered_at} (release "
        f"{record.release_sha[:12]}) and its content has changed since; published versions are "
        "immutable, so a release would not republish it",
        hint=(
            f"undo the edit (git checkout -- {folder}) and put the change in a new version "
            f"folder, e.g. policies/{record.name}/v{successor}/"
        ),
        rule="immutable",
    )


def next_version(version: str) -> str:
    """The next patch version (`1.2.3` -> `1.2.4`; `2.0.0-rc.1` -> `2.0.0-rc.2`)."""
    core, dash, pre = version.partition("-")
    pre = pre.split("+", 1)[0]
    if dash and pre:
        head, _, last = pre.rpartition(".")
        if last.isdigit():
            return f"{core}-{head + '.' if head else ''}{int(last) + 1}"
        return core
    major, minor, patch = [*core.split("+", 1)[0].split("."), "0", "0", "0"][:3]
    return f"{major}.{minor}.{int(patch) + 1 if patch.isdigit() else patch}"


def well_formed(name: str, version: str) -> bool:
    """Only a well-formed name and version may ever reach a URL path (fullmatch: `$` in a
    `match` would let a trailing newline through)."""
    return bool(NAME_RE.fullmatch(name) and SEMVER_RE.fullmatch(version))


# Findings that make a folder unusable before any request: it is not sent, not even looked up.
STRUCTURAL_RULES = frozenset({"symlink", "layout"})


class HubOutage:
    """Whether this run already found the hub unreachable, shared by every process of the run
    through one file (the controller names it in `workerinput`): once one item saw no answer
    after all its tries, every later item is not attempted, so a dead hub costs one request
    deadline per process, not one per version."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def known(self) -> str | None:
        try:
            return self.path.read_text(encoding="utf-8") or "the hub did not answer"
        except OSError:
            return None

    def mark(self, why: str) -> None:
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(why, encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass  # at worst the next item finds out for itself


def unreachable_reason(hub_url: str, answer: HubAnswer) -> str:
    return f"the hub at {hub_url} did not answer: {answer.describe}"


def idempotency_key(release_sha: str, name: str, version: str) -> str:
    return f"{release_sha}:{name}@{version}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _auth_reason(answer: HubAnswer) -> str:
    return (
        f"the hub refused the token (HTTP {answer.status}): check POLICY_HUB_TOKEN "
        "and that it has write access"
    )


def deliver_version(
    result: CheckResult,
    client: HubClient,
    release_sha: str,
    auth_problem: str | None = None,
    *,
    dry_run: bool = False,
    hub_check: HubAnswer | Future[HubAnswer] | None = None,
    outage: HubOutage | None = None,
) -> ItemOutcome:
    """One version through the hub check, validation and publishing (CONTRACT.md section 3.4).

    `hub_check` is the GET already sent for this version (`hubchecks.HubCheckBoard`), or
    started (`HubCheckPrefetch`); its answer is used exactly as if the GET were sent here.
    Every answer is checked by `hub_record` before it can make the version count as delivered.
    """
    out = ItemOutcome(
        folder=result.folder,
        name=result.name,
        version=result.version,
        outcome=Outcome.INVALID,
        digest=result.digest,
        findings=list(result.findings),
        tests=result.tests,
    )
    if not well_formed(result.name, result.version) or any(
        f.rule in STRUCTURAL_RULES for f in result.findings
    ):
        out.reason = "not a valid policy folder (see the problems below); nothing sent"
        return out
    if auth_problem:
        out.outcome, out.reason = Outcome.NOT_ATTEMPTED, auth_problem
        return out
    down = outage.known() if outage else None
    if down:
        out.outcome, out.reason = Outcome.NOT_ATTEMPTED, f"not attempted: {down}"
        return out

    deadline = time.monotonic() + client.policy.item_deadline
    if isinstance(hub_check, Future):
        hub_check = hub_check.result()
    answer = hub_check or client.get_policy(result.name, result.version, deadline=deadline)
    out.get_status = answer.status
    if answer.unreachable:
        why = unreachable_reason(client.base_url, answer)
        if outage:
            outage.mark(why)
        out.outcome, out.reason = Outcome.NOT_ATTEMPTED, f"not attempted: {why}"
        return out
    check_note = ""
    if answer.status == 200:
        record = hub_record(answer.body, result.name, result.version)
        if record is not None:
            return _delivered(
                out,
                Outcome.ALREADY_IN_HUB,
                release_sha,
                record.digest,
                "already in the hub",
                dry_run,
            )
        check_note = (
            f" (the hub check answered HTTP 200 with {describe_body(answer.body)}, "
            "not a record of this version: taken as not found)"
        )
    elif answer.status != 404:
        check_note = f" (hub check: {answer.describe})"

    if not result.ok:
        out.reason = f"{len(result.findings)} problem(s); nothing sent"
        return out
    # Any other answer to the GET (401/403 included) goes on to the POST, as the contract says;
    # a token the hub refuses was already reported once, up front, by the plugin's preflight.
    if dry_run:
        out.outcome = Outcome.WOULD_PUBLISH
        out.reason = "would be published" + check_note
        return out

    key = idempotency_key(release_sha, result.name, result.version)
    assert result.digest is not None  # result.ok: both files parsed
    body = publish_body(
        result.name, result.version, result.metadata, result.definition, result.digest, release_sha
    )
    answer = client.publish(body, key, deadline=deadline)
    out.post_status = answer.status
    status = answer.status
    if answer.unreachable and outage:
        outage.mark(unreachable_reason(client.base_url, answer))
    if status is not None and 200 <= status < 300:
        record = hub_record(answer.body, result.name, result.version)
        if record is not None:
            return _delivered(
                out, Outcome.PUBLISHED, release_sha, record.digest, "published" + check_note
            )
        out.outcome = Outcome.PUBLISH_FAILED
        out.reason = (
            f"the hub answered HTTP {status} but not with its record of "
            f"{result.name}@{result.version} ({describe_body(answer.body)}); not recorded as "
            "delivered: the next release asks the hub again"
        )
        return out
    if status == 409 and isinstance(answer.body, dict) and answer.body.get("error") == "exists":
        record = hub_record(answer.body, result.name, result.version)
        if record is not None:
            return _delivered(
                out, Outcome.ALREADY_IN_HUB, release_sha, record.digest, "already in the hub (409)"
            )
    out.outcome = Outcome.PUBLISH_FAILED
    if status in (401, 403):
        out.reason = _auth_reason(answer)
    elif status is not None and 300 <= status < 400:
        out.reason = f"the hub answered a redirect (HTTP {status}); POST is never redirected"
    elif status == 409:
        out.reason = (
            f"publish failed: HTTP 409 without the hub's record of {result.name}@"
            f"{result.version} ({describe_body(answer.body)})"
        )
    else:
        out.reason = f"publish failed: {answer.describe}"
    return out


def _delivered(
    out: ItemOutcome,
    outcome: str,
    release_sha: str,
    hub_digest: str,
    reason: str,
    dry_run: bool = False,
) -> ItemOutcome:
    """Count the version as delivered. `digest` is the local files' digest (CONTRACT section 4);
    only when the local files give none (they do not parse) is the hub's recorded instead."""
    local = out.digest
    out.outcome = outcome
    out.reason = reason
    if local and hub_digest != local:
        out.hub_digest = hub_digest
        out.reason = (
            f"{reason}, BUT THE HUB HOLDS DIFFERENT CONTENT for this version "
            f"(hub {hub_digest[:19]}…, local {local[:19]}…); versions are immutable: "
            "publish the change as a new version"
        )
    if dry_run:
        return out
    out.delivery = DeliveryRecord(
        name=out.name,
        version=out.version,
        delivered_at=_now(),
        release_sha=release_sha,
        digest=local or hub_digest,
        outcome=outcome,
        hub_digest=out.hub_digest,
    )
    return out
