"""The hub's OpenAPI document (`GET /openapi.json`) against the answers a real hub process gives:
each answer of each route is listed for that route, with its body's schema and its headers, and
the document lists no answer that the table below does not provoke.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator

from policy_hub.sqlite_store import SqliteStore
from policy_hub.store import sha256_of_body
from tests.hubprocess import HubProcess
from tests.oidcissuer import TestIssuer
from tests.pgserver import free_port
from tests.test_hub_api import auth, policy_body

pytestmark = pytest.mark.fast

TOO_LARGE = b" " * (2 * 1024 * 1024 + 1)
# Documented, but no request can provoke them: 500 is the answer to a bug; 400 is BodyLimit's
# answer to a malformed Content-Length, which uvicorn already refuses itself (a text/plain 400
# before any route, so not an answer of an operation).
UNPROVOKED = {400, 500}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as made:
        yield made


@pytest.fixture(scope="module")
def doc_hub(tmp_path_factory: pytest.TempPathFactory, issuer: TestIssuer) -> Iterator[HubProcess]:
    folder = tmp_path_factory.mktemp("openapi")
    publishers = issuer.publishers_file(folder / "publishers.yaml")
    with HubProcess(folder / "hub", extra_args=("--publishers", str(publishers))) as process:
        process.issuer = issuer  # type: ignore[attr-defined]
        yield process


@pytest.fixture(scope="module")
def document(doc_hub: HubProcess) -> dict[str, Any]:
    served = requests.get(f"{doc_hub.url}/openapi.json", timeout=10)
    assert served.status_code == 200
    return served.json()


def call(
    hub: HubProcess,
    method: str,
    path: str,
    *,
    token: str | None = "write",
    key: str | None = None,
    **kwargs: Any,
) -> Answer:
    headers = {}
    if token is not None:
        tokens = {"write": hub.token, "read": hub.read_token, "scoped": hub.scoped_token}
        headers = auth(tokens[token], key)
    response = requests.request(method, f"{hub.url}{path}", headers=headers, timeout=30, **kwargs)
    return Answer(response.status_code, dict(response.headers), response.json())


def created(hub: HubProcess, name: str) -> dict[str, Any]:
    body = policy_body(name=name)
    assert call(hub, "POST", "/policies", key=f"seed-{name}", json=body).status == 201
    return body


def read_one(hub: HubProcess) -> Answer:
    created(hub, "read-one")
    return call(hub, "GET", "/policies/read-one/1.2.0", token="read")


def read_all(hub: HubProcess) -> Answer:
    created(hub, "read-all")
    return call(hub, "GET", "/policies/read-all", token="read")


def exists(hub: HubProcess) -> Answer:
    return call(hub, "POST", "/policies", key="second", json=created(hub, "exists"))


def in_flight(hub: HubProcess) -> Answer:
    body = policy_body(name="in-flight")
    # Claimed in the hub's own file, as a concurrent request would have (test_hub_api does too).
    assert SqliteStore(hub.db_path).claim("held", sha256_of_body(body)) is None
    return call(hub, "POST", "/policies", key="held", json=body)


def key_reused(hub: HubProcess) -> Answer:
    created(hub, "key-reused")
    other = policy_body(name="key-reused", version="2.0.0")
    return call(hub, "POST", "/policies", key="seed-key-reused", json=other)


def oidc(hub: HubProcess, **claims: Any) -> Answer:
    token = hub.issuer.token(**claims)  # type: ignore[attr-defined]
    return call(hub, "POST", OIDC, token=None, json={"token": token})


def oidc_without_keys(hub: HubProcess) -> Answer:
    """The issuer's JWKS endpoint answers 50 MB when the hub reads it again (an unknown kid)."""
    issuer: TestIssuer = hub.issuer  # type: ignore[attr-defined]
    time.sleep(1.1)  # oidc.JWKS_REFETCH_SECONDS
    issuer.jwks_mode = "huge"
    try:
        return oidc(hub, kid="rotated-away")
    finally:
        issuer.jwks_mode = "ok"


def oidc_without_publishers(hub: HubProcess) -> Answer:
    with tempfile.TemporaryDirectory() as folder, HubProcess(Path(folder)) as plain:
        return call(plain, "POST", OIDC, token=None, json={"token": "a.b.c"})


