"""The one record of a version's run (`ItemOutcome`): one serialisation that the xdist reports, the
shards' fragments and the controller share, a round trip that cannot drift when a field is added."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from policy_checks import Finding
from publisher.release.outcome import ItemOutcome, Outcome
from publisher.release.shard import Fragment, FragmentError, Shard, read_fragment, write_fragment
from publisher.state.folder import DeliveredIndex, DeliveryRecord

pytestmark = pytest.mark.fast

SHA = "a" * 40


def every_field_set() -> ItemOutcome:
    """An outcome whose every field differs from its default, so a field the round trip drops
    shows."""
    delivery = DeliveryRecord(
        "alpha", "1.0.0", "2026-12-03T10:00:00Z", SHA, "sha256:" + "1" * 64,
        Outcome.PUBLISHED, hub_digest="sha256:" + "2" * 64, extra={"note": "kept"},
    )  # fmt: skip
    out = ItemOutcome(
        folder="policies/alpha/v1.0.0",
        name="alpha",
        version="1.0.0",
        outcome=Outcome.PUBLISHED,
        reason="published <b>",
        digest="sha256:" + "1" * 64,
        hub_digest="sha256:" + "2" * 64,
        get_status=404,
        post_status=201,
        findings=[Finding("policies/alpha/v1.0.0/metadata.json", "m", 3, "$.a", "h", "r")],
        delivery=delivery,
        tests="3/4",
    )
    defaults = ItemOutcome("f", "n", "v", "o")
    for field in dataclasses.fields(ItemOutcome):
        assert getattr(out, field.name) != getattr(defaults, field.name), field.name
    return out


def test_the_record_survives_json_whole() -> None:
    out = every_field_set()
    data = json.loads(json.dumps(out.to_json()))
    assert set(data) == {f.name for f in dataclasses.fields(ItemOutcome)}
    assert data["outcome"] == "published" and type(data["outcome"]) is str  # execnet ships it
    back = ItemOutcome.from_json(data)
    assert back == out
    assert back.delivery is not None and back.delivery.extra == {"note": "kept"}


def test_an_older_record_takes_the_defaults_and_a_newer_key_is_left_out() -> None:
    back = ItemOutcome.from_json(
        {"folder": "f", "name": "n", "version": "v", "outcome": "valid", "future": 1}
    )
    assert back == ItemOutcome("f", "n", "v", "valid")


def fragment_with(outcome: ItemOutcome) -> Fragment:
    assert outcome.delivery is not None
    return Fragment(
        release_sha=SHA,
        shard=Shard(1, 2),
        change_set=[outcome.folder],
        share=[outcome.folder],
        deliveries=DeliveredIndex([outcome.delivery]),
        outcomes=[outcome],
    )


def test_a_fragment_keeps_the_whole_record_and_one_delivery(tmp_path: Path) -> None:
    out = every_field_set()
    path = tmp_path / "fragment.json"
    write_fragment(path, fragment_with(out))
    data = json.loads(path.read_text(encoding="utf-8"))
    assert "delivery" not in data["outcomes"][0]  # kept once, in `policies` as delivered.json
    [back] = read_fragment(path).outcomes
    assert back == out


def test_a_fragment_with_a_malformed_finding_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "fragment.json"
    write_fragment(path, fragment_with(every_field_set()))
    data = json.loads(path.read_text(encoding="utf-8"))
    data["outcomes"][0]["findings"] = [{"file": "x", "message": "m", "evil": True}]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(FragmentError, match=r"fragment\.json: not a valid fragment: .*findings"):
        read_fragment(path)
