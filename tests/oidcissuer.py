"""An OpenID Connect issuer made in the test, for trusted publishing (docs/contract.md section 9):
real keys (RSA and EC P-256) generated here, real JWTs signed with them (PyJWT), the JWKS served
on loopback by a tiny real HTTP server (or written to a file), and GitHub Actions' token endpoint
imitated the same way.

    with TestIssuer() as issuer:                    # JWKS at issuer.jwks_url
        jwt = issuer.token(repository="acme/policies")   # GitHub-like claims, overridable
        issuer.jwks_mode = "hang"                   # or "huge": a hostile JWKS endpoint
        issuer.publishers_file(path, publishers=[...])
    with RunnerTokenEndpoint(lambda aud: issuer.token(aud=aud)) as runner:
        runner.env                                  # ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, rsa

OWNER_ID = "1342004"
REPOSITORY = "acme/security-policies"
WORKFLOW = "release.yml"
AUDIENCE = "policy-hub"


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1, port 0, in a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.stop_event = threading.Event()

    def close(self) -> None:
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class _JwksHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        issuer: TestIssuer = self.server.owner.issuer  # type: ignore[attr-defined]
        issuer.jwks_requests += 1
        mode = issuer.jwks_mode
        if mode == "hang":
            # Accept, then say nothing until the test ends.
            self.server.owner.stop_event.wait(120)  # type: ignore[attr-defined]
            return
        if mode == "huge":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            chunk = b" " * (1024 * 1024)
            try:
                self.wfile.write(b'{"keys": [')
                for _ in range(50):  # 50 MB
                    self.wfile.write(chunk)
            except OSError:
                pass
            return
        body = json.dumps(issuer.jwks()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class TestIssuer:
    """Keys, a JWKS endpoint and GitHub-like JWTs. `issuer` is the URL of its JWKS server."""

    __test__ = False  # not a pytest test class

    def __init__(self, *, serve: bool = True) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.rsa_kid = "rsa-" + secrets.token_hex(4)
        self.ec_kid = "ec-" + secrets.token_hex(4)
        self.published = {self.rsa_kid, self.ec_kid}  # the kids the JWKS lists
        self.jwks_mode = "ok"
        self.jwks_requests = 0
        self._server: _Server | None = None
        self.issuer = "https://token.actions.example.test"
        self.jwks_url = ""
        if serve:
            self._server = _Server(_JwksHandler)
            self._server.issuer = self  # type: ignore[attr-defined]
            self.issuer = self._server.url
            self.jwks_url = f"{self._server.url}/.well-known/jwks"

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    def __enter__(self) -> TestIssuer:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- keys ------------------------------------------------------------------------------

    def rotate(self) -> None:
        """A new RSA key under a new kid, listed instead of the old one."""
        self.published.discard(self.rsa_kid)
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_kid = "rsa-" + secrets.token_hex(4)
        self.published.add(self.rsa_kid)

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key, alg in (
            (self.rsa_kid, self.rsa, "RS256"),
            (self.ec_kid, self.ec, "ES256"),
        ):
            if kid in self.published:
                jwk = json.loads(_public_jwk(key))
                keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        return {"keys": keys}

    def write_jwks(self, path: Path) -> Path:
        path.write_text(json.dumps(self.jwks()))
        return path

    # -- tokens ----------------------------------------------------------------------------

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        repository = overrides.get("repository", REPOSITORY)
        workflow = overrides.pop("workflow", WORKFLOW)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": f"repo:{repository}:ref:refs/heads/main",
            "jti": secrets.token_hex(16),
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
            "repository": repository,
            "repository_owner": repository.split("/")[0],
            "repository_owner_id": OWNER_ID,
            "job_workflow_ref": f"{repository}/.github/workflows/{workflow}@refs/heads/main",
            "workflow_ref": f"{repository}/.github/workflows/{workflow}@refs/heads/main",
            "sha": "0123456789abcdef0123456789abcdef01234567",
            "ref": "refs/heads/main",
            "run_id": "4242",
            "run_attempt": "1",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, *, alg: str = "RS256", kid: str | None = None, **overrides: Any) -> str:
        """A JWT signed by this issuer's key for `alg` (claims: `claims(**overrides)`)."""
        key = self.rsa if alg == "RS256" else self.ec
        default_kid = self.rsa_kid if alg == "RS256" else self.ec_kid
        headers = {"kid": kid or default_kid}
        return jwt.encode(self.claims(**overrides), key, algorithm=alg, headers=headers)

    # -- the publishers file ---------------------------------------------------------------

    def publishers_file(
        self,
        path: Path,
        publishers: list[dict[str, Any]] | None = None,
        *,
        jwks_file: Path | None = None,
    ) -> Path:
        issuer: dict[str, Any] = {"issuer": self.issuer, "audience": AUDIENCE}
        if jwks_file is not None:
            issuer["jwks_file"] = str(jwks_file)
        else:
            issuer["jwks_url"] = self.jwks_url
        if publishers is None:
            publishers = [publisher()]
        entries = [{"issuer": self.issuer, **p} for p in publishers]
        path.write_text(yaml.safe_dump({"issuers": [issuer], "publishers": entries}))
        return path


def publisher(**overrides: Any) -> dict[str, Any]:
    """A publisher entry trusting the default claims of `TestIssuer.token`."""
    entry: dict[str, Any] = {
        "repository": REPOSITORY,
        "repository_owner_id": OWNER_ID,
        "workflow": WORKFLOW,
        "policies": ["deny-*", "require-*"],
    }
    entry.update(overrides)
    return {k: v for k, v in entry.items() if v is not None}


def _public_jwk(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())
    return jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())


# -- GitHub Actions' token endpoint ------------------------------------------------------------


class _RunnerHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        runner: RunnerTokenEndpoint = self.server.owner.runner  # type: ignore[attr-defined]
        if self.headers.get("Authorization") != f"Bearer {runner.request_token}":
            runner.refused += 1
            self.send_response(401)
            self.end_headers()
            return
        audience = parse_qs(urlsplit(self.path).query).get("audience", [""])[0]
        runner.audiences.append(audience)
        body = json.dumps({"value": runner.make_token(audience)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class RunnerTokenEndpoint:
    """The runner's ID-token endpoint: `GET <url>&audience=AUD` with the request token as bearer
    answers `{"value": <JWT>}`; `env` is what a job with `id-token: write` has."""

    def __init__(self, make_token: Callable[[str], str]) -> None:
        self.make_token = make_token
        self.request_token = "req-" + secrets.token_urlsafe(24)
        self.audiences: list[str] = []
        self.refused = 0
        self._server = _Server(_RunnerHandler)
        self._server.runner = self  # type: ignore[attr-defined]
        # GitHub's URL already has a query (`?api-version=2.0`); the harness appends `&audience=`.
        self.url = f"{self._server.url}/idtoken?api-version=2.0"

    @property
    def env(self) -> dict[str, str]:
        return {
            "ACTIONS_ID_TOKEN_REQUEST_URL": self.url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.request_token,
        }

    def close(self) -> None:
        self._server.close()

    def __enter__(self) -> RunnerTokenEndpoint:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
