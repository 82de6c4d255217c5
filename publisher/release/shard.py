"""Scale-out of one release across machines: which shard owns a version (`--shard K/N`), the
fragment file a shard run writes instead of the state, and the merge of fragments that the
finalize run (`--finalize FRAGMENT...`) turns into `delivered.json` and the baseline.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from publisher.release.outcome import ItemOutcome
from publisher.release.plan import ReleasePlan
from publisher.repo.layout import folder_identity
from publisher.state.folder import DeliveredIndex, atomic_write
from publisher.state.schema import schema_problem

FRAGMENT_FORMAT = "policyhub-fragment"
FRAGMENT_VERSION = 1
MAX_SHARDS = 256  # GitHub's cap on the jobs of one matrix; more shards could never all run

_SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class ShardError(ValueError):
    """A bad `K/N`; the message says what is expected."""


class FragmentError(Exception):
    """A fragment file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `total`, both counted from 1 as on the command line."""

    index: int
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"

    def owns(self, folder: str) -> bool:
        name, version = folder_identity(folder)
        return shard_index(name, version, self.total) == self.index

    def default_fragment_name(self) -> str:
        # Not hidden: actions/upload-artifact v4 leaves dot-files out unless told otherwise.
        return f"policyhub-fragment-{self.index}-of-{self.total}.json"


def shard_index(name: str, version: str, total: int) -> int:
    """The shard (1..total) that owns `name@version`.

    SHA-256 rather than `hash()`: the answer must be the same on every machine and every Python
    process (string hashing is salted per process), and must not depend on which other versions
    changed, so every shard decides its share without talking to the others.
    """
    if total < 1:
        raise ShardError(f"the number of shards must be at least 1, not {total}")
    digest = hashlib.sha256(f"{name}@{version}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % total + 1


def parse_shard(text: str) -> Shard:
    """`"2/3"` -> Shard(2, 3), with a message that says what is wrong otherwise."""
    match = _SHARD_RE.match(text or "")
    if not match:
        raise ShardError(f"--shard {text!r}: expected K/N, for example 2/3 (shard 2 of 3)")
    index, total = int(match[1]), int(match[2])
    if total < 1 or total > MAX_SHARDS:
        raise ShardError(f"--shard {text}: the number of shards must be between 1 and {MAX_SHARDS}")
    if not 1 <= index <= total:
        raise ShardError(f"--shard {text}: K counts from 1 and must be at most N ({total})")
    return Shard(index, total)


def restrict_plan(plan: ReleasePlan, shard: Shard) -> ReleasePlan:
    """The plan of one shard: the same change set, but only its share left to deliver."""
    data = plan.to_json()
    data["to_deliver"] = [f for f in plan.to_deliver if shard.owns(f)]
    # A version changed after delivery is said (and fails) in the shard that owns it, once.
    data["changed_after_delivery"] = [
        c for c in data["changed_after_delivery"] if shard.owns(c["folder"])
    ]
    return ReleasePlan.from_json(data)


@dataclass
class Fragment:
    """What one shard run delivered, for the finalize run to merge."""

    release_sha: str
    shard: Shard
    change_set: list[str]
    share: list[str]  # the folders this shard had to deliver
    deliveries: DeliveredIndex
    outcomes: list[ItemOutcome] = field(default_factory=list)  # the versions this shard ran
    path: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FRAGMENT_FORMAT,
            "version": FRAGMENT_VERSION,
            "release_sha": self.release_sha,
            "shard": str(self.shard),
            "change_set": list(self.change_set),
            "share": list(self.share),
            # The same per-entry shape as delivered.json, so a fragment reads like the state.
            "policies": self.deliveries.to_json()["policies"],
            "outcomes": [o.without_delivery() for o in self.outcomes],
        }


def write_fragment(path: Path, fragment: Fragment) -> None:
    text = json.dumps(fragment.to_json(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    atomic_write(path, text)


def read_fragment(path: Path, shown: str | None = None) -> Fragment:
    """Read and check one fragment; anything unexpected is a FragmentError naming the file."""
    shown = shown or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FragmentError(f"{shown}: no such fragment file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FragmentError(f"{shown}: cannot read the fragment ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FragmentError(f"{shown}:{exc.lineno}: not a valid fragment: {exc.msg}") from None
    return _fragment_from_json(data, shown)


def _fragment_from_json(data: Any, shown: str) -> Fragment:
    problem = schema_problem(data, "fragment")
    try:
        shard = parse_shard(data["shard"]) if problem is None else None
    except ShardError as exc:
        problem = f"$.shard: {exc}"
    if problem is not None or shard is None:
        raise FragmentError(
            f"{shown}: not a valid fragment: {problem} "
            "(a fragment is written by `pytest --release --shard K/N`)"
        )
    deliveries = DeliveredIndex.from_checked(data["policies"])
    outcomes = []
    for entry in data.get("outcomes", []):
        # The delivery is the fragment's own record of it (`policies`), never the entry's.
        outcome = ItemOutcome.from_json({k: v for k, v in entry.items() if k != "delivery"})
        outcome.reason = outcome.reason or ""
        outcome.delivery = deliveries.get(outcome.name, outcome.version)
        outcomes.append(outcome)
    return Fragment(
        release_sha=data["release_sha"],
        shard=shard,
        change_set=data["change_set"],
        share=data["share"],
        deliveries=deliveries,
        outcomes=outcomes,
        path=shown,
    )


@dataclass
class MergedFragments:
    """The fragments of one release, checked against the finalize run's own plan."""

    deliveries: DeliveredIndex
    outcomes: list[ItemOutcome]
    present: list[Fragment]
    missing_shards: list[Shard]
    missing_files: list[str]

    def notes(self) -> list[str]:
        lines = [
            f"merged the fragment of shard {f.shard} ({f.path}): {len(f.deliveries)} delivered"
            for f in self.present
        ]
        lines += [f"MISSING FRAGMENT: {p} does not exist" for p in self.missing_files]
        lines += [
            f"MISSING FRAGMENT: no fragment from shard {s}; its versions count as not delivered"
            for s in self.missing_shards
        ]
        return lines


