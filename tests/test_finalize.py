"""`publisher.release.baseline`: the decision that matters most, whether the baseline advances,
on every branch, without pytest's machinery, git or a hub."""

from __future__ import annotations

import pytest

from publisher.release.baseline import advance_baseline, finalize_release
from publisher.release.plan import ChangedAfterDelivery, ReleasePlan
from publisher.state.folder import DeliveredIndex, DeliveryRecord

pytestmark = pytest.mark.fast

RELEASE = "a" * 40
BASELINE = "b" * 40
DIGEST = "sha256:" + "0" * 64


def plan(
    *folders: str, baseline: str | None = BASELINE, delivered: tuple[str, ...] = ()
) -> ReleasePlan:
    return ReleasePlan(
        release_sha=RELEASE,
        baseline_sha=baseline,
        baseline_warning=None,
        change_set=list(folders),
        to_deliver=[f for f in folders if f not in delivered],
        already_delivered=list(delivered),
    )


def record(name: str, version: str = "1.0.0", digest: str = DIGEST) -> DeliveryRecord:
    return DeliveryRecord(name, version, "2026-12-01T00:00:00Z", RELEASE, digest, "published")


def test_a_complete_change_set_advances_the_baseline() -> None:
    done = finalize_release(
        plan("policies/a/v1.0.0", "policies/b/v1.0.0"),
        DeliveredIndex(),
        [record("a"), record("b")],
        release_is_older=False,
    )
    assert done.baseline.advance and done.baseline.why == f"baseline advanced to {RELEASE[:12]}"
    assert [r.name for r in done.added] == ["a", "b"] and len(done.delivered) == 2


def test_an_incomplete_change_set_keeps_it_and_still_records_what_was_delivered() -> None:
    # A failed version, a crashed worker, a -k subset or a missing shard: all look like this.
    done = finalize_release(
        plan("policies/a/v1.0.0", "policies/b/v1.0.0"),
        DeliveredIndex(),
        [record("a")],
        release_is_older=False,
    )
    assert done.baseline.kept and "retries everything not yet delivered" in done.baseline.why
    assert [r.name for r in done.added] == ["a"]


def test_versions_delivered_by_earlier_releases_count() -> None:
    earlier = DeliveredIndex([record("a")])
    done = finalize_release(
        plan("policies/a/v1.0.0", "policies/b/v1.0.0", delivered=("policies/a/v1.0.0",)),
        earlier,
        [record("b")],
        release_is_older=False,
    )
    assert done.baseline.advance


def test_a_version_changed_after_delivery_keeps_it_though_delivered_json_holds_it() -> None:
    # delivered.json holds a, with other content than the release commit's: not delivered as
    # it stands (docs/contract.md section 3, step 3), while b is recorded all the same.
    edited = plan("policies/a/v1.0.0", "policies/b/v1.0.0", delivered=("policies/a/v1.0.0",))
    edited.changed_after_delivery = [
        ChangedAfterDelivery("policies/a/v1.0.0", "a", "1.0.0", "2026-12-01T00:00:00Z", RELEASE)
    ]
    done = finalize_release(
        edited, DeliveredIndex([record("a")]), [record("b")], release_is_older=False
    )
    assert done.baseline.kept and "changed after delivery (a@1.0.0)" in done.baseline.why
    assert [r.name for r in done.added] == ["b"]


def test_no_policy_changed_since_a_valid_baseline_keeps_it() -> None:
    decision = advance_baseline(plan(), DeliveredIndex(), release_is_older=False)
    assert decision.kept and "no policy changed since" in decision.why


def test_no_policy_at_all_and_no_baseline_advances() -> None:
    assert advance_baseline(plan(baseline=None), DeliveredIndex(), release_is_older=False).advance


def test_an_older_release_commit_never_moves_it_back() -> None:
    done = finalize_release(plan("policies/a/v1.0.0"), DeliveredIndex(), [record("a")], True)
    assert done.baseline.kept and "only moves forward" in done.baseline.why
    assert [r.name for r in done.added] == ["a"], "the delivery is still recorded"


def test_shards_fragments_merge_and_entries_are_never_changed() -> None:
    recorded = DeliveredIndex([record("a", digest="sha256:" + "1" * 64)])
    shard_one, shard_two = [record("a"), record("b")], [record("c")]
    done = finalize_release(
        plan("policies/a/v1.0.0", "policies/b/v1.0.0", "policies/c/v1.0.0"),
        recorded,
        [*shard_one, *shard_two],
        release_is_older=False,
    )
    assert done.baseline.advance
    assert [r.name for r in done.added] == ["b", "c"]
    kept = done.delivered.get("a", "1.0.0")
    assert kept is not None and kept.digest == "sha256:" + "1" * 64


def test_unknown_top_level_fields_survive_the_merge() -> None:
    recorded = DeliveredIndex([record("a")], {"comment": "kept"})
    done = finalize_release(plan("policies/b/v1.0.0"), recorded, [record("b")], False)
    assert done.delivered.extra == {"comment": "kept"}
