"""The outcomes of a policy version in a run: the one definition, as reports, the summary table,
fragments and `delivered.json` spell them."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    VALID = "valid"  # author mode: the checks pass
    INVALID = "invalid"  # a check failed; nothing sent
    PUBLISHED = "published"  # the hub created it in this run
    ALREADY_IN_HUB = "already-in-hub"  # the hub already held it (GET 200 or POST 409)
    PUBLISH_FAILED = "publish-failed"  # the hub did not take it
    NOT_ATTEMPTED = "not-attempted"  # not sent: the token was refused, or the hub is down
    WOULD_PUBLISH = "would-publish"  # --dry-run: new in the hub and valid
    NOT_RUN = "not-run"  # in the plan, but no item ran (deselected, interrupted, shard missing)

    @property
    def delivered(self) -> bool:
        return self in DELIVERED

    @property
    def passed(self) -> bool:
        return self in (Outcome.VALID, Outcome.WOULD_PUBLISH) or self.delivered


# What `delivered.json` may record.
DELIVERED = frozenset({Outcome.PUBLISHED, Outcome.ALREADY_IN_HUB})
