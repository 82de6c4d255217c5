"""Trusted publishing's checks (docs/contract.md section 9), each a small unit as PyPI's
warehouse/oidc has them: an issuer's keys (`IssuerKeys`: a JWKS fetched within bounded time and
size, or read from a file, cached, read again once for an unknown `kid`); the JWT itself
(`verify_jwt`: algorithm, signature, `iss`, `aud`, `exp`, `nbf`, `iat`); and the match of its
claims to the trusted publishers (`PUBLISHER_CLAIMS`, `matching_publishers`). A refusal names
the check that failed (`OidcRefused`), never the token. `jti` once and minting live in the store
and the route (app.py).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
import urllib3

from policy_hub.publishers import Issuer, Publisher, TrustConfig
from policy_hub.store import Store

# The only signature algorithms accepted, and the key each needs: never `none`, never an HMAC
# (whose "secret" could be a public key: key confusion), never what the token's header asks for
# unless its key is of that very kind.
ALGORITHMS = ("RS256", "ES256")
CLOCK_SKEW_SECONDS = 60
MAX_JWT_BYTES = 16 * 1024  # GitHub's are ~1.2 KiB
MAX_CLAIM_CHARS = 1024  # a claim kept in a record: anything longer is not GitHub's
# Every wait of a JWKS fetch is bounded (README, "Trusted publishing"):
JWKS_CONNECT_SECONDS = 5.0
JWKS_READ_SECONDS = 5.0  # one read of the socket
JWKS_FETCH_SECONDS = 10.0  # the whole answer, however it trickles (plus the read in progress)
JWKS_MAX_BYTES = 512 * 1024  # GitHub's is ~3 KiB
JWKS_MAX_AGE_SECONDS = 3600.0  # a cached JWKS is fetched again after this
# An unknown `kid` fetches the JWKS again, but not more often than this: tokens with made-up
# key ids cannot make the hub hammer the issuer.
JWKS_REFETCH_SECONDS = 1.0


class OidcRefused(Exception):
    """The JWT is not accepted; the message names the check (`iss: …`), never the token."""


class JwksUnavailable(Exception):
    """The issuer's keys cannot be read now (its endpoint down, too slow, too large): the
    request is answered 503 and may be retried."""


# -- an issuer's keys ------------------------------------------------------------------------


def parse_jwks(raw: bytes | str, source: str) -> dict[str, jwt.PyJWK]:
    """The usable keys of a JWKS document by `kid`: RSA (RS256) and EC P-256 (ES256) only;
    others are left out. JwksUnavailable says what is wrong with the document."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise JwksUnavailable(f"the JWKS of {source} is not JSON") from exc
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise JwksUnavailable(f"the JWKS of {source} has no 'keys' list")
    usable: dict[str, jwt.PyJWK] = {}
    for data in keys:
        if not isinstance(data, dict) or not isinstance(data.get("kid"), str):
            continue
        algorithm = _algorithm_of(data)
        if algorithm is None:
            continue
        try:
            usable[data["kid"]] = jwt.PyJWK(data, algorithm)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue
    return usable


def _algorithm_of(key: Mapping[str, Any]) -> str | None:
    """The one algorithm a key may verify, from its type, or None when it is not allowed."""
    if key.get("use", "sig") != "sig":
        return None
    if key.get("kty") == "RSA":
        algorithm = "RS256"
    elif key.get("kty") == "EC" and key.get("crv") == "P-256":
        algorithm = "ES256"
    else:
        return None
    return algorithm if key.get("alg", algorithm) == algorithm else None


