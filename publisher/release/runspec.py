"""`RunSpec`: what every process of a run must know to run its items, decided once by the
controller. It is plain JSON-like data because it *is* the `workerinput` payload an xdist worker
receives (`publisher/plugin/xdisthooks.py`); without xdist the controller's own runner is built
from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from policy_checks import CheckSettings
from publisher.release.plan import ReleasePlan

WORKERINPUT_KEY = "policyhub"


@dataclass(frozen=True)
class RunSpec:
    release: bool = False
    dry_run: bool = False
    folders: list[str] | None = None  # the version folders to run; None: all in the working tree
    rules_dir: str | None = None  # a repository's own rules (.policy-rules), when present
    checks: CheckSettings = field(default_factory=CheckSettings)  # the ini keys of section 8
    state_dir: str | None = None  # author mode: whose delivered.json the immutability guard reads
    plan: ReleasePlan | None = None  # release mode
    hub_url: str | None = None
    auth_problem: str | None = None  # set when the hub refused the token up front
    ca_bundle: str | None = None
    limits: dict[str, float] = field(default_factory=dict)  # RetryPolicy overrides
    outage_file: str | None = None  # where a process that finds the hub dead says so
    token_refused_file: str | None = None  # where a process whose POST got 401/403 says so
    hub_checks_file: str | None = None  # the answers of the hub checks sent ahead (hubchecks.py)
    # Only the embedded hub's throw-away token travels here; a real one comes from the
    # environment every worker inherits (read through hub.token.resolve_token).
    local_token: str | None = None
    # Trusted publishing: each process exchanges its own ID token for a hub token (no secret
    # travels here); set when the controller did so up front.
    oidc_audience: str | None = None

    def to_workerinput(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_workerinput(cls, data: dict[str, Any]) -> RunSpec:
        values = dict(data)
        plan = values.pop("plan", None)
        checks = CheckSettings(**values.pop("checks", {}))
        return cls(**values, checks=checks, plan=ReleasePlan.from_json(plan) if plan else None)
