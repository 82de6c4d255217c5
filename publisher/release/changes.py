"""What each version the next release would publish changes, by meaning, against the version of
the same policy delivered before it (the release preview, `pytest --changed-since REF`): both
versions' files read (the working tree; an old folder since removed from git at its release
commit), then compared by policy_checks.diff.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policy_checks.diff import PolicyDiff, diff_policies
from policy_checks.loading import load_json, load_yaml
from policy_checks.model import PolicyFiles
from policy_checks.naming import DEFINITION_FILE, METADATA_FILE, semver_key
from publisher.release.outcome import ItemOutcome
from publisher.repo.git import GitError
from publisher.repo.layout import CommitSource, WorkingTreeSource, version_folder
from publisher.state.folder import DeliveredIndex


@dataclass(frozen=True)
class VersionChanges:
    """A new version compared with a delivered one: `against` the delivered version (None for
    the first version of a policy), `diff` by meaning, or `problem` when the delivered files
    cannot be read."""

    against: str | None
    diff: PolicyDiff | None = None
    problem: str | None = None


def delivered_before(version: str, delivered: Iterable[str]) -> str | None:
    """The delivered version to compare a new one with: the highest one below it in SemVer
    precedence (a 1.4.1 fix is compared with 1.4.0, not with a 2.0.0 delivered meanwhile), else
    the highest one there is; None when none is delivered."""
    others = [v for v in delivered if v != version]
    if not others:
        return None
    below = [v for v in others if semver_key(v) < semver_key(version)]
    return max(below or others, key=semver_key)


def _parsed(files: PolicyFiles) -> tuple[Any, Any] | None:
    if files.metadata is None or files.definition is None:
        return None
    metadata = load_json(files.metadata, f"{files.folder}/{METADATA_FILE}")
    definition = load_yaml(files.definition, f"{files.folder}/{DEFINITION_FILE}")
    if not (metadata.ok and definition.ok):
        return None
    return metadata.value, definition.value


def compare_with_delivered(
    root: Path, outcomes: Iterable[ItemOutcome], delivered: DeliveredIndex
) -> dict[str, VersionChanges]:
    """For each outcome (a valid new version), by folder: what changed against the delivered
    version `delivered_before` picks, read from the working tree, or from git at its release
    commit when its folder is no longer there."""
    wanted = list(outcomes)
    if not wanted:
        return {}
    versions = delivered.versions_by_name({o.name for o in wanted})
    tree = WorkingTreeSource(root)
    found: dict[str, VersionChanges] = {}
    for out in wanted:
        against = delivered_before(out.version, versions.get(out.name, ()))
        if against is None:
            found[out.folder] = VersionChanges(None)
            continue
        new = _parsed(tree.read(out.folder))
        old_folder = version_folder(out.name, against)
        old = _parsed(tree.read(old_folder))
        if old is None:
            record = delivered.get(out.name, against)
            try:
                if record is not None:
                    old = _parsed(
                        CommitSource(root, record.release_sha, [old_folder]).read(old_folder)
                    )
            except GitError:
                old = None
        if new is None or old is None:
            found[out.folder] = VersionChanges(
                against, problem=f"the files of {out.name} {against} cannot be read"
            )
            continue
        found[out.folder] = VersionChanges(against, diff_policies(*old, *new))
    return found