def fetch_jwks(url: str, pool: urllib3.PoolManager | None = None) -> bytes:
    """The JWKS at `url`: connect within JWKS_CONNECT_SECONDS, the whole answer within
    JWKS_FETCH_SECONDS (plus the read in progress), at most JWKS_MAX_BYTES, no redirects."""
    pool = pool or urllib3.PoolManager()
    timeout = urllib3.Timeout(connect=JWKS_CONNECT_SECONDS, read=JWKS_READ_SECONDS)
    end = time.monotonic() + JWKS_FETCH_SECONDS
    try:
        response = pool.request(
            "GET",
            url,
            timeout=timeout,
            retries=False,
            redirect=False,
            preload_content=False,
            headers={"Accept": "application/json"},
        )
        try:
            if response.status != 200:
                raise JwksUnavailable(f"the JWKS at {url} answered HTTP {response.status}")
            chunks: list[bytes] = []
            size = 0
            # Not decoded: a JWKS is small JSON, and a compressed answer (asked for or not)
            # could inflate past any cap before a chunk is counted; it is "not JSON" instead.
            for chunk in response.stream(64 * 1024, decode_content=False):
                size += len(chunk)
                if size > JWKS_MAX_BYTES:
                    raise JwksUnavailable(f"the JWKS at {url} is over {JWKS_MAX_BYTES} bytes")
                if time.monotonic() > end:
                    raise JwksUnavailable(
                        f"the JWKS at {url} did not arrive within {JWKS_FETCH_SECONDS:g} s"
                    )
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            response.release_conn()
            response.close()
    except urllib3.exceptions.HTTPError as exc:
        kind = "timed out" if isinstance(exc, urllib3.exceptions.TimeoutError) else "failed"
        raise JwksUnavailable(f"fetching the JWKS at {url} {kind}") from exc


@dataclass
class IssuerKeys:
    """One issuer's keys, cached; `key(kid)` reads them again once when `kid` is unknown, and
    when they are an hour old. A read that fails keeps the keys it had (as PyPI does), and is
    not tried again within JWKS_REFETCH_SECONDS: requests meanwhile hear of the failure at once
    instead of queueing behind another read of an endpoint that hangs."""

    issuer: Issuer
    fetch: Callable[[str], bytes] = fetch_jwks
    _keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    _read_at: float | None = None  # the last read that gave keys
    _tried_at: float | None = None  # the last read, whatever came of it
    _failure: str | None = None  # why the last read failed, if it did
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def source(self) -> str:
        return self.issuer.jwks_url or str(self.issuer.jwks_file)

    @property
    def usable(self) -> int:
        return len(self._keys)

    def load(self) -> None:
        """Read the keys now (a jwks_file at start); JwksUnavailable says why not."""
        if self.issuer.jwks_file is not None:
            try:
                raw = self.issuer.jwks_file.read_bytes()
            except OSError as exc:
                raise JwksUnavailable(
                    f"cannot read jwks_file {self.issuer.jwks_file}: {exc.strerror or exc}"
                ) from exc
            if len(raw) > JWKS_MAX_BYTES:
                raise JwksUnavailable(f"jwks_file {self.issuer.jwks_file} is over the size cap")
        else:
            assert self.issuer.jwks_url is not None
            raw = self.fetch(self.issuer.jwks_url)
        self._keys = parse_jwks(raw, self.source)
        self._read_at = time.monotonic()

    def key(self, kid: str) -> jwt.PyJWK | None:
        with self._lock:
            now = time.monotonic()
            stale = self._read_at is None or now - self._read_at > JWKS_MAX_AGE_SECONDS
            if not stale and kid in self._keys:
                return self._keys[kid]
            cooling = (
                self.issuer.jwks_file is None
                and self._tried_at is not None
                and now - self._tried_at < JWKS_REFETCH_SECONDS
            )
            if cooling:
                if self._failure is not None and kid not in self._keys:
                    raise JwksUnavailable(self._failure)
                return self._keys.get(kid)
            self._tried_at = now
            try:
                self.load()
            except JwksUnavailable as exc:
                self._failure = str(exc)
                if kid not in self._keys:
                    raise
            else:
                self._failure = None
            return self._keys.get(kid)


# -- the JWT ---------------------------------------------------------------------------------


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OidcRefused(f"{name}: missing or not a number")
    return float(value)


