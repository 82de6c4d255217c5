"""`HarnessOptions`: every setting a run reads, resolved once on the controller from flags, the
environment and ini keys (by `publisher/plugin/options.py`, the only place that knows pytest's
option objects), as plain data the release flow uses without pytest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from policy_checks import CheckSettings
from publisher.release.shard import Shard


@dataclass(frozen=True)
class HarnessOptions:
    """Every setting the harness reads, resolved once on the controller."""

    release: bool
    hub_url: str | None  # None = not configured
    token: str | None
    release_ref: str
    state_dir: Path
    rules_dir: Path
    dry_run: bool
    commit_state: bool
    push: bool
    changed_since: str | None
    allow_insecure_hub: bool
    in_ci: bool
    ca_bundle: str | None = None  # None: certifi's bundle
    # Trusted publishing: the ID token's audience when there is no token and the runner may
    # give an ID token (publisher.hub.oidc); None otherwise.
    oidc_audience: str | None = None
    limits: dict[str, float] = field(default_factory=dict)  # RetryPolicy overrides from ini
    shard: Shard | None = None
    fragment_out: Path | None = None  # set whenever shard is
    finalize: tuple[Path, ...] = ()  # the fragments to merge; empty = not a finalize run
    checks: CheckSettings = field(default_factory=CheckSettings)

    def __repr__(self) -> str:
        # The token must never appear in a traceback's locals or a debug print.
        return f"HarnessOptions(release={self.release}, hub_url={self.hub_url!r}, token=<hidden>)"
