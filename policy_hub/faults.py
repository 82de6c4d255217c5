"""Test-only fault injection (off unless `--inject-faults` or POLICY_HUB_INJECT_FAULTS is set):
the spec, the seeded draws, and `FaultInjection`, the one ASGI middleware that applies them.
`create_app` installs it only when faults are given; the routes know nothing of faults.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, fields
from typing import Any

import anyio
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FAULTS_ENV = "POLICY_HUB_INJECT_FAULTS"
POLICIES_PATH = "/policies"


class FaultSpecError(Exception):
    """A fault specification that cannot be parsed."""


class InjectedConnectionDrop(Exception):
    """Raised after the answer has started: uvicorn then closes the connection mid-answer."""


@dataclass(frozen=True)
class FaultSpec:
    """`latency_ms=20,rate_503=0.1,rate_429=0.1,retry_after=1,drop_after_commit=0.2,
    slow_rate=0.05,slow_ms=3000,seed=7`; every key is optional, rates are in [0, 1]."""

    latency_ms: int = 0
    rate_503: float = 0.0
    rate_429: float = 0.0
    retry_after: int = 1
    drop_after_commit: float = 0.0
    slow_rate: float = 0.0
    slow_ms: int = 3000
    seed: int = 0

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        known = {f.name: f.type for f in fields(cls)}
        # Any: each value was converted to the type its field declares just above.
        values: dict[str, Any] = {}
        for item in text.split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or key not in known:
                raise FaultSpecError(
                    f"unknown fault {item!r}; known: {', '.join(sorted(known))} (key=value,...)"
                )
            try:
                value: float | int = float(raw) if known[key] == "float" else int(raw)
            except ValueError as exc:
                raise FaultSpecError(f"fault {key}: {raw!r} is not a number") from exc
            if known[key] == "float" and not 0.0 <= value <= 1.0:
                raise FaultSpecError(f"fault {key}: a rate must be between 0 and 1")
            if known[key] == "int" and key != "seed" and value < 0:
                raise FaultSpecError(f"fault {key}: must not be negative")
            values[key] = value
        return cls(**values)

    def describe(self) -> str:
        default = FaultSpec()
        return ",".join(
            f"{f.name}={getattr(self, f.name)}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name) or f.name == "seed"
        )


class Faults:
    """Draws the faults of each request from one seeded generator. Only the middleware draws,
    on the event loop, so a seed gives the same draws for the same sequence of requests; a
    rate of 0 draws nothing, so adding a fault kind does not shift the others' draws."""

    def __init__(self, spec: FaultSpec) -> None:
        self.spec = spec
        self._random = random.Random(spec.seed)

    def _chance(self, rate: float) -> bool:
        return rate > 0.0 and self._random.random() < rate

    def refusal(self) -> int | None:
        """503 or 429 for this request, decided before it has any effect, or None."""
        if self._chance(self.spec.rate_503):
            return 503
        if self._chance(self.spec.rate_429):
            return 429
        return None

    def slow_now(self) -> bool:
        return self._chance(self.spec.slow_rate)

    def drop_now(self) -> bool:
        return self._chance(self.spec.drop_after_commit)


class FaultInjection:
    """Pure ASGI middleware. Every request under /policies waits `latency_ms`, then may be
    refused with a 503 or a 429 before the hub sees it. An answer that reports a settled
    result (a policy read; a POST's 201 or 409 `exists`, replays included, all after the
    commit) may then be slow, and a POST's may be cut off: headers sent, body never."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults
        # Here, not in the CLI: whatever installs the middleware gets quiet logs with it. By
        # now uvicorn has configured its loggers (dictConfig would not remove a filter anyway).
        quiet_injected_drops()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if path != POLICIES_PATH and not path.startswith(POLICIES_PATH + "/"):
            await self.app(scope, receive, send)
            return
        spec = self.faults.spec
        if spec.latency_ms:
            # A sleep on the event loop: concurrent requests wait side by side, no thread held.
            await anyio.sleep(spec.latency_ms / 1000)
        refusal = self.faults.refusal()
        if refusal is not None:
            await _refusal(refusal, spec.retry_after)(scope, receive, send)
            return
        if _may_settle(scope["method"], path):
            await self.app(scope, receive, self._held(scope["method"], send))
        else:
            await self.app(scope, receive, send)

    def _held(self, method: str, send: Send) -> Send:
        """A `send` that keeps the answer until it is whole, then applies the after-effect
        faults to a settled one and passes it on (or cuts it off)."""
        start: Message | None = None
        body = bytearray()

        async def held_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            if _settled(method, start["status"], bytes(body)):
                if self.faults.slow_now():
                    await anyio.sleep(self.faults.spec.slow_ms / 1000)
                if method == "POST" and self.faults.drop_now():
                    # The start carries the full Content-Length, so the client knows the
                    # answer is broken; the record is committed, and a retry must find it.
                    await send(start)
                    raise InjectedConnectionDrop("injected fault: connection dropped after commit")
            await send(start)
            await send({"type": "http.response.body", "body": bytes(body), "more_body": False})

        return held_send


def _refusal(status: int, retry_after: int) -> JSONResponse:
    if status == 503:
        return JSONResponse(
            {"error": "unavailable", "detail": "injected fault: service unavailable"}, 503
        )
    return JSONResponse(
        {"error": "rate-limited", "detail": "injected fault: too many requests"},
        429,
        headers={"Retry-After": str(retry_after)},
    )


def _may_settle(method: str, path: str) -> bool:
    """POST /policies, or GET /policies/{name}/{version} (the reads a release makes)."""
    if method == "POST":
        return path == POLICIES_PATH
    return method == "GET" and path.count("/") == 3


def _settled(method: str, status: int, body: bytes) -> bool:
    """Whether the answer reports a settled result rather than a refusal of the request."""
    if method == "GET":
        return status in (200, 404)
    if status == 201:
        return True
    if status != 409:
        return False
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    # `in-flight` is also a 409, but nothing was committed for it.
    return isinstance(answer, dict) and answer.get("error") == "exists"


class _QuietInjectedDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], InjectedConnectionDrop))


def quiet_injected_drops() -> None:
    """Keep uvicorn from logging a traceback for every connection we drop on purpose."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietInjectedDrops) for f in logger.filters):
        logger.addFilter(_QuietInjectedDrops())