def verify_jwt(
    token: str, trust: TrustConfig, keys: Mapping[str, IssuerKeys], now: float | None = None
) -> dict[str, Any]:
    """The claims of a JWT whose every check passes; OidcRefused names the first that fails.
    JwksUnavailable when the issuer's keys cannot be read now."""
    now = time.time() if now is None else now
    if len(token) > MAX_JWT_BYTES:
        raise OidcRefused(f"malformed: the token is over {MAX_JWT_BYTES} bytes")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except (jwt.DecodeError, ValueError, TypeError, RecursionError) as exc:
        raise OidcRefused("malformed: not a signed JWT (header.payload.signature)") from exc
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        shown = algorithm if isinstance(algorithm, str) and algorithm.isalnum() else "?"
        raise OidcRefused(f"alg: {shown[:16]} is not accepted (only {' or '.join(ALGORITHMS)})")
    issuer_name = unverified.get("iss")
    issuer = trust.issuers.get(issuer_name) if isinstance(issuer_name, str) else None
    if issuer is None:
        raise OidcRefused("iss: not an issuer this hub trusts")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise OidcRefused("kid: the token's header names no key")
    key = keys[issuer.issuer].key(kid)
    if key is None:
        raise OidcRefused(
            "kid: no key of the issuer has this id (even after reading its keys again)"
        )
    if key.algorithm_name != algorithm:
        raise OidcRefused(f"alg: {algorithm} does not fit the issuer's key of this id")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=issuer.audience,
            issuer=issuer.issuer,
            # The times are checked below, each with its own reason.
            options={
                "require": ["iss", "aud", "exp", "iat", "jti"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                # This hub must be the token's only audience, as on PyPI: a token minted for
                # several services is not one this hub should be able to replay elsewhere.
                "strict_aud": True,
            },
        )
    except jwt.InvalidSignatureError as exc:
        raise OidcRefused("signature: does not verify with the issuer's key") from exc
    except jwt.InvalidAudienceError as exc:
        raise OidcRefused(
            f"aud: the token is not for this hub's audience {issuer.audience!r}"
        ) from exc
    except jwt.InvalidIssuerError as exc:
        raise OidcRefused("iss: not an issuer this hub trusts") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise OidcRefused(f"{exc.claim}: missing") from exc
    except jwt.InvalidAlgorithmError as exc:
        raise OidcRefused(f"alg: {algorithm} is not accepted") from exc
    except jwt.InvalidTokenError as exc:
        raise OidcRefused("malformed: the token cannot be read") from exc
    if _number(claims, "exp") <= now - CLOCK_SKEW_SECONDS:
        raise OidcRefused("exp: the token has expired")
    if "nbf" in claims and _number(claims, "nbf") > now + CLOCK_SKEW_SECONDS:
        raise OidcRefused("nbf: the token is not valid yet")
    if _number(claims, "iat") > now + CLOCK_SKEW_SECONDS:
        raise OidcRefused("iat: the token was issued in the future")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise OidcRefused("jti: missing or not a string of at most 256 characters")
    return claims


# -- the publishers --------------------------------------------------------------------------


def _same_text(claim: Any, wanted: str) -> bool:
    return isinstance(claim, str) and claim.lower() == wanted.lower()


def _exact(claim: Any, wanted: str) -> bool:
    return isinstance(claim, str) and claim == wanted


def _workflow_of(claim: Any, publisher: Publisher) -> bool:
    """`job_workflow_ref` is `OWNER/REPO/.github/workflows/FILE@REF`: this publisher's workflow
    file (exactly: file names are case-sensitive) in its own repository (case-insensitively)."""
    if not isinstance(claim, str) or "@" not in claim:
        return False
    repository, sep, file = claim.split("@", 1)[0].partition("/.github/workflows/")
    return (
        bool(sep)
        and repository.lower() == publisher.repository.lower()
        and (file == publisher.workflow)
    )


def _environment(claim: Any, publisher: Publisher) -> bool:
    # GitHub's environment names are case-insensitive; none configured matches any.
    return publisher.environment is None or _same_text(claim, publisher.environment)


# What a publisher requires of the token, claim by claim, as data: a reviewer sees the whole
# policy here. The claims a record keeps (PROVENANCE_CLAIMS) are not checked beyond their type.
PUBLISHER_CLAIMS: tuple[tuple[str, Callable[[Any, Publisher], bool]], ...] = (
    ("iss", lambda claim, p: _exact(claim, p.issuer)),
    ("repository", lambda claim, p: _same_text(claim, p.repository)),
    ("repository_owner_id", lambda claim, p: _exact(claim, p.repository_owner_id)),
    ("job_workflow_ref", _workflow_of),
    ("environment", _environment),
)
PROVENANCE_CLAIMS = ("sha", "ref", "run_id", "run_attempt")