def merge_fragments(paths: list[tuple[Path, str]], plan: ReleasePlan) -> MergedFragments:
    """Read, check and merge fragments for the finalize run whose plan is `plan`.

    A fragment of another release commit, or planned from another baseline, is refused: its
    deliveries may be true, but merging them would make this run's verdict about a different
    change set. A missing file or shard is not an error: the baseline invariant keeps the
    baseline, and the next release retries what is not recorded.
    """
    present: list[Fragment] = []
    missing_files: list[str] = []
    for path, shown in paths:
        if not path.exists():
            missing_files.append(shown)
            continue
        fragment = read_fragment(path, shown)
        if fragment.release_sha != plan.release_sha:
            raise FragmentError(
                f"{shown}: fragment of release {fragment.release_sha[:12]}, but this run releases "
                f"{plan.release_sha[:12]}: pass the same --release-sha to the shards and "
                "to --finalize"
            )
        if sorted(fragment.change_set) != sorted(plan.change_set):
            raise FragmentError(
                f"{shown}: the shard planned a different change set ({len(fragment.change_set)} "
                f"versions) than this run ({len(plan.change_set)}): the state changed between "
                "the shard runs and --finalize; run the release again"
            )
        present.append(fragment)
    totals = {f.shard.total for f in present}
    if len(totals) > 1:
        raise FragmentError(
            "fragments of different shard counts: "
            + ", ".join(f"{f.path} ({f.shard})" for f in present)
        )
    seen: dict[int, str] = {}
    for fragment in present:
        if fragment.shard.index in seen:
            raise FragmentError(
                f"{fragment.path}: a second fragment for shard {fragment.shard} "
                f"(the first is {seen[fragment.shard.index]})"
            )
        seen[fragment.shard.index] = fragment.path
    missing_shards: list[Shard] = []
    if totals:
        total = totals.pop()
        missing_shards = [Shard(k, total) for k in range(1, total + 1) if k not in seen]
    deliveries = DeliveredIndex()
    outcomes: list[ItemOutcome] = []
    for fragment in sorted(present, key=lambda f: f.shard.index):
        for record in fragment.deliveries:
            deliveries.add(record)
        outcomes.extend(fragment.outcomes)
    return MergedFragments(deliveries, outcomes, present, missing_shards, missing_files)
