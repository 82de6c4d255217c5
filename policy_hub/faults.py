"""Test-only fault injection (off unless `--inject-faults` or POLICY_HUB_INJECT_FAULTS is set):
latency, 503s, 429s with Retry-After, connections dropped after commit, and slow answers.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, fields

FAULTS_ENV = "POLICY_HUB_INJECT_FAULTS"


class FaultSpecError(Exception):
    """A fault specification that cannot be parsed."""


class InjectedConnectionDrop(Exception):
    """Raised after the response has started so the server aborts the connection."""


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
        values: dict[str, float | int] = {}
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
        return cls(**values)  # type: ignore[arg-type]

    def describe(self) -> str:
        default = FaultSpec()
        return ",".join(
            f"{f.name}={getattr(self, f.name)}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name) or f.name == "seed"
        )


class Faults:
    """Draws the faults for each request from one seeded generator (thread-safe)."""

    def __init__(self, spec: FaultSpec) -> None:
        self.spec = spec
        self._random = random.Random(spec.seed)
        self._lock = threading.Lock()

    def _chance(self, rate: float) -> bool:
        if rate <= 0.0:
            return False
        with self._lock:
            return self._random.random() < rate

    def delay(self) -> None:
        # Runs in a worker thread, so concurrent requests sleep side by side.
        if self.spec.latency_ms:
            time.sleep(self.spec.latency_ms / 1000)

    def refusal(self) -> int | None:
        """503 or 429 for this request, decided before it has any effect, or None."""
        if self._chance(self.spec.rate_503):
            return 503
        if self._chance(self.spec.rate_429):
            return 429
        return None

    def drop_now(self) -> bool:
        return self._chance(self.spec.drop_after_commit)

    def maybe_slow(self) -> None:
        if self._chance(self.spec.slow_rate):
            time.sleep(self.spec.slow_ms / 1000)
