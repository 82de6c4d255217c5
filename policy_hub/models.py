"""What the hub accepts and answers: the request and response bodies (which FastAPI turns into
/openapi.json) and their patterns. The name and version patterns are the harness's own
(policy_checks.naming), so both sides accept exactly the same ones.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policy_checks.digest import DIGEST_PATTERN
from policy_checks.naming import NAME_PATTERN, SEMVER_PATTERN
from policy_hub.store import MAX_YANK_REASON

RELEASE_SHA_PATTERN = r"^[0-9a-f]{40}$"
# Printable ASCII without spaces: the harness sends `<sha>:<name>@<version>`.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,400}$"


class PolicyIn(BaseModel):
    """The body of `POST /policies`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    version: str = Field(pattern=SEMVER_PATTERN, max_length=256)
    metadata: dict[str, Any] = Field(
        description="`name` and `version` in it, when present, must equal the body's "
        "(else 422 metadata-mismatch)"
    )
    definition: dict[str, Any]
    digest: str = Field(
        pattern=DIGEST_PATTERN,
        description="sha256 of the canonical JSON of metadata and definition (docs/contract.md "
        "section 4), which the hub recomputes (else 422 digest-mismatch)",
    )
    release_sha: str = Field(pattern=RELEASE_SHA_PATTERN)

    @model_validator(mode="after")
    def _finite_numbers(self) -> PolicyIn:
        # NaN and Infinity are not JSON: they would make the digest unreproducible.
        pending: list[Any] = [self.metadata, self.definition]
        while pending:
            value = pending.pop()
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError("numbers must be finite (no NaN, Infinity or overflow)")
            if isinstance(value, dict):
                pending.extend(value.values())
            elif isinstance(value, list):
                pending.extend(value)
        return self


def metadata_mismatches(policy: PolicyIn) -> list[str]:
    """What in `metadata` names another policy version than the body does (absent is fine: a
    repository may bring its own metadata schema)."""
    found = []
    for field, expected in (("name", policy.name), ("version", policy.version)):
        if field in policy.metadata and policy.metadata[field] != expected:
            # The client's own value, but of any size and type: JSON, and only its start.
            shown = json.dumps(policy.metadata[field], ensure_ascii=False)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            found.append(f"metadata.{field} is {shown}, not {json.dumps(expected)}")
    return found


class Yanked(BaseModel):
    """When and why a version was yanked (it stays readable, is never published again)."""

    at: str = Field(description="ISO-8601 UTC")
    reason: str


class PolicyRecord(BaseModel):
    """A stored policy version, as GET answers it and as a 201 returns it."""

    name: str
    version: str
    digest: str
    published_at: str = Field(description="ISO-8601 UTC, e.g. 2026-11-24T10:00:00Z")
    metadata: dict[str, Any]
    definition: dict[str, Any]
    release_sha: str
    publisher: dict[str, Any] | None = Field(
        default=None,
        description="Who published it, as the hub verified it (docs/contract.md section 9): "
        '`{"kind": "token", "label": ...}` or `{"kind": "github-oidc", ...}`; null for a record '
        "made before the hub kept provenance",
    )
    yanked: Yanked | None = Field(default=None, description="null unless yanked")


# A yank's reason: up to MAX_YANK_REASON characters, none of them a control character (C0, DEL,
# C1, the Unicode line and paragraph separators), and not only spaces.
_CONTROL = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
YANK_REASON_PATTERN = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"


class YankIn(BaseModel):
    """The body of `POST /policies/{name}/{version}/yank`."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=1,
        max_length=MAX_YANK_REASON,
        pattern=YANK_REASON_PATTERN,
        description="why consumers must not use it: one line, no control characters",
    )


class Signature(BaseModel):
    keyid: str
    sig: str = Field(description="base64 Ed25519 signature of the DSSE PAE")


class Envelope(BaseModel):
    """A DSSE envelope of an in-toto Statement v1 (docs/contract.md section 9)."""

    payloadType: Literal["application/vnd.in-toto+json"]
    payload: str = Field(description="base64 of the Statement's JSON")
    signatures: list[Signature]


class PublicKey(BaseModel):
    """An Ed25519 public key as JWK (RFC 8037); `kid` is the signatures' `keyid`: the
    unpadded base64url SHA-256 of the 32 raw key bytes."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str


class Keys(BaseModel):
    """Every public key the hub has ever signed with (old ones stay)."""

    keys: list[PublicKey]


class PolicyVersions(BaseModel):
    """The versions of one policy, in SemVer precedence order."""

    name: str
    versions: list[str]


