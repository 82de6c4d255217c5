"""The invariants of exactly-once delivery, checked from the outside: the state files as they are
on disk, git history, and the hub's own database, its SQLite file or its PostgreSQL URL (never
the harness's word for it).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from policy_checks import policy_digest
from publisher.state.folder import parse_baseline, parse_delivered
from tests.hubprocess import db_query
from tests.policyrepo import PolicyRepo

HubDB = Path | str  # a SQLite file or a postgresql:// URL

ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')


def hub_query(db: HubDB, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    return db_query(db, sql, params)


def creations(db: HubDB) -> dict[tuple[str, str], int]:
    """How many times the hub created each version (201 'created', replays excluded)."""
    rows = hub_query(
        db,
        "SELECT name, version, COUNT(*) FROM audit WHERE status = 201 AND outcome = 'created'"
        " GROUP BY name, version",
    )
    return {(str(n), str(v)): int(c) for n, v, c in rows}  # type: ignore[call-overload]


def creation_count(db: HubDB) -> int:
    if isinstance(db, Path) and not db.exists():
        return 0
    return sum(creations(db).values())


def hub_records(db: HubDB) -> dict[tuple[str, str], str]:
    rows = hub_query(db, "SELECT name, version, digest FROM policies")
    return {(str(n), str(v)): str(d) for n, v, d in rows}


def replays(db: HubDB) -> int:
    """POSTs answered from the idempotency store: each is a client that lost the first answer."""
    rows = hub_query(db, "SELECT COUNT(*) FROM audit WHERE outcome = 'replayed'")
    return int(rows[0][0])  # type: ignore[call-overload]


def access_log(hub_dir: Path) -> list[tuple[str, str, int]]:
    """(method, path, status) of every request any process of this hub logged."""
    lines = []
    for path in sorted(hub_dir.glob("hub.*.stderr")):
        for match in ACCESS_LINE.finditer(path.read_text(errors="replace")):
            lines.append((match["method"], match["path"], int(match["status"])))
    return lines


def injected_refusals(hub_dir: Path) -> dict[str, int]:
    statuses = [status for _, _, status in access_log(hub_dir)]
    return {"503": statuses.count(503), "429": statuses.count(429)}


@dataclass
class StateSnapshot:
    """The state files of one moment, already proven whole."""

    delivered: dict[tuple[str, str], dict[str, str]]
    baseline: str | None

    @classmethod
    def read(cls, repo: PolicyRepo) -> StateSnapshot:
        state = repo.path / ".state"
        text = (state / "delivered.json").read_text(encoding="utf-8")
        index = parse_delivered(text, "delivered.json")  # raises on a torn or partial file
        assert text == index.dumps(), "delivered.json is not in its canonical form"
        baseline_path = state / "baseline.sha"
        baseline = None
        if baseline_path.exists():
            raw = baseline_path.read_text()
            baseline = parse_baseline(raw)
            assert baseline is not None, f"baseline.sha is not one 40-hex line: {raw!r}"
        return cls({(r.name, r.version): r.to_json() for r in index}, baseline)


def version_folders_at(repo: PolicyRepo, commit: str) -> set[tuple[str, str]]:
    """(name, version) of every `policies/<name>/v<version>/` folder in a commit."""
    out = repo.git("ls-tree", "-r", "--name-only", "-z", commit, "--", "policies")
    found = set()
    for path in out.split("\0"):
        parts = path.split("/")
        if len(parts) == 4 and parts[2].startswith("v"):
            found.add((parts[1], parts[2][1:]))
    return found


def digest_at(repo: PolicyRepo, commit: str, key: tuple[str, str]) -> str | None:
    """The content digest (docs/contract.md section 4) of a version's files in a commit, or None
    when they do not parse."""
    folder = f"policies/{key[0]}/v{key[1]}"
    try:
        meta = json.loads(repo.git("show", f"{commit}:{folder}/metadata.json"))
        definition = yaml.safe_load(repo.git("show", f"{commit}:{folder}/policy-definition.yaml"))
    except (AssertionError, ValueError, yaml.YAMLError):
        return None
    return policy_digest(meta, definition)


@dataclass
class Violations:
    """Every broken invariant, with where it was seen; empty is the only passing value."""

    found: list[str] = field(default_factory=list)

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.found.append(message)

    def __bool__(self) -> bool:
        return bool(self.found)


def check_step(
    repo: PolicyRepo,
    db: HubDB,
    before: StateSnapshot,
    release_sha: str,
    where: str,
) -> tuple[StateSnapshot, Violations]:
    """The invariants after one release (finished, failed or killed)."""
    bad = Violations()
    try:
        after = StateSnapshot.read(repo)
    except Exception as exc:  # a torn state file is exactly what we are looking for
        bad.check(False, f"{where}: state file not whole: {exc}")
        return before, bad
    for key, count in creations(db).items():
        bad.check(count <= 1, f"{where}: {key[0]}@{key[1]} created {count} times")
    records = hub_records(db)
    for key, entry in after.delivered.items():
        bad.check(key in records, f"{where}: {key} is in delivered.json but not in the hub")
        if key in records:
            # `digest` is the local files'; `hub_digest` is set when the hub holds other content.
            held = entry.get("hub_digest", entry["digest"])
            bad.check(
                records[key] == held,
                f"{where}: {key} digest {held} in delivered.json, {records[key]} in hub",
            )
    for key, entry in before.delivered.items():
        bad.check(after.delivered.get(key) == entry, f"{where}: entry {key} changed or removed")
    if after.baseline != before.baseline:
        bad.check(
            after.baseline == release_sha,
            f"{where}: baseline moved to {after.baseline}, not the release commit {release_sha}",
        )
        bad.check(
            not is_ancestor(repo, after.baseline or "", before.baseline or ""),
            f"{where}: baseline moved backwards from {before.baseline} to {after.baseline}",
        )
        present = version_folders_at(repo, release_sha)
        missing = present - set(after.delivered)
        bad.check(
            not missing,
            f"{where}: baseline advanced with undelivered versions {sorted(missing)}",
        )
        # A version changed after delivery is not delivered as it stands (section 3, step 3).
        edited = sorted(
            key
            for key, entry in after.delivered.items()
            if key in present
            and digest_at(repo, release_sha, key) not in (entry["digest"], entry.get("hub_digest"))
        )
        bad.check(
            not edited,
            f"{where}: baseline advanced past versions changed after delivery {edited}",
        )
    return after, bad


def is_ancestor(repo: PolicyRepo, ancestor: str, commit: str) -> bool:
    """True when both are commits and `ancestor` is one of `commit` (or the same)."""
    if not ancestor or not commit:
        return False
    proc = subprocess.run(
        ["git", "-C", str(repo.path), "merge-base", "--is-ancestor", ancestor, commit],
        capture_output=True,
    )
    return proc.returncode == 0


def baseline_covers(repo: PolicyRepo, baseline: str | None, head: str) -> bool:
    """The baseline is the release commit, or an ancestor with the same policies/ (the harness
    leaves a baseline alone when no policy changed since it)."""
    if baseline is None:
        return False
    if baseline == head:
        return True
    same = subprocess.run(
        ["git", "-C", str(repo.path), "diff", "--quiet", baseline, head, "--", "policies"],
        capture_output=True,
    )
    return same.returncode == 0 and is_ancestor(repo, baseline, head)


def dumps(data: object) -> str:
    return json.dumps(data, indent=2, sort_keys=True)
