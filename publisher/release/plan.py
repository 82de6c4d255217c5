"""What one release run will deliver (docs/contract.md section 3, steps 1-3): the baseline, the
change set and the early filter against `delivered.json` (`make_plan`), as plain data that travels
to every xdist worker (`ReleasePlan`); `well_formed`, the test a name and version pass before they
may reach a URL path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from policy_checks import (
    NAME_RE,
    SEMVER_RE,
    content_digest,
    looks_like_version,
)
from publisher.release.guard import next_version
from publisher.repo import git as gitrepo
from publisher.repo.layout import (
    CommitSource,
    folder_identity,
    loose_entries_of,
    version_folder,
    version_folders_of,
)
from publisher.state.folder import DeliveredIndex


@dataclass
class ChangedAfterDelivery:
    folder: str
    name: str
    version: str
    delivered_at: str  # when and in which release the recorded content was delivered
    release_sha: str
    digest: str | None = None  # the content at the release commit
    delivered_digest: str | None = None  # the content delivered.json records

    def reason(self) -> str:
        """What the release says of it: when it was delivered, and the two ways back."""
        successor = version_folder(self.name, next_version(self.version))
        return (
            f"changed after delivery: {self.name}@{self.version} was delivered on "
            f"{self.delivered_at} (release {self.release_sha[:12]}) and {self.folder} now holds "
            "other content; published versions are immutable, so it is not republished and "
            "every release fails until either the delivered content is restored (git checkout "
            f"{self.release_sha[:12]} -- {self.folder}) or the change moves to a new version "
            f"folder (e.g. {successor}/) and {self.folder} is restored"
        )


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
    # The content digest of each version the early filter dropped, for the reports.
    dropped_digests: dict[str, str] = field(default_factory=dict)

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
    *,
    read_delivered_content: bool = True,
) -> ReleasePlan:
    """Baseline → change set → early filter (docs/contract.md section 3, steps 1-3).

    Without `read_delivered_content` (the count of `-n auto`, which wants only `to_deliver`),
    the versions already delivered are not read, so none is flagged changed after delivery."""
    gitrepo.check_not_shallow(repo)
    baseline = gitrepo.resolve_baseline(repo, baseline_sha, baseline_text, release_sha)
    changed = gitrepo.changed_paths(repo, baseline.diff_from, release_sha)
    touched = version_folders_of(changed)
    loose = loose_entries_of(changed)
    source = CommitSource(repo, release_sha, touched + loose)
    existing = set(version_folders_of(source.tree.entries))
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
    checked = dropped if read_delivered_content else []
    source.prefetch(checked)
    dropped_digests: dict[str, str] = {}
    for folder in checked:
        name, version = folder_identity(folder)
        record = delivered.get(name, version)
        assert record is not None
        digest = content_digest(source.read(folder))
        if digest is not None:
            dropped_digests[folder] = digest
        if not record.holds(digest):
            changed_after.append(
                ChangedAfterDelivery(
                    folder,
                    name,
                    version,
                    record.delivered_at,
                    record.release_sha,
                    digest=digest,
                    delivered_digest=record.digest,
                )
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
        dropped_digests=dropped_digests,
    )


def plan_is_complete(plan: ReleasePlan, delivered: DeliveredIndex) -> bool:
    """The baseline invariant: every version of the change set is in delivered.json as it
    stands. A version changed after delivery is in it with other content: it is not delivered
    as it stands, so the baseline waits until the edit is undone (section 3, step 3)."""
    if plan.changed_after_delivery:
        return False
    return all(key in delivered for key in plan.versions())


def well_formed(name: str, version: str) -> bool:
    """Only a well-formed name and version may ever reach a URL path (fullmatch: `$` in a
    `match` would let a trailing newline through)."""
    return bool(NAME_RE.fullmatch(name) and SEMVER_RE.fullmatch(version))
