"""Trusted publishing on the hub (docs/contract.md section 9): `policy-hub serve --publishers`,
`POST /auth/oidc` against real hub processes over loopback, with an issuer made in the test
(tests/oidcissuer.py: real keys, real JWTs, its JWKS served by a real HTTP server). Every hostile
token is a 401 naming its check, never a 500, a traceback or a hang, and no answer or log line
ever holds a token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from policy_hub.cli import load_trust
from policy_hub.oidc import JWKS_FETCH_SECONDS, JWKS_READ_SECONDS
from tests.hubprocess import HubProcess
from tests.oidcissuer import OWNER_ID, REPOSITORY, TestIssuer, publisher
from tests.test_hub_api import assert_json_error, auth, policy_body

EXAMPLES = Path(__file__).parent / "example-files" / "publishers"
ENV_REPOSITORY = "acme/env-policies"


def exchange(hub: HubProcess, token: str, **kwargs: Any) -> requests.Response:
    return requests.post(f"{hub.url}/auth/oidc", json={"token": token}, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as made:
        yield made


@pytest.fixture(scope="module")
def trusting_hub(
    issuer: TestIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HubProcess]:
    """One hub trusting `issuer`: the default publisher, and one that requires an environment."""
    folder = tmp_path_factory.mktemp("oidc-hub")
    file = issuer.publishers_file(
        folder / "publishers.yaml",
        [
            publisher(),
            publisher(repository=ENV_REPOSITORY, environment="production", policies=["env-*"]),
            # The default repository's workflow, in its production environment, may do more.
            publisher(environment="production", policies=["prod-*", "deny-*"]),
        ],
    )
    with HubProcess(folder / "hub", extra_args=("--publishers", str(file))) as hub:
        yield hub


def assert_no_secret(texts: list[str], secrets: list[str]) -> None:
    for text in texts:
        for secret in secrets:
            # A JWT's signature part alone is enough to tell it was echoed.
            for piece in {secret, secret.rsplit(".", 1)[-1]}:
                assert len(piece) < 8 or piece not in text


# -- the exchange ----------------------------------------------------------------------


def test_a_trusted_workflow_gets_a_hub_token_that_publishes_its_names(
    trusting_hub: HubProcess, issuer: TestIssuer
) -> None:
    before = time.time()
    answer = exchange(trusting_hub, issuer.token())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"token", "expires_at", "policies"}
    assert body["policies"] == ["deny-*", "require-*"]
    expires = time.mktime(time.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert before + 900 - 5 <= expires <= time.time() + 900 + 5
    minted = body["token"]
    # Kept only as its SHA-256.
    rows = trusting_hub.query("SELECT token_sha256, globs FROM oidc_tokens")
    assert (hashlib.sha256(minted.encode()).hexdigest(), '["deny-*", "require-*"]') in rows
    assert not any(minted in str(row) for row in rows)
    # It reads and publishes its names.
    created = requests.post(
        f"{trusting_hub.url}/policies",
        json=policy_body(name="deny-privileged"),
        headers=auth(minted, "oidc-1"),
        timeout=10,
    )
    assert created.status_code == 201, created.text
    read = requests.get(
        f"{trusting_hub.url}/policies/deny-privileged/1.2.0", headers=auth(minted), timeout=10
    )
    assert read.status_code == 200
    # And no other name (the Caller's globs: 403 forbidden-name, nothing stored).
    other = requests.post(
        f"{trusting_hub.url}/policies",
        json=policy_body(name="team-b-policy"),
        headers=auth(minted, "oidc-2"),
        timeout=10,
    )
    assert_json_error(other, 403, "forbidden-name")
    assert ("team-b-policy", "1.2.0") not in {(n, v) for n, v, _ in trusting_hub.records()}
    assert_no_secret([created.text, trusting_hub.stderr()], [minted])


def test_an_es256_token_is_accepted_too(trusting_hub: HubProcess, issuer: TestIssuer) -> None:
    assert exchange(trusting_hub, issuer.token(alg="ES256")).status_code == 200


def test_an_unknown_or_expired_minted_token_is_refused(tmp_path: Path, issuer: TestIssuer) -> None:
    file = issuer.publishers_file(tmp_path / "publishers.yaml")
    args = ("--publishers", str(file), "--oidc-token-ttl", "1")
    with HubProcess(tmp_path / "hub", extra_args=args) as hub:
        url = f"{hub.url}/policies/deny-x/1.0.0"
        unknown = requests.get(url, headers=auth("pho_not-minted"), timeout=10)
        assert_json_error(unknown, 401, "unauthorized")
        minted = exchange(hub, issuer.token()).json()["token"]
        assert requests.get(url, headers=auth(minted), timeout=10).status_code == 404
        time.sleep(1.2)
        assert_json_error(requests.get(url, headers=auth(minted), timeout=10), 401, "unauthorized")


# -- hostile tokens: 401 naming the check ----------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def key_confusion(issuer: TestIssuer) -> str:
    """HS256 with the issuer's RSA public key (PEM) as the HMAC secret."""
    secret = issuer.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.rsa_kid}).encode())
    payload = _b64(json.dumps(issuer.claims()).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def alg_none(issuer: TestIssuer) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": issuer.rsa_kid}).encode())
    return f"{header}.{_b64(json.dumps(issuer.claims()).encode())}."


def tampered(issuer: TestIssuer) -> str:
    header, _, signature = issuer.token().split(".")
    payload = _b64(json.dumps(issuer.claims(repository_owner_id="1")).encode())
    return f"{header}.{payload}.{signature}"


def foreign_key(issuer: TestIssuer) -> str:
    """Signed by a key the JWKS does not hold, under a kid it does."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(issuer.claims(), other, algorithm="RS256", headers={"kid": issuer.rsa_kid})


def ec_kid_on_rsa(issuer: TestIssuer) -> str:
    return issuer.token(alg="RS256", kid=issuer.ec_kid)


NOW = int(time.time())
# case -> (the token, the reason's start)
HOSTILE: dict[str, tuple[Callable[[TestIssuer], str], str]] = {
    "expired": (lambda i: i.token(exp=int(time.time()) - 120), "exp: "),
    "not-yet-valid": (lambda i: i.token(nbf=int(time.time()) + 600), "nbf: "),
    "issued-in-the-future": (lambda i: i.token(iat=int(time.time()) + 600), "iat: "),
    "wrong-audience": (lambda i: i.token(aud="another-hub"), "aud: "),
    "several-audiences": (lambda i: i.token(aud=["policy-hub", "another-hub"]), "aud: "),
    "wrong-issuer": (lambda i: i.token(iss="https://token.evil.example"), "iss: "),
    "unknown-kid": (lambda i: i.token(kid="no-such-key"), "kid: "),
    "key-not-in-jwks": (foreign_key, "signature: "),
    "alg-none": (alg_none, "alg: "),
    "hs256-key-confusion": (key_confusion, "alg: "),
    "tampered-payload": (tampered, "signature: "),
    "kid-of-another-key-type": (ec_kid_on_rsa, "alg: "),
    "no-jti": (lambda i: i.token(jti=None), "jti: "),
    "no-exp": (lambda i: i.token(exp=None), "exp: "),
    "exp-not-a-number": (lambda i: i.token(exp="tomorrow"), "exp: "),
    "malformed": (lambda i: "not.a.jwt", "malformed: "),
    "three-words": (lambda i: "a b c", "malformed: "),
    "huge": (lambda i: "e" * 40_000, "malformed: the token is over"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_token_is_refused_naming_the_check(
    trusting_hub: HubProcess, issuer: TestIssuer, case: str
) -> None:
    make, reason = HOSTILE[case]
    token = make(issuer)
    answer = exchange(trusting_hub, token)
    body = assert_json_error(answer, 401, "invalid-oidc-token")
    assert body["reason"].startswith(reason), body
    assert "Traceback" not in answer.text
    assert_no_secret([answer.text, trusting_hub.stderr()], [token])


def test_a_jti_is_accepted_once(trusting_hub: HubProcess, issuer: TestIssuer) -> None:
    token = issuer.token()
    assert exchange(trusting_hub, token).status_code == 200
    again = assert_json_error(exchange(trusting_hub, token), 401, "invalid-oidc-token")
    assert again["reason"].startswith("jti: this token was already used")


def test_the_same_repository_name_under_another_owner_is_no_publisher(
    trusting_hub: HubProcess, issuer: TestIssuer
) -> None:
    # The owner re-registered by someone else: the name matches, the numeric id does not.
    token = issuer.token(repository_owner_id="99999999")
    body = assert_json_error(exchange(trusting_hub, token), 403, "no-trusted-publisher")
    assert body["detail"].startswith("the token is valid, but no trusted publisher")


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({}, 403),  # no environment claim at all
        ({"environment": "staging"}, 403),
        ({"environment": "Production"}, 200),  # GitHub's environment names ignore case
    ],
)
def test_a_publisher_that_names_an_environment_requires_it(
    trusting_hub: HubProcess, issuer: TestIssuer, claims: dict[str, str], status: int
) -> None:
    token = issuer.token(repository=ENV_REPOSITORY, **claims)
    answer = exchange(trusting_hub, token)
    assert answer.status_code == status, answer.text
    if status == 200:
        assert answer.json()["policies"] == ["env-*"]


@pytest.mark.parametrize(
    "claims",
    [
        {"workflow": "other.yml"},
        {"workflow": "Release.yml"},
        {"job_workflow_ref": "evil/fork/.github/workflows/release.yml@refs/heads/main"},
        {"job_workflow_ref": f"{REPOSITORY}/.github/workflows/release.yml"},  # no @ref
        {"repository": "acme/other-policies"},
    ],
)
def test_every_condition_of_a_publisher_must_hold(
    trusting_hub: HubProcess, issuer: TestIssuer, claims: dict[str, str]
) -> None:
    assert_json_error(exchange(trusting_hub, issuer.token(**claims)), 403, "no-trusted-publisher")


def test_a_token_of_several_publishers_may_write_all_their_names(
    trusting_hub: HubProcess, issuer: TestIssuer
) -> None:
    answer = exchange(trusting_hub, issuer.token(environment="production"))
    assert answer.json()["policies"] == ["deny-*", "require-*", "prod-*"]
    created = requests.post(
        f"{trusting_hub.url}/policies",
        json=policy_body(name="prod-only"),
        headers=auth(answer.json()["token"], "union-1"),
        timeout=10,
    )
    assert created.status_code == 201, created.text
    assert created.json()["publisher"]["environment"] == "production"


def test_the_repository_is_compared_without_case(
    trusting_hub: HubProcess, issuer: TestIssuer
) -> None:
    assert exchange(trusting_hub, issuer.token(repository=REPOSITORY.upper())).status_code == 200


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        (b"not json", 422, "invalid"),
        (b'{"token": 5}', 422, "invalid"),
        (b'{"jwt": "x"}', 422, "invalid"),
        (b'{"token": "' + b"a" * 70_000 + b'"}', 413, "too-large"),
    ],
)
def test_a_malformed_body_is_refused(
    trusting_hub: HubProcess, data: bytes, status: int, error: str
) -> None:
    answer = requests.post(
        f"{trusting_hub.url}/auth/oidc",
        data=data,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert_json_error(answer, status, error)
    assert b"a" * 100 not in answer.content


def test_a_key_rotation_is_picked_up_on_an_unknown_kid(tmp_path: Path) -> None:
    with TestIssuer() as issuer:
        file = issuer.publishers_file(tmp_path / "publishers.yaml")
        with HubProcess(tmp_path / "hub", extra_args=("--publishers", str(file))) as hub:
            assert exchange(hub, issuer.token()).status_code == 200
            fetched = issuer.jwks_requests
            issuer.rotate()
            time.sleep(1.1)  # oidc.JWKS_REFETCH_SECONDS
            assert exchange(hub, issuer.token()).status_code == 200
            assert issuer.jwks_requests == fetched + 1


def test_a_jwks_file_is_read_at_start_and_again_on_an_unknown_kid(tmp_path: Path) -> None:
    issuer = TestIssuer(serve=False)
    jwks = issuer.write_jwks(tmp_path / "jwks.json")
    file = issuer.publishers_file(tmp_path / "publishers.yaml", jwks_file=jwks)
    with HubProcess(tmp_path / "hub", extra_args=("--publishers", str(file))) as hub:
        assert exchange(hub, issuer.token()).status_code == 200
        issuer.rotate()
        refused = exchange(hub, issuer.token())
        assert refused.json()["reason"].startswith("kid: ")
        issuer.write_jwks(jwks)
        assert exchange(hub, issuer.token()).status_code == 200


@pytest.mark.parametrize("mode", ["hang", "huge"])
def test_a_hostile_jwks_endpoint_is_bounded(tmp_path: Path, mode: str) -> None:
    with TestIssuer() as issuer:
        issuer.jwks_mode = mode
        file = issuer.publishers_file(tmp_path / "publishers.yaml")
        with HubProcess(tmp_path / "hub", extra_args=("--publishers", str(file))) as hub:
            token = issuer.token()
            started = time.monotonic()
            answer = exchange(hub, token)
            took = time.monotonic() - started
            body = assert_json_error(answer, 503, "unavailable")
            assert body["detail"].startswith("the issuer's keys cannot be read now")
            assert took < JWKS_FETCH_SECONDS + JWKS_READ_SECONDS + 5
            assert_no_secret([answer.text, hub.stderr()], [token])
            assert "Traceback" not in hub.stderr()


def test_without_publishers_the_route_is_404(hub: HubProcess) -> None:
    with TestIssuer(serve=False) as issuer:
        body = assert_json_error(exchange(hub, issuer.token()), 404, "not-found")
    assert "--publishers FILE" in body["detail"]


# -- two processes on one PostgreSQL database ------------------------------------------


def test_a_jti_and_a_minted_token_are_shared_by_every_process_on_the_database(
    tmp_path: Path, postgres_db: str, issuer: TestIssuer
) -> None:
    file = issuer.publishers_file(tmp_path / "publishers.yaml")
    args = ("--publishers", str(file))
    with (
        HubProcess(tmp_path / "a", db=postgres_db, extra_args=args) as first,
        first.twin(tmp_path / "b") as second,
    ):
        token = issuer.token()
        minted = exchange(first, token)
        assert minted.status_code == 200
        replayed = assert_json_error(exchange(second, token), 401, "invalid-oidc-token")
        assert replayed["reason"].startswith("jti: ")
        created = requests.post(
            f"{second.url}/policies",
            json=policy_body(name="deny-shared"),
            headers=auth(minted.json()["token"], "pg-1"),
            timeout=10,
        )
        assert created.status_code == 201, created.text


def test_racing_exchanges_of_one_jwt_mint_once(
    tmp_path: Path, postgres_db: str, issuer: TestIssuer
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    file = issuer.publishers_file(tmp_path / "publishers.yaml")
    args = ("--publishers", str(file))
    with (
        HubProcess(tmp_path / "a", db=postgres_db, extra_args=args) as first,
        first.twin(tmp_path / "b") as second,
    ):
        token = issuer.token()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: exchange((first, second)[i % 2], token), range(8)))
        assert sorted(a.status_code for a in answers) == [200] + [401] * 7


# -- the publishers file ---------------------------------------------------------------


def _expectation(case: Path) -> tuple[str, int]:
    lines = case.read_text().splitlines()
    return lines[0].removeprefix("# expect: "), int(lines[1].removeprefix("# line: "))


@pytest.mark.parametrize("case", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_a_bad_publishers_file_is_named_with_its_line(case: Path) -> None:
    expected, line = _expectation(case)
    message = load_trust(case, 900)
    assert isinstance(message, str), f"{case.name} was accepted"
    assert expected in message
    assert message.startswith(f"--publishers {case}")
    if line:
        assert message.startswith(f"--publishers {case}:{line}: "), message


def test_serve_with_a_bad_publishers_file_is_exit_4_before_anything(tmp_path: Path) -> None:
    case = EXAMPLES / "workflow-path.yaml"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "policy_hub", "serve", "--db", str(tmp_path / "hub.sqlite3")),
            *("--no-auth", "--port", "0", "--publishers", str(case)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 4
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"policy-hub: error: --publishers {case}:14: publishers[1]: workflow "
        "'.github/workflows/release.yml' must be the file name alone, e.g. release.yml "
        "(not its path under .github/workflows/)"
    ]
    assert not (tmp_path / "hub.sqlite3").exists()


def test_an_owner_id_given_as_a_number_is_read_as_its_digits(tmp_path: Path) -> None:
    file = tmp_path / "publishers.yaml"
    text = (EXAMPLES / "missing-owner-id.yaml").read_text()
    file.write_text(text.replace("workflow:", f"repository_owner_id: {OWNER_ID}\n    workflow:"))
    trusted = load_trust(file, 900)
    assert not isinstance(trusted, str), trusted
    assert trusted.trust.publishers[0].repository_owner_id == OWNER_ID


@pytest.mark.parametrize("ttl", ["0", "86401", "-5"])
def test_an_oidc_token_ttl_out_of_range_is_a_usage_error(tmp_path: Path, ttl: str) -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "policy_hub", "serve", "--db", str(tmp_path / "hub.sqlite3")),
            *("--no-auth", "--port", "0", "--oidc-token-ttl", ttl),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "policy-hub: error: --oidc-token-ttl: give seconds between 1 and 86400 (default 900)"
    ]


def test_a_jwks_file_without_a_usable_key_stops_the_hub_at_start(tmp_path: Path) -> None:
    issuer = TestIssuer(serve=False)
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]}')
    file = issuer.publishers_file(tmp_path / "publishers.yaml", jwks_file=jwks)
    message = load_trust(file, 900)
    assert message == (
        f"--publishers {file}: jwks_file {jwks} holds no RSA (RS256) or EC P-256 (ES256) "
        "signing key with a 'kid'"
    )


# -- IssuerKeys on its own (a stand-in fetch) ------------------------------------------


def test_the_keys_are_read_once_kept_when_a_read_fails_and_not_hammered(
    issuer: TestIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from policy_hub import oidc

    calls: list[str] = []
    answers: list[bytes | Exception] = [json.dumps(issuer.jwks()).encode()]

    def fetch(url: str) -> bytes:
        calls.append(url)
        answer = answers[min(len(calls), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    config = oidc.Issuer(issuer.issuer, "policy-hub", jwks_url=issuer.jwks_url)
    keys = oidc.IssuerKeys(config, fetch)
    assert keys.key(issuer.rsa_kid) is not None and len(calls) == 1
    assert keys.key(issuer.ec_kid) is not None and len(calls) == 1  # cached
    answers.append(oidc.JwksUnavailable("fetching the JWKS at x timed out"))
    clock = [time.monotonic() + 5]
    monkeypatch.setattr(oidc.time, "monotonic", lambda: clock[0])
    # An unknown kid reads again; the read fails: that is the answer (503), not "no such key".
    with pytest.raises(oidc.JwksUnavailable, match="timed out"):
        keys.key("rotated-in")
    assert len(calls) == 2
    # Within the cool-down, the failure is told at once, without another read.
    with pytest.raises(oidc.JwksUnavailable):
        keys.key("rotated-in")
    assert len(calls) == 2
    # The keys it had still verify, even when an hour old and the endpoint still fails.
    clock[0] += oidc.JWKS_MAX_AGE_SECONDS + 1
    assert keys.key(issuer.rsa_kid) is not None
    assert len(calls) == 3


def test_the_readmes_publishers_file_is_one_the_hub_accepts(tmp_path: Path) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    [example] = re.findall(r"```yaml\n(issuers:\n.*?)```", readme, re.S)
    file = tmp_path / "publishers.yaml"
    file.write_text(example)
    trusted = load_trust(file, 900)
    assert not isinstance(trusted, str), trusted
    [only] = trusted.trust.publishers
    assert (only.repository, only.repository_owner_id, only.workflow) == (
        "acme/security-policies",
        "1342004",
        "release.yml",
    )
    assert only.environment == "production" and only.policies == ("deny-*", "require-tags")


def test_the_hub_logs_each_exchange_without_a_token(tmp_path: Path, issuer: TestIssuer) -> None:
    file = issuer.publishers_file(tmp_path / "publishers.yaml")
    with HubProcess(tmp_path / "hub", extra_args=("--publishers", str(file))) as hub:
        good, late, other = (
            issuer.token(),
            issuer.token(exp=int(time.time()) - 120),
            issuer.token(repository="mallory/x\x1b[31m"),
        )
        minted = exchange(hub, good).json()["token"]
        assert exchange(hub, late).status_code == 401
        assert exchange(hub, other).status_code == 403
        log = hub.stderr()
    lines = [line for line in log.splitlines() if line.startswith("INFO:") and "trusted" in line]
    assert len(lines) == 3, log
    assert f"trusted publishing: {REPOSITORY}, workflow {REPOSITORY}/.github/workflows/" in lines[0]
    assert "may publish deny-*, require-*" in lines[0]
    assert lines[1].endswith("trusted publishing refused: exp: the token has expired")
    assert "no trusted publisher matches mallory/x\\x1b[31m (owner id" in lines[2]
    assert "\x1b" not in log
    assert_no_secret([log], [good, late, other, minted])
