"""Test-only fault injection (the FaultInjection middleware), each kind observed the way the
harness's `requests` client meets it: 503s, 429s with Retry-After, dropped connections after
commit, slowness, latency; and only there when asked for.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from policy_hub.app import create_app
from policy_hub.auth import Tokens
from policy_hub.faults import FaultInjection, Faults, FaultSpec
from policy_hub.sqlite_store import SqliteStore
from tests.test_hub_api import assert_json_error, auth, policy_body


def test_the_middleware_is_installed_only_with_faults() -> None:
    store, tokens = SqliteStore(Path("unused.sqlite3")), Tokens()
    plain = create_app(store, tokens)
    faulty = create_app(store, tokens, Faults(FaultSpec.parse("rate_503=1")))
    assert FaultInjection not in [m.cls for m in plain.user_middleware]
    assert FaultInjection in [m.cls for m in faulty.user_middleware]


def test_faults_are_off_by_default_and_announced_when_on(hub, hub_factory) -> None:
    assert "fault injection" not in hub.stderr()
    faulty = hub_factory("latency_ms=1,seed=3")
    assert "TEST-ONLY fault injection active: latency_ms=1,seed=3" in faulty.stderr()


def test_rate_503_answers_before_any_effect(hub_factory) -> None:
    hub = hub_factory("rate_503=1")
    response = requests.post(
        f"{hub.url}/policies", json=policy_body(), headers=auth(hub.token, "k"), timeout=10
    )
    assert_json_error(response, 503, "unavailable")
    read = requests.get(f"{hub.url}/policies/a/1.0.0", headers=auth(hub.token), timeout=10)
    assert_json_error(read, 503)
    assert hub.records() == []
    # The key was never claimed: once the hub is healthy the same request creates.
    hub.restart()
    response = requests.post(
        f"{hub.url}/policies", json=policy_body(), headers=auth(hub.token, "k"), timeout=10
    )
    assert response.status_code == 201


def test_rate_429_carries_retry_after(hub_factory) -> None:
    hub = hub_factory("rate_429=1,retry_after=7")
    response = requests.post(
        f"{hub.url}/policies", json=policy_body(), headers=auth(hub.token, "k"), timeout=10
    )
    assert_json_error(response, 429, "rate-limited")
    assert response.headers["Retry-After"] == "7"
    assert hub.records() == []


def test_drop_after_commit_breaks_the_connection_but_keeps_the_record(hub_factory) -> None:
    hub = hub_factory("drop_after_commit=1")
    body = policy_body()
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        requests.post(f"{hub.url}/policies", json=body, headers=auth(hub.token, "k"), timeout=10)
    assert hub.records() == [("require-tags", "1.2.0", body["digest"])]
    assert hub.created("require-tags", "1.2.0") == 1
    assert "Traceback" not in hub.stderr()
    # The retry with the same key gets the first answer, and nothing is created twice.
    hub.restart()
    replay = requests.post(
        f"{hub.url}/policies", json=body, headers=auth(hub.token, "k"), timeout=10
    )
    assert replay.status_code == 201
    assert replay.json()["digest"] == body["digest"]
    assert hub.created("require-tags", "1.2.0") == 1


def test_slow_answer_times_the_client_out_after_commit(hub_factory) -> None:
    hub = hub_factory("slow_rate=1,slow_ms=2000")
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(
            f"{hub.url}/policies", json=policy_body(), headers=auth(hub.token, "k"), timeout=0.5
        )
    assert hub.created("require-tags", "1.2.0") == 1


def test_latency_is_added_to_policy_requests(hub_factory) -> None:
    # Only that the fault is injected (an answer cannot come back before its sleep ends); how
    # the hub behaves under concurrent clients is measured by bench/hub_concurrency.py, not
    # asserted here: wall-clock bounds in tests flake on a loaded machine.
    hub = hub_factory("latency_ms=250")
    url = f"{hub.url}/policies/require-tags/1.0.0"
    started = time.monotonic()
    assert requests.get(url, headers=auth(hub.token), timeout=10).status_code == 404
    assert time.monotonic() - started >= 0.25


def test_seeded_faults_mix_but_never_create_twice(hub_factory) -> None:
    hub = hub_factory("rate_503=0.3,rate_429=0.3,retry_after=0,drop_after_commit=0.3,seed=7")
    body = policy_body()
    statuses: list[str] = []
    for _ in range(30):
        try:
            response = requests.post(
                f"{hub.url}/policies", json=body, headers=auth(hub.token, "same"), timeout=10
            )
            statuses.append(str(response.status_code))
        except requests.RequestException:
            statuses.append("dropped")
    assert {"503", "429", "201", "dropped"} <= set(statuses)
    assert hub.created("require-tags", "1.2.0") == 1
    assert len(hub.records()) == 1


def test_faults_spare_health_and_the_document_but_not_anonymous_requests(hub_factory) -> None:
    hub = hub_factory("rate_503=1")
    assert requests.get(f"{hub.url}/health", timeout=10).status_code == 200
    assert requests.get(f"{hub.url}/openapi.json", timeout=10).status_code == 200
    # Decided as the request arrives, before the hub looks at it, as a busy proxy would.
    anonymous = requests.get(f"{hub.url}/policies/a/1.0.0", timeout=10)
    assert_json_error(anonymous, 503, "unavailable")


def test_drop_after_commit_spares_answers_that_committed_nothing(hub_factory) -> None:
    hub = hub_factory("drop_after_commit=1")
    body = policy_body()
    wrong_digest = policy_body(digest="sha256:" + "0" * 64)
    headers = auth(hub.token, "k")
    url = f"{hub.url}/policies"
    refused = requests.post(url, json=wrong_digest, headers=headers, timeout=10)
    assert_json_error(refused, 422, "digest-mismatch")
    read = requests.get(f"{url}/require-tags/1.2.0", headers=auth(hub.token), timeout=10)
    assert_json_error(read, 404, "not-found")
    # A 201, its replay and a 409 `exists` all report a commit: each is cut off.
    for key in ("k", "k", "other-key"):
        with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
            requests.post(url, json=body, headers=auth(hub.token, key), timeout=10)
    assert hub.created("require-tags", "1.2.0") == 1
    assert "Traceback" not in hub.stderr()


def test_slow_answer_to_a_read(hub_factory) -> None:
    hub = hub_factory("slow_rate=1,slow_ms=2000")
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{hub.url}/policies/require-tags/1.2.0", headers=auth(hub.token), timeout=0.5)


def test_a_seed_gives_the_same_faults_again(hub_factory) -> None:
    spec = (
        "rate_503=0.3,rate_429=0.3,retry_after=0,drop_after_commit=0.5,slow_rate=0.3,slow_ms=1,"
        "seed=7"
    )

    def outcomes(hub) -> list[str]:
        seen = []
        for i in range(24):
            try:
                if i % 2:
                    response = requests.get(
                        f"{hub.url}/policies/require-tags/1.2.0",
                        headers=auth(hub.token),
                        timeout=10,
                    )
                else:
                    response = requests.post(
                        f"{hub.url}/policies",
                        json=policy_body(),
                        headers=auth(hub.token, f"k{i % 3}"),
                        timeout=10,
                    )
                seen.append(str(response.status_code))
            except requests.RequestException:
                seen.append("dropped")
        return seen

    # Each request draws only after the previous one is answered, so the order of draws is
    # fixed: two hubs with the same seed and the same requests fault alike.
    first = outcomes(hub_factory(spec))
    assert outcomes(hub_factory(spec)) == first
    assert {"503", "429", "dropped"} <= set(first)
