"""The git-tracked release state: `.state/baseline.sha` and `.state/delivered.json`.

Reading refuses anything it cannot parse (a corrupt file is never treated as empty) and keeps the
fields it does not know; every write is atomic (temp file in the same folder, fsync, rename) and
keeps the file's permissions; a lock outside the state folder (in git's own directory) keeps two
runs apart, so nothing untracked ever appears in `.state/`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock

from publisher.state.schema import schema_problem

BASELINE_FILE = "baseline.sha"
DELIVERED_FILE = "delivered.json"
STATE_FORMAT_VERSION = 1

_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_RESTORE_HINT = (
    "restore it with `git checkout -- {path}` (or delete it to start from the root commit)"
)


class StateError(Exception):
    """A state file exists but cannot be used; the message names the file and the way back."""


class StateLockedError(StateError):
    """Another run holds the state directory."""


_KNOWN_FIELDS = ("delivered_at", "release_sha", "digest", "outcome", "hub_digest")


@dataclass(frozen=True)
class DeliveryRecord:
    """One delivered policy version, as `delivered.json` stores it.

    `digest` is the digest of the files at the release commit; `hub_digest` is set only when the
    hub holds other content for that version. `extra` keeps fields this harness does not know.
    """

    name: str
    version: str
    delivered_at: str
    release_sha: str
    digest: str
    outcome: str
    hub_digest: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def holds(self, digest: str | None) -> bool:
        """Whether files with `digest` are this version's delivered content: the files released
        then, or the content the hub holds for it (`hub_digest`). Anything else is an edit of a
        published, immutable version."""
        return digest is not None and digest in (self.digest, self.hub_digest)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.extra)
        data.update(
            delivered_at=self.delivered_at,
            release_sha=self.release_sha,
            digest=self.digest,
            outcome=str(self.outcome),  # plain str: this crosses the xdist channel too
        )
        if self.hub_digest is not None:
            data["hub_digest"] = self.hub_digest
        return data

    @classmethod
    def from_json(cls, name: str, version: str, data: dict[str, Any]) -> DeliveryRecord:
        return cls(
            name=name,
            version=version,
            delivered_at=data["delivered_at"],
            release_sha=data["release_sha"],
            digest=data["digest"],
            outcome=data["outcome"],
            hub_digest=data.get("hub_digest"),
            extra={k: v for k, v in data.items() if k not in _KNOWN_FIELDS},
        )


class DeliveredIndex:
    """Every policy version ever delivered, by (name, version); only ever added to."""

    def __init__(
        self, records: Iterable[DeliveryRecord] = (), extra: dict[str, Any] | None = None
    ) -> None:
        # Top-level fields this harness does not know, kept as they are.
        self.extra: dict[str, Any] = dict(getattr(records, "extra", None) or extra or {})
        # An entry read from the file stays its checked JSON object until a record of it is
        # asked for: a release reads 10 000 entries and looks at a handful (docs/benchmarks.md).
        self._by_key: dict[tuple[str, str], DeliveryRecord | dict[str, Any]] = {}
        if isinstance(records, DeliveredIndex):
            self._by_key.update(records._by_key)
            return
        for record in records:
            self._by_key.setdefault((record.name, record.version), record)

    @classmethod
    def from_checked(
        cls, policies: dict[str, dict[str, Any]], extra: dict[str, Any] | None = None
    ) -> DeliveredIndex:
        """The index of a `policies` object already checked against the schema."""
        index = cls(extra=extra)
        index._by_key = {
            (name, version): entry
            for name, versions in policies.items()
            for version, entry in versions.items()
        }
        return index

    def _record(self, key: tuple[str, str]) -> DeliveryRecord:
        value = self._by_key[key]
        if isinstance(value, dict):
            value = self._by_key[key] = DeliveryRecord.from_json(*key, value)
        return value

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._by_key

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[DeliveryRecord]:
        return (self._record(key) for key in list(self._by_key))

    def versions_by_name(self, names: set[str]) -> dict[str, list[str]]:
        """The delivered versions of each of `names` (one pass over the index)."""
        found: dict[str, list[str]] = {}
        for name, version in self._by_key:
            if name in names:
                found.setdefault(name, []).append(version)
        return found

    def get(self, name: str, version: str) -> DeliveryRecord | None:
        key = (name, version)
        return self._record(key) if key in self._by_key else None

    def add(self, record: DeliveryRecord) -> bool:
        """Add a record unless that version is already recorded (entries are never changed)."""
        key = (record.name, record.version)
        if key in self._by_key:
            return False
        self._by_key[key] = record
        return True

    def merged(self, other: DeliveredIndex) -> DeliveredIndex:
        """The union of two indexes; where both hold a version, this one's entry stays."""
        return DeliveredIndex([*self, *other], {**other.extra, **self.extra})

    def to_json(self) -> dict[str, Any]:
        policies: dict[str, dict[str, Any]] = {}
        for (name, version), value in self._by_key.items():
            entry = dict(value) if isinstance(value, dict) else value.to_json()
            policies.setdefault(name, {})[version] = entry
        return {**self.extra, "version": STATE_FORMAT_VERSION, "policies": policies}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def parse_delivered(text: str, path: str) -> DeliveredIndex:
    """Parse the text of a `delivered.json`; `path` is only for messages."""
    hint = _RESTORE_HINT.format(path=path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); {hint}") from None
    problem = schema_problem(data, "delivered")
    if problem is not None:
        raise StateError(f"{path}: {problem}; {hint}")
    extra = {k: v for k, v in data.items() if k not in ("version", "policies")}
    return DeliveredIndex.from_checked(data["policies"], extra)