OIDC = "/auth/oidc"


def unsigned(hub: HubProcess) -> Answer:
    """A record as hubs before 2026-12-06 stored it: no publisher, no attestation."""
    created(hub, "unsigned")
    hub.query("UPDATE policies SET publisher = NULL, attestation = NULL WHERE name = 'unsigned'")
    return call(hub, "GET", "/policies/unsigned/1.2.0/attestation", token="read")


def attested(hub: HubProcess) -> Answer:
    created(hub, "attested")
    return call(hub, "GET", "/policies/attested/1.2.0/attestation", token="read")


def yanked(hub: HubProcess) -> Answer:
    created(hub, "yanked")
    return call(hub, "POST", "/policies/yanked/1.2.0/yank", json={"reason": "CVE-2026-1"})


VERSION = "/policies/{name}/{version}"
VERSIONS = "/policies/{name}"
POLICIES = "/policies"
KEYS = "/keys"
ATTESTATION = "/policies/{name}/{version}/attestation"
YANK = "/policies/{name}/{version}/yank"
REASON = {"reason": "superseded"}

# (method, route, status, error code): the request that provokes that answer.
CASES: dict[tuple[str, str, int, str | None], Callable[[HubProcess], Answer]] = {
    ("GET", "/health", 200, None): lambda hub: call(hub, "GET", "/health", token=None),
    ("GET", "/health", 413, "too-large"): lambda hub: call(
        hub, "GET", "/health", token=None, data=TOO_LARGE
    ),
    ("GET", VERSION, 200, None): read_one,
    ("GET", VERSION, 401, "unauthorized"): lambda hub: call(
        hub, "GET", "/policies/a/1.0.0", token=None
    ),
    ("GET", VERSION, 404, "not-found"): lambda hub: call(hub, "GET", "/policies/a/1.0.0"),
    ("GET", VERSION, 413, "too-large"): lambda hub: call(
        hub, "GET", "/policies/a/1.0.0", data=TOO_LARGE
    ),
    ("GET", VERSION, 422, "invalid"): lambda hub: call(hub, "GET", "/policies/A/1.0.0"),
    ("GET", VERSIONS, 200, None): read_all,
    ("GET", VERSIONS, 401, "unauthorized"): lambda hub: call(hub, "GET", "/policies/a", token=None),
    ("GET", VERSIONS, 404, "not-found"): lambda hub: call(hub, "GET", "/policies/a"),
    ("GET", VERSIONS, 413, "too-large"): lambda hub: call(
        hub, "GET", "/policies/a", data=TOO_LARGE
    ),
    ("GET", VERSIONS, 422, "invalid"): lambda hub: call(hub, "GET", "/policies/A"),
    ("GET", POLICIES, 200, None): lambda hub: call(hub, "GET", "/policies?limit=2", token="read"),
    ("GET", POLICIES, 401, "unauthorized"): lambda hub: call(hub, "GET", POLICIES, token=None),
    ("GET", POLICIES, 413, "too-large"): lambda hub: call(hub, "GET", POLICIES, data=TOO_LARGE),
    ("GET", POLICIES, 422, "invalid"): lambda hub: call(hub, "GET", "/policies?limit=501"),
    ("POST", POLICIES, 201, None): lambda hub: call(
        hub, "POST", POLICIES, key="new", json=policy_body(name="new")
    ),
    ("POST", POLICIES, 401, "unauthorized"): lambda hub: call(
        hub, "POST", POLICIES, token=None, json=policy_body()
    ),
    ("POST", POLICIES, 403, "forbidden"): lambda hub: call(
        hub, "POST", POLICIES, token="read", key="k", json=policy_body()
    ),
    ("POST", POLICIES, 409, "exists"): exists,
    ("POST", POLICIES, 409, "in-flight"): in_flight,
    ("POST", POLICIES, 413, "too-large"): lambda hub: call(
        hub, "POST", POLICIES, key="k", data=TOO_LARGE
    ),
    ("POST", POLICIES, 422, "invalid"): lambda hub: call(
        hub, "POST", POLICIES, key="k", json=policy_body(release_sha="HEAD")
    ),
    ("POST", POLICIES, 422, "digest-mismatch"): lambda hub: call(
        hub, "POST", POLICIES, key="k", json=policy_body(digest="sha256:" + "0" * 64)
    ),
    ("POST", POLICIES, 422, "metadata-mismatch"): lambda hub: call(
        hub, "POST", POLICIES, key="k", json=policy_body(metadata={"version": "9.9.9"})
    ),
    ("POST", POLICIES, 422, "idempotency-key-reused"): key_reused,
    ("POST", OIDC, 200, None): oidc,
    ("POST", OIDC, 401, "invalid-oidc-token"): lambda hub: oidc(hub, aud="another"),
    ("POST", OIDC, 403, "no-trusted-publisher"): lambda hub: oidc(hub, repository="x/y"),
    ("POST", OIDC, 404, "not-found"): oidc_without_publishers,
    ("POST", OIDC, 413, "too-large"): lambda hub: call(
        hub, "POST", OIDC, token=None, json={"token": "a" * 70_000}
    ),
    ("POST", OIDC, 422, "invalid"): lambda hub: call(hub, "POST", OIDC, token=None, json={}),
    ("POST", OIDC, 503, "unavailable"): oidc_without_keys,
    ("POST", POLICIES, 403, "forbidden-name"): lambda hub: call(
        hub, "POST", POLICIES, token="scoped", key="k", json=policy_body(name="allow-all")
    ),
    ("GET", KEYS, 200, None): lambda hub: call(hub, "GET", KEYS, token=None),
    ("GET", KEYS, 413, "too-large"): lambda hub: call(hub, "GET", KEYS, data=TOO_LARGE),
    ("GET", ATTESTATION, 200, None): attested,
    ("GET", ATTESTATION, 401, "unauthorized"): lambda hub: call(
        hub, "GET", "/policies/a/1.0.0/attestation", token=None
    ),
    ("GET", ATTESTATION, 404, "not-found"): lambda hub: call(
        hub, "GET", "/policies/a/1.0.0/attestation"
    ),
    ("GET", ATTESTATION, 404, "no-attestation"): unsigned,
    ("GET", ATTESTATION, 413, "too-large"): lambda hub: call(
        hub, "GET", "/policies/a/1.0.0/attestation", data=TOO_LARGE
    ),
    ("GET", ATTESTATION, 422, "invalid"): lambda hub: call(
        hub, "GET", "/policies/a/1.0/attestation"
    ),
    ("POST", YANK, 200, None): yanked,
    ("POST", YANK, 401, "unauthorized"): lambda hub: call(
        hub, "POST", "/policies/a/1.0.0/yank", token=None, json=REASON
    ),
    ("POST", YANK, 403, "forbidden"): lambda hub: call(
        hub, "POST", "/policies/a/1.0.0/yank", token="read", json=REASON
    ),
    ("POST", YANK, 403, "forbidden-name"): lambda hub: call(
        hub, "POST", "/policies/a/1.0.0/yank", token="scoped", json=REASON
    ),
    ("POST", YANK, 404, "not-found"): lambda hub: call(
        hub, "POST", "/policies/a/1.0.0/yank", json=REASON
    ),
    ("POST", YANK, 413, "too-large"): lambda hub: call(
        hub, "POST", "/policies/a/1.0.0/yank", data=TOO_LARGE
    ),
    ("POST", YANK, 422, "invalid"): lambda hub: call(
        hub, "POST", "/policies/a/1.0.0/yank", json={"reason": "two\nlines"}
    ),
}
# Answered by the FaultInjection middleware of a test hub (`--inject-faults`); any hub may.
FAULTS = {429: "rate_429=1,retry_after=3", 503: "rate_503=1"}
FAULT_ERRORS = {429: "rate-limited", 503: "unavailable"}
FAULT_REQUESTS = {
    ("GET", VERSION): ("/policies/a/1.0.0", {}),
    ("GET", VERSIONS): ("/policies/a", {}),
    ("GET", POLICIES): (POLICIES, {}),
    ("POST", POLICIES): (POLICIES, {"key": "k", "json": policy_body()}),
    ("GET", ATTESTATION): ("/policies/a/1.0.0/attestation", {}),
    ("POST", YANK): ("/policies/a/1.0.0/yank", {"json": REASON}),
}


