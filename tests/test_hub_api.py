"""The Policy Hub API (docs/contract.md section 5) against a real hub process over loopback HTTP,
with the database as the witness: auth, immutability, idempotency, races, bad input. The tests
that reach the database run on both engines (`on_both_engines`: SQLite and PostgreSQL).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policy_checks import canonical_json, policy_digest
from policy_hub.answers import Answer, key_reused
from policy_hub.attest import Signer
from policy_hub.sqlite_store import SqliteStore
from policy_hub.store import Provenance, settled, sha256_of_body, stored_answer
from tests.hubprocess import HubProcess, on_both_engines

RELEASE_SHA = "0123456789abcdef0123456789abcdef01234567"


def policy_body(name: str = "require-tags", version: str = "1.2.0", **changes: Any) -> dict:
    metadata = {"name": name, "version": version, "description": "d", "owner": "o"}
    definition = {"apiVersion": "policyhub/v1", "kind": "PolicyDefinition", "spec": {"n": 1}}
    metadata.update(changes.pop("metadata", {}))
    body = {
        "name": name,
        "version": version,
        "metadata": metadata,
        "definition": changes.pop("definition", definition),
        "release_sha": RELEASE_SHA,
    }
    body["digest"] = policy_digest(body["metadata"], body["definition"])
    body.update(changes)
    return body


def auth(token: str, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def post(hub: HubProcess, body: Any, key: str | None = "k1", **kwargs: Any) -> requests.Response:
    return requests.post(
        f"{hub.url}/policies", json=body, headers=auth(hub.token, key), timeout=10, **kwargs
    )


def assert_json_error(response: requests.Response, status: int, error: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and isinstance(body["detail"], str)
    if error is not None:
        assert body["error"] == error
    return body


# -- the contract table ------------------------------------------------------------------


@pytest.fixture(scope="module")
def refusing_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """One hub for this module's refusals: each stores nothing (and those that could, check
    that they did not), so they share a process instead of starting 36 (~0.8 s each)."""
    with HubProcess(tmp_path_factory.mktemp("refusing-hub")) as process:
        yield process


@on_both_engines
def test_health_needs_no_token(hub: HubProcess) -> None:
    response = requests.get(f"{hub.url}/health", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@on_both_engines
def test_create_then_get_returns_the_stored_record(hub: HubProcess) -> None:
    body = policy_body()
    created = post(hub, body, key=f"{RELEASE_SHA}:require-tags@1.2.0")
    assert created.status_code == 201, created.text
    record = created.json()
    assert {k: record[k] for k in ("name", "version", "digest", "metadata", "definition")} == {
        k: body[k] for k in ("name", "version", "digest", "metadata", "definition")
    }
    assert record["published_at"].endswith("Z")

    fetched = requests.get(
        f"{hub.url}/policies/require-tags/1.2.0", headers=auth(hub.read_token), timeout=10
    )
    assert fetched.status_code == 200
    assert fetched.json() == record
    assert hub.records() == [("require-tags", "1.2.0", body["digest"])]
    assert hub.created("require-tags", "1.2.0") == 1


@on_both_engines
def test_unknown_version_is_404_json(hub: HubProcess) -> None:
    response = requests.get(
        f"{hub.url}/policies/require-tags/9.9.9", headers=auth(hub.read_token), timeout=10
    )
    assert_json_error(response, 404, "not-found")


@on_both_engines
def test_versions_of_a_policy_in_semver_order(hub: HubProcess) -> None:
    for version in ("1.10.0", "1.2.0", "1.2.0-rc.1"):
        assert post(hub, policy_body(version=version), key=version).status_code == 201
    response = requests.get(f"{hub.url}/policies/require-tags", headers=auth(hub.token), timeout=10)
    assert response.json() == {
        "name": "require-tags",
        "versions": ["1.2.0-rc.1", "1.2.0", "1.10.0"],
    }
    missing = requests.get(f"{hub.url}/policies/nothing", headers=auth(hub.token), timeout=10)
    assert_json_error(missing, 404, "not-found")


@on_both_engines
def test_second_create_is_409_with_the_stored_digest(hub: HubProcess) -> None:
    first = policy_body()
    assert post(hub, first, key="a").status_code == 201
    other = policy_body(metadata={"description": "different content"})
    response = post(hub, other, key="b")
    body = assert_json_error(response, 409, "exists")
    assert (body["name"], body["version"], body["digest"]) == (
        "require-tags",
        "1.2.0",
        first["digest"],
    )
    assert hub.records() == [("require-tags", "1.2.0", first["digest"])]


@on_both_engines
def test_digest_mismatch_is_422_and_stores_nothing(hub: HubProcess) -> None:
    response = post(hub, policy_body(digest="sha256:" + "0" * 64))
    assert_json_error(response, 422, "digest-mismatch")
    assert hub.records() == []


@pytest.mark.parametrize(
    "metadata, named",
    [
        ({"name": "another-policy"}, ["metadata.name"]),
        ({"version": "1.2.1"}, ["metadata.version"]),
        ({"name": "x", "version": "9.9.9"}, ["metadata.name", "metadata.version"]),
        ({"version": 1.2}, ["metadata.version"]),
        ({"name": None}, ["metadata.name"]),
    ],
    ids=["name", "version", "both", "not-a-string", "null"],
)
def test_metadata_naming_another_version_is_422_and_stores_nothing(
    hub: HubProcess, metadata: dict[str, Any], named: list[str]
) -> None:
    # The digest is right: the body is consistent with itself but not with what it names.
    response = post(hub, policy_body(metadata=metadata), key="k")
    body = assert_json_error(response, 422, "metadata-mismatch")
    assert [part.split(" ")[0] for part in body["detail"].split("; ")] == named
    assert hub.records() == []
    # Refused before the key is claimed: the corrected body may use the same key.
    assert post(hub, policy_body(), key="k").status_code == 201
    outcomes = hub.query("SELECT status, outcome FROM audit ORDER BY id")
    assert outcomes == [(422, "metadata-mismatch"), (201, "created")]


def test_metadata_without_name_or_version_is_accepted(hub: HubProcess) -> None:
    # A repository may bring its own metadata schema: only a disagreement is refused.
    body = policy_body()
    del body["metadata"]["name"], body["metadata"]["version"]
    body["digest"] = policy_digest(body["metadata"], body["definition"])
    assert post(hub, body).status_code == 201


def test_a_long_metadata_value_is_cut_in_the_detail(hub: HubProcess) -> None:
    response = post(hub, policy_body(metadata={"name": "n" * 5000}))
    detail = assert_json_error(response, 422, "metadata-mismatch")["detail"]
    assert detail.startswith('metadata.name is "nnn') and len(detail) < 120


def test_missing_idempotency_key_is_422(hub: HubProcess) -> None:
    assert_json_error(post(hub, policy_body(), key=None), 422, "invalid")
    assert hub.records() == []


# -- idempotency -------------------------------------------------------------------------


@on_both_engines
def test_same_key_same_body_replays_the_first_answer(hub: HubProcess) -> None:
    first = post(hub, policy_body(), key="k")
    again = post(hub, policy_body(), key="k")
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert hub.created("require-tags", "1.2.0") == 1
    assert len(hub.records()) == 1


@on_both_engines
def test_a_non_ascii_body_is_the_same_body_however_its_json_is_written(hub: HubProcess) -> None:
    body = policy_body(metadata={"description": "Prüft, dass jede Ressource Tags trägt ✓"})
    first = raw_post(hub, json.dumps(body, ensure_ascii=False).encode())
    again = raw_post(hub, json.dumps(body, indent=2).encode())  # \u escapes, other spacing
    assert first.status_code == 201, first.text
    assert (again.status_code, again.content) == (first.status_code, first.content)
    # Kept as the digest reads it: canonical JSON, UTF-8 as is.
    stored = hub.query("SELECT metadata FROM policies")
    assert stored == [(canonical_json(body["metadata"]).decode(),)]


@on_both_engines
def test_replay_of_a_409_is_the_same_409(hub: HubProcess) -> None:
    assert post(hub, policy_body(), key="first").status_code == 201
    conflict = post(hub, policy_body(), key="second")
    replay = post(hub, policy_body(), key="second")
    assert conflict.status_code == replay.status_code == 409
    assert conflict.json() == replay.json()


@on_both_engines
def test_same_key_different_body_is_422(hub: HubProcess) -> None:
    assert post(hub, policy_body(), key="k").status_code == 201
    other = policy_body(version="2.0.0")
    assert_json_error(post(hub, other, key="k"), 422, "idempotency-key-reused")
    assert [r[:2] for r in hub.records()] == [("require-tags", "1.2.0")]


def test_both_engines_settle_an_earlier_use_of_a_key_alike() -> None:
    """`store.settled`, the decision both engines make on a key they already hold (each only
    reads the row its own way): another body is 422, an answer is replayed as it was kept, and
    no answer yet is for the engine to call in flight (or a dead claim to take over)."""
    answer = Answer(409, {"error": "exists", "detail": "é"}, "exists")
    kept = stored_answer(answer)
    assert settled("a", "b", 409, kept) == Answer(422, key_reused().body, "key-reused")
    assert settled("a", "a", 409, kept) == Answer(409, answer.body, "replayed")
    assert settled("a", "a", None, None) is None


def test_in_flight_key_is_409_at_the_store(tmp_path) -> None:
    # HTTP timing cannot hold a key in flight reliably, so two store calls stand in for
    # two requests: the first has claimed the key and not finished yet.
    store = SqliteStore(tmp_path / "hub.sqlite3")
    store.initialize()
    assert store.claim("key", "sha-of-body") is None
    second = store.claim("key", "sha-of-body")
    assert second is not None
    assert (second.status, second.body["error"]) == (409, "in-flight")
    assert store.claim("key", "another-body").body["error"] == "idempotency-key-reused"
    provenance = Provenance({"kind": "token", "label": None}, Signer(Ed25519PrivateKey.generate()))
    created = store.create("key", policy_body(), provenance)
    assert created.status == 201
    replay = store.claim("key", "sha-of-body")
    assert (replay.status, replay.outcome) == (201, "replayed")


def test_in_flight_key_is_409_over_http(hub: HubProcess) -> None:
    body = policy_body()
    # Claim the key in the hub's own file the way a concurrent request would have.
    assert SqliteStore(hub.db_path).claim("held", sha256_of_body(body)) is None
    assert_json_error(post(hub, body, key="held"), 409, "in-flight")
    assert hub.records() == []


def race(hub: HubProcess, keys: list[str]) -> list[requests.Response]:
    barrier = threading.Barrier(len(keys))
    results: list[requests.Response] = []

    def client(key: str) -> None:
        barrier.wait()
        results.append(post(hub, policy_body(), key=key))

    threads = [threading.Thread(target=client, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@on_both_engines
def test_twenty_racers_with_different_keys_create_once(hub: HubProcess) -> None:
    results = race(hub, [f"key-{i}" for i in range(20)])
    statuses = sorted(r.status_code for r in results)
    assert statuses == [201] + [409] * 19
    assert {r.json()["error"] for r in results if r.status_code == 409} == {"exists"}
    assert hub.created("require-tags", "1.2.0") == 1
    assert len(hub.records()) == 1


@on_both_engines
def test_twenty_racers_with_the_same_key_create_once(hub: HubProcess) -> None:
    results = race(hub, ["same"] * 20)
    # Each either got the (replayed) 201 or was told the key is in flight.
    assert {r.status_code for r in results} <= {201, 409}
    assert all(r.json()["error"] == "in-flight" for r in results if r.status_code == 409)
    assert any(r.status_code == 201 for r in results)
    assert hub.created("require-tags", "1.2.0") == 1
    assert len(hub.records()) == 1


@on_both_engines
def test_records_survive_a_restart_and_a_crash(hub: HubProcess) -> None:
    assert post(hub, policy_body(), key="k").status_code == 201
    hub.restart()
    assert (
        requests.get(
            f"{hub.url}/policies/require-tags/1.2.0", headers=auth(hub.token), timeout=10
        ).status_code
        == 200
    )
    assert post(hub, policy_body(version="2.0.0"), key="k2").status_code == 201
    hub.kill()
    hub.start()
    assert post(hub, policy_body(version="2.0.0"), key="k2").status_code == 201  # replay
    assert hub.created("require-tags", "2.0.0") == 1
    assert [r[1] for r in hub.records()] == ["1.2.0", "2.0.0"]


# -- auth --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-token", "Bearer ä", "bearer  "],
)
def test_missing_or_wrong_token_is_401(refusing_hub: HubProcess, authorization: str | None) -> None:
    headers = {"Idempotency-Key": "k"}
    if authorization is not None:
        headers["Authorization"] = authorization
    for method, path in (
        ("GET", "/policies/a/1.0.0"),
        ("GET", "/policies/a"),
        ("POST", "/policies"),
    ):
        response = requests.request(
            method, f"{refusing_hub.url}{path}", json=policy_body(), headers=headers, timeout=10
        )
        assert_json_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert refusing_hub.records() == []


@on_both_engines
def test_read_token_may_read_but_not_write(hub: HubProcess) -> None:
    response = requests.post(
        f"{hub.url}/policies", json=policy_body(), headers=auth(hub.read_token, "k"), timeout=10
    )
    assert_json_error(response, 403, "forbidden")
    assert hub.records() == []
    read = requests.get(f"{hub.url}/policies/a/1.0.0", headers=auth(hub.read_token), timeout=10)
    assert read.status_code == 404


def test_tokens_never_reach_the_log(hub: HubProcess) -> None:
    post(hub, policy_body())
    requests.get(f"{hub.url}/policies/a/1.0.0", headers=auth(hub.read_token), timeout=10)
    requests.get(f"{hub.url}/policies/a/1.0.0", headers=auth("wrong-token"), timeout=10)
    hub.stop()
    log = hub.stderr()
    assert "POST /policies" in log  # the access log is on, and says only method and path
    assert hub.token not in log and hub.read_token not in log and "wrong-token" not in log


# -- bad input: always a 4xx JSON error, never a 500, never a record ---------------------


def raw_post(hub: HubProcess, data: bytes, **headers: str) -> requests.Response:
    return requests.post(
        f"{hub.url}/policies",
        data=data,
        headers={**auth(hub.token, "k"), "Content-Type": "application/json", **headers},
        timeout=30,
    )


def _raw_with(metadata: bytes) -> bytes:
    return (
        b'{"name":"a","version":"1.0.0","definition":{},"release_sha":"'
        + RELEASE_SHA.encode()
        + b'","digest":"sha256:'
        + b"0" * 64
        + b'","metadata":'
        + metadata
        + b"}"
    )


BAD_BODIES = {
    "malformed-json": b'{"name": "a", ',
    "not-an-object": b"[1, 2, 3]",
    "empty": b"",
    "metadata-list": _raw_with(b"[]"),
    "metadata-string": _raw_with(b'"x"'),
    "nan": _raw_with(b'{"x": NaN}'),
    "infinity": _raw_with(b'{"x": Infinity}'),
    "float-overflow": _raw_with(b'{"x": 1e999}'),
    "huge-integer": _raw_with(b'{"x": ' + b"9" * 5000 + b"}"),
    "deep-nesting": _raw_with(b"[" * 100_000 + b"]" * 100_000),
    "deep-objects": _raw_with(b'{"a":' * 5000 + b"1" + b"}" * 5000),
    "not-utf8": _raw_with(b'{"x": "\xff\xfe"}'),
    "extra-field": json.dumps({**policy_body(), "admin": True}).encode(),
    "bad-name": json.dumps(policy_body(name="Bad_Name")).encode(),
    "name-newline": json.dumps(policy_body(name="abc\n")).encode(),
    "bad-version": json.dumps(policy_body(version="v1.2")).encode(),
    "bad-release-sha": json.dumps(policy_body(release_sha="HEAD")).encode(),
    "bad-digest": json.dumps(policy_body(digest="md5:abc")).encode(),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_body_is_a_4xx_json_error(refusing_hub: HubProcess, case: str) -> None:
    # A key of its own: the shared hub must refuse the body, not a key another case used.
    response = raw_post(refusing_hub, BAD_BODIES[case], **{"Idempotency-Key": f"bad-{case}"})
    assert 400 <= response.status_code < 500, response.text
    assert_json_error(response, response.status_code)
    assert response.json()["error"] != "idempotency-key-reused"
    assert refusing_hub.records() == []


def test_a_version_with_another_scripts_digit_is_422_as_the_harness_refuses_it(
    hub: HubProcess,
) -> None:
    # `\d` would take the Arabic-Indic digit; the hub's pattern is the harness's, [0-9].
    version = "1\u0661.0.0"
    body = assert_json_error(post(hub, policy_body(version=version)), 422, "invalid")
    assert [p["loc"] for p in body["errors"]] == [["body", "version"]]
    url = f"{hub.url}/policies/require-tags/{version}"
    assert_json_error(requests.get(url, headers=auth(hub.token), timeout=10), 422, "invalid")
    assert hub.records() == []


def test_oversize_body_is_413_by_content_length_and_by_streaming(hub: HubProcess) -> None:
    big = b" " * (2 * 1024 * 1024 + 1)
    assert_json_error(raw_post(hub, big), 413, "too-large")

    def chunks():  # no Content-Length: requests sends it chunked
        for _ in range(40):
            yield b" " * 100_000

    assert_json_error(raw_post(hub, chunks()), 413, "too-large")  # type: ignore[arg-type]
    assert hub.records() == []


@pytest.mark.parametrize(
    "path",
    [
        "/policies/..%2f..%2fetc/1.0.0",
        "/policies/a%2Fb/1.0.0",
        # The client resolves dot segments: this is GET /nowhere ("/policies/.." is "/", the
        # web pages' index, tests/test_hub_pages.py).
        "/policies/../nowhere",
        "/policies/%2e%2e/1.0.0",
        "/policies/Require-Tags/1.0.0",
        "/policies/a/v1.0.0",
        "/policies/a/1.0.0%0a",
        "/policies/a/1.0.0/extra",
        "/policies/" + "a" * 65,
        "/nowhere",
    ],
)
def test_path_tricks_are_4xx_json(refusing_hub: HubProcess, path: str) -> None:
    response = requests.get(
        f"{refusing_hub.url}{path}", headers=auth(refusing_hub.token), timeout=10
    )
    assert 400 <= response.status_code < 500
    assert_json_error(response, response.status_code)


def test_wrong_method_is_405_json(refusing_hub: HubProcess) -> None:
    response = requests.delete(
        f"{refusing_hub.url}/policies/a/1.0.0", headers=auth(refusing_hub.token), timeout=10
    )
    assert_json_error(response, 405, "method-not-allowed")


@on_both_engines
def test_audit_has_one_row_per_post_answer(hub: HubProcess) -> None:
    post(hub, policy_body(), key="k")
    post(hub, policy_body(), key="k")
    post(hub, policy_body(), key="other")
    post(hub, policy_body(digest="sha256:" + "1" * 64), key="bad")
    rows = hub.query("SELECT status, outcome FROM audit ORDER BY id")
    assert rows == [(201, "created"), (201, "replayed"), (409, "exists"), (422, "digest-mismatch")]


def test_a_bodys_key_hash_is_the_one_earlier_hub_databases_hold() -> None:
    """A retry of a non-ASCII body under its key, across a hub upgrade, replays: the hash is
    the stored format of earlier releases (sorted, unspaced, non-ASCII escaped)."""
    from policy_hub.store import sha256_of_body

    fields = {"name": "é", "b": [1, 2], "a": {"z": "ü"}}
    written_by_0_1 = hashlib.sha256(b'{"a":{"z":"\\u00fc"},"b":[1,2],"name":"\\u00e9"}')
    assert sha256_of_body(fields) == written_by_0_1.hexdigest()