def parse_baseline(text: str) -> str | None:
    """The baseline commit, or None when the text is not one 40-hex line (the caller warns)."""
    value = text.strip()
    return value if _SHA_RE.match(value) and text.count("\n") <= 1 else None


# The last parse of each delivered.json, keyed by what identifies its content.
_PARSED: dict[str, tuple[tuple[object, ...], DeliveredIndex]] = {}


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
        """The parsed file (a copy: callers may add to it). Parsed once per process while the
        file is unchanged: `-n auto`'s estimate and the plan both read it."""
        path = self.delivered_path
        try:
            stat = path.stat()
            text = path.read_bytes()
        except FileNotFoundError:
            return DeliveredIndex()
        except OSError as exc:  # the state path is a file, or unreadable: exit 4, not a traceback
            raise StateError(self._unreadable(DELIVERED_FILE, exc)) from None
        key = (str(path), stat.st_mtime_ns, stat.st_size, stat.st_ino, hash(text))
        cached = _PARSED.get(str(path))
        if cached is None or cached[0] != key:
            shown = f"{self.display}/{DELIVERED_FILE}"
            try:
                decoded = text.decode("utf-8")
            except UnicodeDecodeError:
                raise StateError(
                    f"{shown}: not UTF-8; {_RESTORE_HINT.format(path=shown)}"
                ) from None
            cached = _PARSED[str(path)] = (key, parse_delivered(decoded, shown))
        return DeliveredIndex(cached[1])

    def read_baseline_text(self) -> str | None:
        try:
            return self.baseline_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(self._unreadable(BASELINE_FILE, exc)) from None

    def _unreadable(self, name: str, exc: OSError) -> str:
        return (
            f"{self.display}/{name} cannot be read ({os_reason(exc)}); "
            f"the state folder {self.display} must be a folder this run can read and write"
        )

    def write_delivered(self, index: DeliveredIndex) -> None:
        atomic_write(self.delivered_path, index.dumps())

    def write_baseline(self, sha: str) -> None:
        atomic_write(self.baseline_path, sha + "\n")

    def check_writable(self) -> None:
        """Prove, before anything is sent, that the state can be written: a probe file is
        created, written, synced and removed (permissions alone do not tell: root, read-only
        mounts, a full disk). Raises StateError naming the folder and why."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=self.path, prefix=".probe.", suffix=".tmp")
            try:
                os.write(fd, b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
                Path(probe).unlink(missing_ok=True)
        except OSError as exc:
            raise StateError(
                f"the state folder {self.display} cannot be written ({os_reason(exc)}); "
                "a release would publish and then be unable to record it, so nothing was sent: "
                "make the folder writable, or name another with --state-dir"
            ) from None

    @contextmanager
    def locked(self, lock_path: Path) -> Iterator[None]:
        """Hold an exclusive lock for the length of a run; `lock_path` lies outside the state
        folder (in git's directory), so nothing untracked appears in a policy repository."""
        lock = filelock.FileLock(lock_path, timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise StateLockedError(
                f"{self.display} is in use by another release run on this checkout; "
                "wait for it to finish (the lock is released when that process exits)"
            ) from None
        except OSError as exc:
            raise StateError(
                f"cannot take the release lock {lock_path}: {os_reason(exc)}"
            ) from None
        try:
            # A run killed mid-write leaves its temp file; with the lock held none is live.
            for prefix in (DELIVERED_FILE, BASELINE_FILE, "probe"):
                for stale in self.path.glob(f".{prefix}.*.tmp"):
                    stale.unlink(missing_ok=True)
            yield
        finally:
            lock.release()


def release_lock_path(git_dir: Path, state_dir: Path) -> Path:
    """The lock of one state folder: in git's own directory, never tracked, never in `.state/`."""
    key = hashlib.sha256(str(state_dir).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return git_dir / f"policyhub-release-{key}.lock"


def os_reason(exc: OSError) -> str:
    """A short reason for a failed file operation, for messages."""
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return "it is not a folder"
    return exc.strerror or str(exc)


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a crash at any instant leaves the old or the new file;
    the file keeps its permissions (a new one gets the usual ones, not mkstemp's 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = _new_file_mode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if os.name == "nt":  # Windows cannot open a folder to sync it; the rename is durable there
        return
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