def assert_documented(
    document: dict[str, Any], method: str, route: str, answer: Answer, error: str | None
) -> None:
    responses = document["paths"][route][method.lower()]["responses"]
    assert str(answer.status) in responses, f"{method} {route} answered {answer.status}"
    entry = responses[str(answer.status)]
    # The response schemas point into components/; they resolve against a root that has them.
    schema = {
        **entry["content"]["application/json"]["schema"],
        "components": document["components"],
    }
    Draft202012Validator(schema).validate(answer.body)
    assert (answer.body.get("error") if isinstance(answer.body, dict) else None) == error
    headers = {name.lower(): value for name, value in answer.headers.items()}
    for name, header in entry.get("headers", {}).items():
        if header.get("required"):
            assert name.lower() in headers, f"{answer.status} without {name}"
        if name.lower() in headers:
            Draft202012Validator(header["schema"]).validate(headers[name.lower()])


@pytest.mark.process
@pytest.mark.parametrize("case", sorted(CASES, key=str), ids=lambda c: "-".join(map(str, c)))
def test_every_answer_is_documented(
    doc_hub: HubProcess,
    document: dict[str, Any],
    case: tuple[str, str, int, str | None],
) -> None:
    method, route, status, error = case
    answer = CASES[case](doc_hub)
    assert answer.status == status, answer
    assert_documented(document, method, route, answer, error)