def matching_publishers(
    claims: Mapping[str, Any], publishers: Iterable[Publisher]
) -> list[Publisher]:
    """The publishers whose every condition the claims meet."""
    return [
        p for p in publishers if all(check(claims.get(name), p) for name, check in PUBLISHER_CLAIMS)
    ]


def globs_of(publishers: Iterable[Publisher]) -> tuple[str, ...]:
    """The union of their name globs, in order, each once."""
    return tuple(dict.fromkeys(glob for p in publishers for glob in p.policies))


def _claim_text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)[:MAX_CLAIM_CHARS]


def publisher_record(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The `publisher` of every record this token creates, from the verified claims."""
    return {
        "kind": "github-oidc",
        "issuer": _claim_text(claims, "iss"),
        "repository": _claim_text(claims, "repository"),
        "repository_owner_id": _claim_text(claims, "repository_owner_id"),
        "workflow_ref": _claim_text(claims, "job_workflow_ref"),
        "sha": _claim_text(claims, "sha"),
        "ref": _claim_text(claims, "ref"),
        "environment": _claim_text(claims, "environment"),
        "run_id": _claim_text(claims, "run_id"),
        "run_attempt": _claim_text(claims, "run_attempt"),
    }


# -- the exchange: a verified JWT for a hub token --------------------------------------------


class NoTrustedPublisher(Exception):
    """A valid JWT that no publisher trusts: `403 no-trusted-publisher`; the message names its
    repository and workflow (for the hub's log, not the answer)."""


@dataclass(frozen=True)
class Minted:
    """A hub token just minted: the token itself is given to the caller once, never kept."""

    token: str = field(repr=False)
    expires_at: float
    globs: tuple[str, ...]
    publisher: Mapping[str, Any] = field(default_factory=dict)  # the records' `publisher`


def token_sha256(token: str) -> str:
    """What a minted token is kept and looked up as."""
    return hashlib.sha256(token.encode()).hexdigest()


class TrustedPublishing:
    """`POST /auth/oidc`'s work: verify the JWT, use its `jti` once, match it to publishers,
    mint a hub token for their names. Shared by the requests of one process."""

    def __init__(
        self,
        trust: TrustConfig,
        token_ttl: int,
        fetch: Callable[[str], bytes] = fetch_jwks,
    ) -> None:
        self.trust = trust
        self.token_ttl = token_ttl
        self.keys = {name: IssuerKeys(issuer, fetch) for name, issuer in trust.issuers.items()}

    def load_files(self) -> None:
        """Read every `jwks_file` now, so a broken one stops the hub at start."""
        for keys in self.keys.values():
            if keys.issuer.jwks_file is not None:
                keys.load()
                if not keys.usable:
                    raise JwksUnavailable(
                        f"jwks_file {keys.issuer.jwks_file} holds no RSA (RS256) or EC P-256 "
                        "(ES256) signing key with a 'kid'"
                    )

    def exchange(self, token: str, store: Store) -> Minted:
        claims = verify_jwt(token, self.trust, self.keys)
        if not store.use_jti(claims["iss"], claims["jti"], _number(claims, "exp")):
            raise OidcRefused("jti: this token was already used (a JWT is accepted once)")
        publishers = matching_publishers(claims, self.trust.publishers)
        if not publishers:
            raise NoTrustedPublisher(
                f"{shown(claims.get('repository'))} "
                f"(owner id {shown(claims.get('repository_owner_id'))}, "
                f"workflow {shown(claims.get('job_workflow_ref'))}, "
                f"environment {shown(claims.get('environment'))})"
            )
        publisher = publisher_record(claims)
        minted = Minted(
            "pho_" + secrets.token_urlsafe(32),
            time.time() + self.token_ttl,
            globs_of(publishers),
            publisher,
        )
        store.mint_token(token_sha256(minted.token), minted.globs, publisher, minted.expires_at)
        return minted


def shown(text: object, limit: int = 200) -> str:
    """Outside text (a claim) for a log line: control characters escaped, length capped."""
    value = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in str(text))
    return value if len(value) <= limit else value[: limit - 1] + "…"
