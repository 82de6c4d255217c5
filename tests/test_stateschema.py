"""`publisher.stateschema`: the fast predicates compiled from the state formats' JSON Schemas
accept exactly what jsonschema accepts (hypothesis, on documents near the valid ones), and a
refused document gets jsonschema's message with its JSON path."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings

from publisher.stateschema import conforms, schema_problem, validator
from tests.schemadocs import mutated

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


@settings(max_examples=400, deadline=None)
@given(mutated(DELIVERED, SAMPLES))
def test_the_fast_check_of_delivered_json_agrees_with_jsonschema(document: Any) -> None:
    assert conforms("delivered")(document) == validator("delivered").is_valid(document)


@settings(max_examples=400, deadline=None)
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