@pytest.mark.process
@pytest.mark.parametrize("status", sorted(FAULTS))
def test_injected_refusals_are_documented(
    hub_factory: Callable[..., HubProcess], document: dict[str, Any], status: int
) -> None:
    hub = hub_factory(FAULTS[status])
    for (method, route), (path, kwargs) in FAULT_REQUESTS.items():
        answer = call(hub, method, path, **kwargs)
        assert answer.status == status, answer
        assert_documented(document, method, route, answer, FAULT_ERRORS[status])


# Answered by a hub whose database does not answer: a PostgreSQL URL of a closed port.
UNAVAILABLE_REQUESTS = {
    ("GET", "/health"): ("/health", {}),
    ("GET", KEYS): (KEYS, {}),
    **FAULT_REQUESTS,
}


@pytest.mark.process
def test_answers_without_a_database_are_documented(
    tmp_path: Path, document: dict[str, Any]
) -> None:
    with HubProcess(tmp_path, db=f"postgresql://hub@127.0.0.1:{free_port()}/hub") as hub:
        for (method, route), (path, kwargs) in UNAVAILABLE_REQUESTS.items():
            answer = call(
                hub, method, path, token=None if route in ("/health", KEYS) else "write", **kwargs
            )
            assert answer.status == 503, answer
            assert_documented(document, method, route, answer, "unavailable")


def test_the_document_lists_only_answers_the_hub_gives(document: dict[str, Any]) -> None:
    provoked = {(method, route, status) for method, route, status, _ in CASES}
    provoked |= {(m, r, s) for m, r in FAULT_REQUESTS for s in FAULTS}
    provoked |= {(m, r, 503) for m, r in UNAVAILABLE_REQUESTS}
    listed = {
        (method.upper(), route, int(status))
        for route, operations in document["paths"].items()
        for method, operation in operations.items()
        for status in operation["responses"]
        if int(status) not in UNPROVOKED
    }
    assert listed == provoked


def test_openapi_describes_the_contract(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert set(paths) == {
        "/health",
        "/policies",
        "/policies/{name}",
        "/policies/{name}/{version}",
        "/auth/oidc",
        KEYS,
        ATTESTATION,
        YANK,
    }
    assert {"201", "401", "403", "409", "413", "422", "429", "503"} <= set(
        paths["/policies"]["post"]["responses"]
    )
    assert {"200", "401", "404"} <= set(paths["/policies/{name}/{version}"]["get"]["responses"])
    body_schema = paths["/policies"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body_schema["required"]) == {
        "name",
        "version",
        "metadata",
        "definition",
        "digest",
        "release_sha",
    }
    header = [p for p in paths["/policies"]["post"]["parameters"] if p["in"] == "header"]
    assert header[0]["name"] == "Idempotency-Key" and header[0]["required"]
    assert "HTTPBearer" in document["components"]["securitySchemes"]
