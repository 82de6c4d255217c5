"""Hub checks sent before their item runs. While the xdist workers start, the controller sends the
hub check (`GET /policies/{name}/{version}`) of every version to deliver, and each item takes its
answer from a run-scoped file instead of asking again (`HubChecksAhead`, `HubCheckBoard`;
docs/benchmarks.md, "hub checks sent ahead"); where none was sent ahead (a subset run), each
process starts the next item's check during the current one (`HubCheckPrefetch`).

The contract's order per version holds: the GET is only sent earlier, still before that version's
validation and POST. A `200` is final (versions are immutable); a `404` that is stale by the time
of the POST ends in a `409` with the hub's record, counted `already-in-hub`; an item that finds no
answer yet asks the hub itself.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from publisher.hub.client import HubAnswer, HubClient
from publisher.printable import redact
from publisher.release.plan import ReleasePlan
from publisher.repo.layout import folder_identity


class RunFlag:
    """A fact that one process of the run found and every later item must know, shared by every
    process through one file (the controller names it on the `RunSpec`): written whole by
    `os.replace`, read as it is."""

    default = "it happened"

    def __init__(self, path: Path) -> None:
        self.path = path

    def known(self) -> str | None:
        """The full reason, as the process that found it wrote it, or None."""
        try:
            return self.path.read_text(encoding="utf-8") or self.default
        except OSError:
            return None

    def mark(self, why: str) -> None:
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(why, encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass  # at worst the next item finds out for itself


class HubOutage(RunFlag):
    """The hub was found unreachable: once one item (or the preflight) saw no answer after all
    its tries, or only 5xx/429 answers (an outage that still answers), every later item is not
    attempted, so a dead or failing hub costs one request deadline per process, not one per
    version. The reason is said once (up front or in the summary); the items not attempted say
    only that."""

    default = "the hub did not answer"


class TokenRefused(RunFlag):
    """The hub refused the token on a POST (401/403), where its GETs were accepted (a read-only
    token): every later item is not attempted instead of repeating the refusal per version."""

    default = "the hub refused the token"


def unreachable_reason(hub_url: str, answer: HubAnswer) -> str:
    if answer.status is not None:
        return (
            f"the hub at {hub_url} answered every try with an error ({answer.describe}): it is "
            "taken as down for the rest of this run"
        )
    return f"the hub at {hub_url} did not answer: {answer.describe}"


BOARD_FILE = "hub-checks.jsonl"
# Hub checks in flight at once on the controller: enough to stay ahead of 8 workers at a hub
# latency of 20 ms, few enough not to crowd a 2-core runner while the workers import pytest.
AHEAD_CONNECTIONS = 8


class HubCheckBoard:
    """The answers of the hub checks sent ahead: one JSON line per version, appended by the
    controller, read by every process that runs items. Lines are written whole with one
    `write` on an append-only file, and read only up to the last complete line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._answers: dict[str, HubAnswer] = {}
        self._offset = 0
        self._write_lock = threading.Lock()

    def post(self, folder: str, answer: HubAnswer) -> None:
        """Record the answer of `folder`'s hub check. Any text from the hub that repeats a
        registered secret (a hub that echoes the request) is redacted before it reaches disk."""
        line = json.dumps({"folder": folder, "answer": _scrubbed(asdict(answer))}) + "\n"
        with self._write_lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)

    def has(self, folder: str) -> bool:
        if folder not in self._answers:
            self._refresh()
        return folder in self._answers

    def take(self, folder: str) -> HubAnswer | None:
        """`folder`'s answer if it is here yet (each answer is taken once), else None."""
        return self._answers.pop(folder) if self.has(folder) else None

    def _refresh(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except OSError:
            return  # nothing posted yet: the item asks the hub itself
        end = data.rfind(b"\n") + 1
        self._offset += end
        for raw in data[:end].splitlines():
            try:
                entry = json.loads(raw)
                self._answers[entry["folder"]] = HubAnswer(**entry["answer"])
            except (ValueError, KeyError, TypeError):
                continue  # never ours to trust blindly: the item asks the hub itself


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {_scrubbed(k): _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v) for v in value]
    return value


class HubChecksAhead:
    """The controller's side: a thread pool that sends the hub checks in the items' order and
    posts each answer to the board. It stops asking once the hub is known unreachable, skips the
    versions whose items already reported, and is cancelled when the session ends."""

    def __init__(
        self,
        board: HubCheckBoard,
        client: HubClient,
        hub_down: HubOutage,
    ) -> None:
        self._board = board
        self._client = client
        self._hub_down = hub_down
        self._pool = ThreadPoolExecutor(AHEAD_CONNECTIONS, thread_name_prefix="hub-check-ahead")
        self._reported: set[str] = set()
        self._stopped = threading.Event()

    def send(self, folders: list[str]) -> None:
        for folder in folders:
            self._pool.submit(self._check, folder)

    def reported(self, folder: str) -> None:
        """The item of `folder` has run: its hub check is no longer needed."""
        self._reported.add(folder)

    def _check(self, folder: str) -> None:
        if self._stopped.is_set() or folder in self._reported or self._hub_down.known():
            return
        name, version = folder_identity(folder)
        answer = self._client.get_policy(name, version)
        if answer.unreachable:
            # Every process stops asking now, so a dead hub costs one request deadline.
            self._stopped.set()
            self._hub_down.mark(unreachable_reason(self._client.base_url, answer))
        self._board.post(folder, answer)

    def close(self) -> None:
        self._stopped.set()
        self._pool.shutdown(wait=True, cancel_futures=True)


class HubCheckPrefetch:
    """Starts the hub check (GET) of the next version while the current one is delivered.

    The GET is read-only, so sending it a little early changes nothing but the wall time: the
    current item's validation and POST overlap the next item's GET.
    """

    def __init__(self, client: HubClient, plan: ReleasePlan) -> None:
        self._client = client
        self._plan = plan
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hub-check")
        self._started: dict[str, Future[HubAnswer]] = {}

    def start(self, folder: str) -> None:
        if folder in self._started or not self._plan.sendable(folder):
            return
        name, version = folder_identity(folder)
        self._started[folder] = self._pool.submit(self._client.get_policy, name, version)

    def take(self, folder: str) -> Future[HubAnswer] | None:
        return self._started.pop(folder, None)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