class PolicySummaryOut(BaseModel):
    """One policy in `GET /policies`."""

    name: str
    latest: str | None = Field(
        description="the highest SemVer version that is not yanked; null when every one is"
    )
    versions: list[str] = Field(
        description="its versions in SemVer precedence order, yanked ones included (as "
        "GET /policies/{name} lists them)"
    )
    published_at: str = Field(description="when its last version was published (ISO-8601 UTC)")


class PolicyList(BaseModel):
    """A page of policies, in byte order of name."""

    policies: list[PolicySummaryOut]
    next: str | None = Field(
        description="the `after` of the next page; null on the last page",
    )


class Health(BaseModel):
    """This process answers, and so does its database."""

    status: Literal["ok"]
    database: Literal["ok"]


# -- error answers: `{"error": code, "detail": text}`, one model per code ----------------


class ErrorBody(BaseModel):
    """Every error answer: a stable machine-readable `error` code and a `detail` for people."""

    model_config = ConfigDict(extra="forbid")

    error: str
    detail: str


class BadRequest(ErrorBody):
    """The request's framing cannot be read (e.g. an invalid Content-Length)."""

    error: Literal["bad-request"]


class Unauthorized(ErrorBody):
    """The bearer token is missing, malformed or unknown."""

    error: Literal["unauthorized"]


class Forbidden(ErrorBody):
    """The token lacks the scope this operation needs (POST needs write)."""

    error: Literal["forbidden"]


class ForbiddenName(ErrorBody):
    """The caller may write, but not this name (its token's globs do not match it); nothing
    was stored, whether or not the version exists."""

    error: Literal["forbidden-name"]
    name: str


class NotFound(ErrorBody):
    """No such policy, or no such version of it."""

    error: Literal["not-found"]


class NoAttestation(ErrorBody):
    """The version exists but was published before the hub signed its records."""

    error: Literal["no-attestation"]


class Exists(ErrorBody):
    """The version is already published and immutable; `digest` is the STORED one."""

    error: Literal["exists"]
    name: str
    version: str
    digest: str


class InFlight(ErrorBody):
    """A request with the same Idempotency-Key is being processed; retry later."""

    error: Literal["in-flight"]


class TooLarge(ErrorBody):
    """The request body is over the hub's limit (2 MiB unless configured)."""

    error: Literal["too-large"]


class Problem(BaseModel):
    """One reason a request does not match this document: where, what, and its kind."""

    model_config = ConfigDict(extra="forbid")

    loc: list[str | int]
    msg: str
    type: str


class Invalid(ErrorBody):
    """The request does not match this document (path, header or body); up to 20 problems."""

    error: Literal["invalid"]
    errors: list[Problem]


class DigestMismatch(ErrorBody):
    """The body's `digest` is not the digest of its `metadata` and `definition`."""

    error: Literal["digest-mismatch"]


class MetadataMismatch(ErrorBody):
    """`metadata.name` or `metadata.version` is present and differs from `name` or `version`."""

    error: Literal["metadata-mismatch"]


class KeyReused(ErrorBody):
    """This Idempotency-Key was first used with a different body."""

    error: Literal["idempotency-key-reused"]


class RateLimited(ErrorBody):
    """Too many requests; retry after `Retry-After` seconds."""

    error: Literal["rate-limited"]


class Unavailable(ErrorBody):
    """The hub or its database is temporarily unavailable; retry (a POST with the same
    Idempotency-Key: nothing answered 503 was acknowledged)."""

    error: Literal["unavailable"]


class Internal(ErrorBody):
    """An unexpected failure of the hub; a retry with the same Idempotency-Key is safe."""

    error: Literal["internal"]


# -- trusted publishing (docs/contract.md section 9) -----------------------------------------


class OidcIn(BaseModel):
    """The body of `POST /auth/oidc`: an OpenID Connect ID token (a JWT) of a trusted issuer."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(description="the JWT, e.g. GitHub Actions' ID token for this audience")


class OidcToken(BaseModel):
    """A hub token for the names of the publishers the JWT matched, until `expires_at`."""

    token: str = Field(description="a bearer token for GET and POST; shown once, kept as a hash")
    expires_at: str = Field(description="ISO 8601 UTC, e.g. 2026-12-06T10:15:00Z")
    policies: list[str] = Field(description="the name globs it may publish")


class InvalidOidcToken(ErrorBody):
    """The JWT failed a check; `reason` names it (`exp: the token has expired`)."""

    error: Literal["invalid-oidc-token"]
    reason: str


class NoTrustedPublisher(ErrorBody):
    """The JWT is valid but no trusted publisher has every one of its conditions met."""

    error: Literal["no-trusted-publisher"]
