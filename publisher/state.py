"""The git-tracked release state: `.state/baseline.sha` and `.state/delivered.json`.

Reading refuses anything it cannot parse (a corrupt file is never treated as empty); every write
is atomic (temp file in the same folder, fsync, rename), and a lock keeps two runs apart.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASELINE_FILE = "baseline.sha"
DELIVERED_FILE = "delivered.json"
LOCK_FILE = ".lock"
STATE_FORMAT_VERSION = 1
OUTCOMES = ("published", "already-in-hub")

_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_RESTORE_HINT = (
    "restore it with `git checkout -- {path}` (or delete it to start from the root commit)"
)


class StateError(Exception):
    """A state file exists but cannot be used; the message names the file and the way back."""


class StateLockedError(StateError):
    """Another run holds the state directory."""


@dataclass(frozen=True)
class DeliveryRecord:
    """One delivered policy version, as `delivered.json` stores it."""

    name: str
    version: str
    delivered_at: str
    release_sha: str
    digest: str
    outcome: str

    def to_json(self) -> dict[str, str]:
        return {
            "delivered_at": self.delivered_at,
            "release_sha": self.release_sha,
            "digest": self.digest,
            "outcome": self.outcome,
        }

    @classmethod
    def from_json(cls, name: str, version: str, data: dict[str, Any]) -> DeliveryRecord:
        return cls(
            name=name,
            version=version,
            delivered_at=data["delivered_at"],
            release_sha=data["release_sha"],
            digest=data["digest"],
            outcome=data["outcome"],
        )


class DeliveredIndex:
    """Every policy version ever delivered, by (name, version); only ever added to."""

    def __init__(self, records: Iterable[DeliveryRecord] = ()) -> None:
        self._by_key: dict[tuple[str, str], DeliveryRecord] = {}
        for record in records:
            self._by_key.setdefault((record.name, record.version), record)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._by_key

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[DeliveryRecord]:
        return iter(self._by_key.values())

    def get(self, name: str, version: str) -> DeliveryRecord | None:
        return self._by_key.get((name, version))

    def add(self, record: DeliveryRecord) -> bool:
        """Add a record unless that version is already recorded (entries are never changed)."""
        key = (record.name, record.version)
        if key in self._by_key:
            return False
        self._by_key[key] = record
        return True

    def merged(self, other: DeliveredIndex) -> DeliveredIndex:
        """The union of two indexes; where both hold a version, this one's entry stays."""
        return DeliveredIndex([*self, *other])

    def to_json(self) -> dict[str, Any]:
        policies: dict[str, dict[str, Any]] = {}
        for record in self:
            policies.setdefault(record.name, {})[record.version] = record.to_json()
        return {"version": STATE_FORMAT_VERSION, "policies": policies}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def parse_delivered(text: str, path: str) -> DeliveredIndex:
    """Parse the text of a `delivered.json`; `path` is only for messages."""
    hint = _RESTORE_HINT.format(path=path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); {hint}") from None
    if not isinstance(data, dict) or data.get("version") != STATE_FORMAT_VERSION:
        raise StateError(
            f'{path}: expected an object with "version": {STATE_FORMAT_VERSION}; {hint}'
        )
    policies = data.get("policies")
    if not isinstance(policies, dict):
        raise StateError(f'{path}: "policies" must be an object; {hint}')
    records = []
    for name, versions in policies.items():
        if not isinstance(versions, dict):
            raise StateError(f'{path}: "policies.{name}" must be an object; {hint}')
        for version, entry in versions.items():
            where = f'{path}: "policies.{name}.{version}"'
            if not isinstance(entry, dict):
                raise StateError(f"{where} must be an object; {hint}")
            missing = [
                k for k in ("delivered_at", "release_sha", "digest", "outcome") if k not in entry
            ]
            if missing:
                raise StateError(f"{where} lacks {', '.join(missing)}; {hint}")
            if entry["outcome"] not in OUTCOMES:
                raise StateError(f"{where}: unknown outcome {entry['outcome']!r}; {hint}")
            if not isinstance(entry["digest"], str) or not _DIGEST_RE.match(entry["digest"]):
                raise StateError(f"{where}: digest is not sha256:<64 hex>; {hint}")
            records.append(DeliveryRecord.from_json(name, version, entry))
    return DeliveredIndex(records)


def parse_baseline(text: str) -> str | None:
    """The baseline commit, or None when the text is not one 40-hex line (the caller warns)."""
    value = text.strip()
    return value if _SHA_RE.match(value) and text.count("\n") <= 1 else None


class StateDir:
    """The state directory of one repository (`.state` by default)."""

    def __init__(self, path: Path, display: str | None = None) -> None:
        self.path = path
        self.display = display or str(path)

    @property
    def delivered_path(self) -> Path:
        return self.path / DELIVERED_FILE

    @property
    def baseline_path(self) -> Path:
        return self.path / BASELINE_FILE

    def read_delivered(self) -> DeliveredIndex:
        path = self.delivered_path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return DeliveredIndex()
        except UnicodeDecodeError:
            shown = f"{self.display}/{DELIVERED_FILE}"
            raise StateError(f"{shown}: not UTF-8; {_RESTORE_HINT.format(path=shown)}") from None
        return parse_delivered(text, f"{self.display}/{DELIVERED_FILE}")

    def read_baseline_text(self) -> str | None:
        try:
            return self.baseline_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None

    def write_delivered(self, index: DeliveredIndex) -> None:
        atomic_write(self.delivered_path, index.dumps())

    def write_baseline(self, sha: str) -> None:
        atomic_write(self.baseline_path, sha + "\n")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the state directory for the length of a run."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StateLockedError(
                    f"{self.display} is in use by another release run on this checkout; "
                    "wait for it to finish (the lock is released when that process exits)"
                ) from None
            # A run killed mid-write leaves its temp file; with the lock held none is live.
            for name in (DELIVERED_FILE, BASELINE_FILE):
                for stale in self.path.glob(f".{name}.*.tmp"):
                    stale.unlink(missing_ok=True)
            yield
        finally:
            os.close(fd)


def atomic_write(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a crash at any instant leaves the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
