"""The end of a release, without pytest: which deliveries are merged into `delivered.json`, and
whether and where the baseline moves (docs/contract.md section 3, step 5). Plain functions over
plain data; the controller (`publisher/plugin/controller.py`) reads the state, calls
`finalize_release` and writes what it decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from publisher.release.plan import ReleasePlan, plan_is_complete
from publisher.state.folder import DeliveredIndex, DeliveryRecord


@dataclass(frozen=True)
class BaselineDecision:
    """Whether the baseline moves to the release commit, and if not, why (for the summary)."""

    advance: bool
    why: str  # a line for the summary either way

    @property
    def kept(self) -> bool:
        return not self.advance


def advance_baseline(
    plan: ReleasePlan, delivered: DeliveredIndex, release_is_older: bool
) -> BaselineDecision:
    """The baseline advances to the release commit if and only if every version of the change
    set is in `delivered` (the merged index), with two refinements of the contract's invariant:

    - it only ever moves forward along history: a release commit older than the recorded
      baseline (`release_is_older`) leaves it where it is;
    - with a valid baseline and no policy change since, it stays: it is as good as the release
      commit, and rewriting it would make every run a new state commit.

    Interrupted runs, crashed workers, `-k`/`--lf` subsets, failed shards, a collection error:
    none is a case of its own; the versions they did not deliver decide.
    """
    short = plan.release_sha[:12]
    if release_is_older:
        return BaselineDecision(
            False,
            f"baseline stays at {(plan.baseline_sha or 'the recorded one')[:12]}: the release "
            "commit is older than it, and the baseline only moves forward",
        )
    if plan.baseline_sha is not None and not plan.change_set:
        return BaselineDecision(
            False, f"baseline stays at {plan.baseline_sha[:12]}: no policy changed since"
        )
    if plan.changed_after_delivery:
        named = ", ".join(f"{c.name}@{c.version}" for c in plan.changed_after_delivery[:10])
        return BaselineDecision(
            False,
            f"baseline kept: changed after delivery ({named}); the next release says it again "
            "until the working tree agrees with what was published",
        )
    if not plan_is_complete(plan, delivered):
        return BaselineDecision(
            False, "baseline kept: the next release retries everything not yet delivered"
        )
    return BaselineDecision(True, f"baseline advanced to {short}")


@dataclass(frozen=True)
class Finalized:
    """What a release's end decided: the merged index, what it adds, and the baseline."""

    delivered: DeliveredIndex
    added: list[DeliveryRecord]
    baseline: BaselineDecision


def finalize_release(
    plan: ReleasePlan,
    recorded: DeliveredIndex,
    deliveries: Iterable[DeliveryRecord],
    release_is_older: bool,
) -> Finalized:
    """Merge this run's `deliveries` (from items, or from shards' fragments) into the `recorded`
    index (entries are only ever added, never changed) and decide the baseline on the result."""
    merged = DeliveredIndex(recorded)
    added = [record for record in deliveries if merged.add(record)]
    return Finalized(merged, added, advance_baseline(plan, merged, release_is_older))
