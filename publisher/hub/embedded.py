"""The embedded local hub (`--hub-url local`, and `--release` with no hub configured outside CI):
the reference hub (`policy_hub`) started in this process on a loopback port, with its SQLite file
under `.policyhub-local/` (git-ignored; the hub's own store, not state) and a throw-away token.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from publisher.refused import Refused

LOCAL_HUB = "local"
LOCAL_DIR = ".policyhub-local"


@dataclass(frozen=True)
class LocalHub:
    url: str
    token: str  # made for this run; it may travel to the workers on the RunSpec
    stop: Callable[[], None]


def start_local_hub(root: Path) -> LocalHub:
    """Start the embedded hub on `root`'s `.policyhub-local/hub.sqlite3`."""
    try:
        from policy_hub.embedded import start_embedded_hub
    except ImportError as exc:
        raise Refused(
            f"the embedded local hub needs the hub extra: "
            f"pip install 'policy-release-harness[hub]' ({exc})"
        ) from None
    token = secrets.token_urlsafe(32)
    db = root / LOCAL_DIR / "hub.sqlite3"
    db.parent.mkdir(parents=True, exist_ok=True)
    hub = start_embedded_hub(db, token)
    return LocalHub(hub.url, token, hub.stop)
