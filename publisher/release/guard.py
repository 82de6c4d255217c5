"""The author-mode immutability guard (docs/contract.md section 2): a version that `delivered.json`
records with other content fails offline, before any release, with the way out (a new version
folder).
"""

from __future__ import annotations

from policy_checks import (
    CheckResult,
    Finding,
)
from publisher.release.outcome import ItemOutcome, Outcome, first_problem
from publisher.repo.layout import version_folder
from publisher.state.folder import DeliveryRecord


def check_only(result: CheckResult, delivered: DeliveryRecord | None = None) -> ItemOutcome:
    """Author mode: the checks, and the immutability guard (docs/contract.md section 2): a version
    that `delivered` records with other content is a failure, offline, before any release."""
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
    outcome.reason = first_problem(findings)
    return outcome


def edited_after_delivery(digest: str | None, record: DeliveryRecord | None) -> Finding | None:
    """The finding for a delivered version whose files now have another digest, or None.

    Formatting never changes a digest, and a version whose hub content differs (`hub_digest`)
    matches either digest, so only a real edit of the content is flagged."""
    if record is None or digest is None or record.holds(digest):
        return None
    folder = version_folder(record.name, record.version)
    successor = next_version(record.version)
    return Finding(
        folder,
        f"{record.name}@{record.version} was delivered on {record.delivered_at} (release "
        f"{record.release_sha[:12]}) and its content has changed since; published versions are "
        "immutable, so a release fails on it (never republishing it) until it is undone",
        hint=(
            f"undo the edit (git checkout -- {folder}) and put the change in a new version "
            f"folder, e.g. {version_folder(record.name, successor)}/"
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
