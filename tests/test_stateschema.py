"""`publisher.state.schema`: the fast predicates compiled from the state formats' JSON Schemas
accept exactly what jsonschema accepts (hypothesis, on documents near the valid ones), and a
refused document gets jsonschema's message with its JSON path."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings

from publisher.state.folder import DeliveredIndex, DeliveryRecord, StateDir, parse_delivered
from publisher.state.schema import conforms, schema_problem, validator
from tests.schemadocs import examples, mutated

pytestmark = pytest.mark.fast

DIGEST = "sha256:" + "0" * 64
ENTRY = {"delivered_at": "t", "release_sha": "a" * 40, "digest": DIGEST, "outcome": "published"}
DELIVERED = {"version": 1, "policies": {"alpha": {"1.0.0": dict(ENTRY)}}, "note": "kept"}
FRAGMENT = {
    "format": "policyhub-fragment",
    "version": 1,
    "release_sha": "a" * 40,
    "shard": "1/2",
    "change_set": ["policies/alpha/v1.0.0"],
    "share": [],
    "policies": {"alpha": {"1.0.0": dict(ENTRY)}},
    "outcomes": [{"folder": "f", "name": "alpha", "version": "1.0.0", "outcome": "published"}],
}
SAMPLES = [DIGEST, "sha256:xyz", "published", "already-in-hub", "1/2", "a" * 40]


@settings(max_examples=examples(400), deadline=None)
@given(mutated(DELIVERED, SAMPLES))
def test_the_fast_check_of_delivered_json_agrees_with_jsonschema(document: Any) -> None:
    assert conforms("delivered")(document) == validator("delivered").is_valid(document)


@settings(max_examples=examples(400), deadline=None)
@given(mutated(FRAGMENT, SAMPLES))
def test_the_fast_check_of_fragments_agrees_with_jsonschema(document: Any) -> None:
    assert conforms("fragment")(document) == validator("fragment").is_valid(document)


def test_a_refused_document_gets_jsonschemas_message_and_path() -> None:
    document = copy.deepcopy(DELIVERED)
    document["policies"]["alpha"]["1.0.0"]["outcome"] = "lost"
    assert schema_problem(DELIVERED, "delivered") is None
    assert schema_problem(document, "delivered") == (
        "$.policies.alpha['1.0.0'].outcome: 'lost' is not one of ['published', 'already-in-hub']"
    )


def test_numbers_compare_by_value_and_booleans_are_not_numbers() -> None:
    for version, valid in ((1.0, True), (True, False), (1, True), ("1", False)):
        document = {**DELIVERED, "version": version}
        assert conforms("delivered")(document) is valid
        assert validator("delivered").is_valid(document) is valid


@settings(max_examples=examples(300), deadline=None)
@given(mutated(DELIVERED, SAMPLES))
def test_a_valid_delivered_json_is_written_back_as_it_was_read(document: Any) -> None:
    # Entries stay their checked JSON objects until a record is asked for (DeliveredIndex):
    # reading and writing back must not change a byte, whatever fields an entry carries, and a
    # record asked for must be the one the entry describes.
    if not validator("delivered").is_valid(document):
        return
    text = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    index = parse_delivered(text, ".state/delivered.json")
    # A policy without versions (`"alpha": {}`) holds nothing, and is not written back.
    kept = {**document, "policies": {n: v for n, v in document["policies"].items() if v}}
    text = json.dumps(kept, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert index.dumps() == text
    for name, versions in document["policies"].items():
        for version, entry in versions.items():
            record = index.get(name, version)
            assert record == DeliveryRecord.from_json(name, version, entry)
            assert record.to_json() == entry
    assert index.dumps() == text, "asking for records changes nothing either"
    copied = DeliveredIndex(index)
    assert copied.add(DeliveryRecord("zz-new", "9.9.9", "t", "a" * 40, DIGEST, "published"))
    assert ("zz-new", "9.9.9") not in index and copied.dumps() != text


def test_read_delivered_hands_out_a_copy(tmp_path: Any) -> None:
    # Parsed once per process and cached: what a caller adds must not reach the cache.
    state = StateDir(tmp_path)
    (tmp_path / "delivered.json").write_text(json.dumps(DELIVERED))
    first = state.read_delivered()
    assert first.add(DeliveryRecord("zz-new", "9.9.9", "t", "a" * 40, DIGEST, "published"))
    assert ("zz-new", "9.9.9") not in state.read_delivered()
