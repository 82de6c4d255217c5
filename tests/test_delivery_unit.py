"""`release.deliver_version` on its own, with a stand-in client: the contract's rows for hub
answers that a real hub only gives by accident (a GET that fails whatever it is asked, a 3xx).
The flows themselves are proven against the real hub in test_release_flow.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from policy_checks import PolicyChecker, PolicyFiles
from publisher.hubclient import HubAnswer
from publisher.release import ALREADY_IN_HUB, PUBLISH_FAILED, PUBLISHED, deliver_version
from tests.policyrepo import definition, metadata

SHA = "a" * 40


class StandInClient:
    def __init__(self, get: HubAnswer, post: HubAnswer) -> None:
        self.get, self.post = get, post
        self.posted: list[tuple[dict[str, Any], str]] = []

    def get_policy(self, name: str, version: str) -> HubAnswer:
        return self.get

    def publish(self, body: dict[str, Any], key: str) -> HubAnswer:
        self.posted.append((body, key))
        return self.post


@pytest.fixture(scope="module")
def result() -> Any:
    files = PolicyFiles(
        "policies/alpha/v1.0.0",
        json.dumps(metadata("alpha", "1.0.0")).encode(),
        yaml.safe_dump(definition()).encode(),
    )
    checked = PolicyChecker.load().check(files)
    assert checked.ok
    return checked


@pytest.mark.parametrize(
    "get",
    [HubAnswer(None, error="ConnectionError: refused", attempts=6), HubAnswer(500), HubAnswer(401)],
    ids=["network-error", "500", "401"],
)
def test_a_failed_hub_check_goes_on_to_publish(result: Any, get: HubAnswer) -> None:
    client = StandInClient(get, HubAnswer(201, {"digest": result.digest}))
    out = deliver_version(result, client, SHA)  # type: ignore[arg-type]
    assert out.outcome == PUBLISHED and out.delivery is not None
    [(body, key)] = client.posted
    assert key == f"{SHA}:alpha@1.0.0"
    assert body["digest"] == result.digest and body["release_sha"] == SHA


@pytest.mark.parametrize(
    ("post", "outcome", "reason"),
    [
        (
            HubAnswer(409, {"error": "exists", "digest": "sha256:" + "0" * 64}),
            ALREADY_IN_HUB,
            "DIFFERENT CONTENT",
        ),
        (HubAnswer(302), PUBLISH_FAILED, "POST is never redirected"),
        (
            HubAnswer(422, {"error": "idempotency-key-reused", "detail": "other body"}),
            PUBLISH_FAILED,
            "HTTP 422: other body",
        ),
        (HubAnswer(403, {"error": "forbidden"}), PUBLISH_FAILED, "refused the token (HTTP 403)"),
        (HubAnswer(409, {"error": "in-flight"}), PUBLISH_FAILED, "HTTP 409"),
    ],
    ids=["409-other-digest", "302", "422", "403", "409-in-flight-to-the-end"],
)
def test_publish_answers(result: Any, post: HubAnswer, outcome: str, reason: str) -> None:
    out = deliver_version(result, StandInClient(HubAnswer(404), post), SHA)  # type: ignore[arg-type]
    assert out.outcome == outcome
    assert reason in out.reason
    assert (out.delivery is not None) == (outcome == ALREADY_IN_HUB)
