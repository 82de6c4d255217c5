"""`delivery.deliver_version` on its own, with a stand-in client: the contract's rows for hub
answers that a real hub only gives by accident (a GET that fails whatever it is asked, a 3xx).
The flows themselves are proven against the real hub in test_release_flow.py.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy_checks import PolicyChecker, PolicyFiles
from publisher.hub.client import HubAnswer, HubClient, RetryPolicy
from publisher.release.delivery import deliver_version
from publisher.release.hubchecks import HubOutage, TokenRefused
from publisher.release.outcome import Outcome
from tests.hostilehub import HostileHub, Rule
from tests.policyrepo import definition, metadata

pytestmark = pytest.mark.fast

ALREADY_IN_HUB, NOT_ATTEMPTED = Outcome.ALREADY_IN_HUB, Outcome.NOT_ATTEMPTED
PUBLISH_FAILED, PUBLISHED = Outcome.PUBLISH_FAILED, Outcome.PUBLISHED

SHA = "a" * 40


class StandInClient:
    base_url = "https://hub.example.invalid"
    policy = RetryPolicy()

    def __init__(self, get: HubAnswer, post: HubAnswer) -> None:
        self.get, self.post = get, post
        self.posted: list[tuple[dict[str, Any], str]] = []

    def get_policy(self, name: str, version: str, deadline: float | None = None) -> HubAnswer:
        return self.get

    def publish(self, body: dict[str, Any], key: str, deadline: float | None = None) -> HubAnswer:
        self.posted.append((body, key))
        return self.post


def record(digest: str, **extra: Any) -> dict[str, Any]:
    return {"name": "alpha", "version": "1.0.0", "digest": digest, **extra}


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
    [
        HubAnswer(None, error="the connection broke in the middle of the answer", attempts=6),
        HubAnswer(500),
        HubAnswer(401),
        HubAnswer(200, "<html>proxy login</html>"),
    ],
    ids=["network-error", "500", "401", "200-not-a-record"],
)
def test_a_failed_hub_check_goes_on_to_publish(result: Any, get: HubAnswer) -> None:
    client = StandInClient(get, HubAnswer(201, record(result.digest)))
    out = deliver_version(result, client, SHA)  # type: ignore[arg-type]
    assert out.outcome == PUBLISHED and out.delivery is not None
    [(body, key)] = client.posted
    assert key == f"{SHA}:alpha@1.0.0"
    assert body["digest"] == result.digest and body["release_sha"] == SHA


@pytest.mark.parametrize(
    ("post", "outcome", "reason"),
    [
        (
            HubAnswer(409, record("sha256:" + "0" * 64, error="exists")),
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
        (
            HubAnswer(403, {"error": "forbidden-name", "name": "alpha"}),
            PUBLISH_FAILED,
            "HTTP 403 forbidden-name: this token may not publish alpha",
        ),
        (
            HubAnswer(401, {"error": "token-unavailable", "detail": "the runner gave no ID token"}),
            PUBLISH_FAILED,
            "no hub token: the runner gave no ID token",
        ),
    ],
    ids=[
        "409-other-digest",
        "302",
        "422",
        "403",
        "409-in-flight-to-the-end",
        "403-forbidden-name",
        "401-no-oidc-token",
    ],
)
def test_publish_answers(result: Any, post: HubAnswer, outcome: str, reason: str) -> None:
    refused = TokenRefused(Path(tempfile.mkdtemp()) / "token-refused")
    client = StandInClient(HubAnswer(404), post)
    out = deliver_version(result, client, SHA, token_refused=refused)  # type: ignore[arg-type]
    assert out.outcome == outcome
    assert reason in out.reason
    # Only a refused token stops the versions after it; a name outside the token's is this one's.
    assert bool(refused.known()) == ("refused the token" in reason or "no hub token" in reason)
    assert (out.delivery is not None) == (outcome == ALREADY_IN_HUB)


def test_an_unreachable_hub_check_marks_the_outage_and_sends_nothing(
    result: Any, tmp_path: Any
) -> None:
    outage = HubOutage(tmp_path / "outage")
    dead = HubAnswer(None, error="no complete answer within 30 s", attempts=4, unreachable=True)
    client = StandInClient(dead, HubAnswer(201, record(result.digest)))
    out = deliver_version(result, client, SHA, outage=outage)  # type: ignore[arg-type]
    assert out.outcome == NOT_ATTEMPTED and client.posted == []
    assert "did not answer: no answer (no complete answer within 30 s) after 4 tries" in out.reason
    assert outage.known() is not None
    # Every later version of the run is not attempted, without a request.
    again = deliver_version(result, client, SHA, outage=outage)  # type: ignore[arg-type]
    assert again.outcome == NOT_ATTEMPTED and client.posted == []


def test_a_hub_check_answered_only_503_marks_the_outage_as_a_dead_one_does(
    result: Any, tmp_path: Any
) -> None:
    outage = HubOutage(tmp_path / "outage")
    failing = HubAnswer(503, {"detail": "database unavailable"}, attempts=6, unreachable=True)
    client = StandInClient(failing, HubAnswer(201, record(result.digest)))
    out = deliver_version(result, client, SHA, outage=outage)  # type: ignore[arg-type]
    assert out.outcome == NOT_ATTEMPTED and client.posted == []
    assert (
        "answered every try with an error (HTTP 503: database unavailable (after 6 tries))"
        in out.reason
    )
    assert "taken as down" in (outage.known() or "")


# What a request made of scripted answers comes back as: `unreachable` when every try was a
# 5xx/429 (an outage that still answers), never when any try got another answer.
FAILING = Rule("GET", "", 503, {"detail": "database unavailable"})


@pytest.mark.process
@pytest.mark.parametrize(
    ("rules", "status", "unreachable"),
    [
        ([FAILING], 503, True),
        ([Rule("GET", "", 503, times=1), Rule("GET", "", 429, times=1), FAILING], 503, True),
        ([Rule("GET", "", 503, times=2)], 404, False),  # recovers: the 3rd try is answered
        ([Rule("GET", "", 503, times=1), Rule("GET", "", 501)], 501, False),  # not retried
        ([Rule("GET", "", 409, {"error": "in-flight"})], 409, False),  # busy, not failing
    ],
    ids=["always-503", "503-429-503", "recovers", "501-after-503", "in-flight"],
)
def test_a_request_answered_only_5xx_or_429_is_an_outage(
    rules: list[Rule], status: int, unreachable: bool
) -> None:
    policy = RetryPolicy(attempts=3, backoff=0.01, backoff_max=0.02, deadline=5)
    with HostileHub(rules) as hub:
        client = HubClient(hub.url, None, policy)
        try:
            answer = client.get_policy("alpha", "1.0.0")
        finally:
            client.close()
    assert (answer.status, answer.unreachable) == (status, unreachable), answer


@pytest.mark.process
def test_a_failing_request_stops_trying_once_another_process_found_the_hub_down() -> None:
    policy = RetryPolicy(attempts=6, backoff=30, backoff_max=30, deadline=120)
    with HostileHub([FAILING]) as hub:
        client = HubClient(hub.url, None, policy, hub_down=lambda: True)
        try:
            answer = client.get_policy("alpha", "1.0.0")  # no 30 s pause: one try
        finally:
            client.close()
        assert len(hub.requests) == 1
    assert answer.status == 503 and answer.unreachable and answer.attempts == 1


def test_a_hub_found_down_during_the_hub_check_gets_no_post(result: Any, tmp_path: Any) -> None:
    outage = HubOutage(tmp_path / "outage")

    class DownMeanwhile(StandInClient):
        def get_policy(self, name: str, version: str, deadline: float | None = None) -> HubAnswer:
            outage.mark("another worker found the hub down")
            return HubAnswer(404)

    client = DownMeanwhile(HubAnswer(404), HubAnswer(201, record(result.digest)))
    out = deliver_version(result, client, SHA, outage=outage)  # type: ignore[arg-type]
    assert out.outcome == NOT_ATTEMPTED and client.posted == []


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"name": "alpha", "version": "1.0.0"},
        {"name": "alpha", "version": "1.0.0", "digest": 7},
        {"name": "alpha", "version": "1.0.0", "digest": "sha256:" + "0" * 64 + "\n::error::x"},
        {"name": "beta", "version": "1.0.0", "digest": "sha256:" + "0" * 64},
        {"name": "alpha", "version": "1.0.1", "digest": "sha256:" + "0" * 64},
    ],
    ids=[
        "html",
        "list",
        "no-digest",
        "digest-not-string",
        "digest-injection",
        "other-name",
        "other-version",
    ],
)
def test_answers_that_are_not_a_record_never_count_as_delivered(result: Any, body: Any) -> None:
    as_201 = deliver_version(result, StandInClient(HubAnswer(404), HubAnswer(201, body)), SHA)  # type: ignore[arg-type]
    assert as_201.outcome == PUBLISH_FAILED and as_201.delivery is None
    assert "not with its record of alpha@1.0.0" in as_201.reason
    assert "\n" not in as_201.reason
    conflict = body if not isinstance(body, dict) else {**body, "error": "exists"}
    as_409 = deliver_version(result, StandInClient(HubAnswer(404), HubAnswer(409, conflict)), SHA)  # type: ignore[arg-type]
    assert as_409.outcome == PUBLISH_FAILED and as_409.delivery is None
    assert "\n" not in as_409.reason


def test_other_content_in_the_hub_records_the_local_digest_and_the_hubs(result: Any) -> None:
    other = "sha256:" + "1" * 64
    out = deliver_version(result, StandInClient(HubAnswer(200, record(other)), HubAnswer(500)), SHA)  # type: ignore[arg-type]
    assert out.outcome == ALREADY_IN_HUB and out.delivery is not None
    assert out.delivery.digest == result.digest and out.delivery.hub_digest == other
    assert "DIFFERENT CONTENT" in out.reason


def test_a_try_that_ends_in_an_unexpected_error_is_no_answer() -> None:
    """However a try ends without a status (here a ValueError, as http.client raises on a socket
    the watchdog shut), it is no answer: unreachable, so the version is not attempted rather
    than POSTed after a "hub check" that never answered."""
    from publisher.hub.client import HubClient, RetryPolicy

    class Broken:
        def request(self, *args: object, **kwargs: object) -> object:
            raise ValueError("I/O operation on closed file")

        def close(self) -> None:
            pass

    client = HubClient("http://127.0.0.1:9", None, RetryPolicy(attempts=1))
    client._session = Broken()  # type: ignore[assignment]
    answer = client.get_policy("alpha", "1.0.0")
    assert answer.status is None and answer.unreachable
    assert "I/O operation on closed file" in (answer.error or "")
