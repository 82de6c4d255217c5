"""The HTTP face of the hub: routes, the auth dependencies, the body cap, every answer in the
OpenAPI document, and the JSON error shape `{"error": code, "detail": text}` of every refusal
(a database that does not answer included: `503 unavailable`). The routes see only the `Store`
protocol, so both engines answer alike. Test-only fault injection is a middleware (faults.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import anyio.to_thread
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from policy_checks.digest import policy_digest
from policy_checks.naming import NAME_PATTERN, SEMVER_PATTERN, semver_key
from policy_hub.answers import Answer, digest_mismatch, error_body, metadata_mismatch
from policy_hub.attest import Signer
from policy_hub.auth import READ, WRITE, Caller, Tokens, bearer_token
from policy_hub.faults import FaultInjection, Faults
from policy_hub.models import (
    IDEMPOTENCY_KEY_PATTERN,
    BadRequest,
    DigestMismatch,
    Envelope,
    Exists,
    Forbidden,
    ForbiddenName,
    Health,
    InFlight,
    Internal,
    Invalid,
    InvalidOidcToken,
    KeyReused,
    Keys,
    MetadataMismatch,
    NoAttestation,
    NotFound,
    NoTrustedPublisher,
    OidcIn,
    OidcToken,
    PolicyIn,
    PolicyList,
    PolicyRecord,
    PolicyVersions,
    RateLimited,
    TooLarge,
    Unauthorized,
    Unavailable,
    YankIn,
    metadata_mismatches,
)
from policy_hub.oidc import (
    JwksUnavailable,
    OidcRefused,
    TrustedPublishing,
    shown,
    token_sha256,
)
from policy_hub.oidc import (
    NoTrustedPublisher as NoPublisherMatched,
)
from policy_hub.pages import error_page
from policy_hub.pages import router as pages_router
from policy_hub.store import (
    LIST_LIMIT_DEFAULT,
    LIST_LIMIT_MAX,
    Provenance,
    Store,
    StoreUnavailable,
    sha256_of_body,
)

log = logging.getLogger("policy_hub.oidc")  # `serve` logs it at INFO (cli._log_config)

MAX_BODY_BYTES = 2 * 1024 * 1024
# POST /auth/oidc's body: a JWT of GitHub is ~1.2 KiB (oidc.MAX_JWT_BYTES caps the token).
MAX_OIDC_BODY_BYTES = 64 * 1024
# The sync routes run in anyio's worker threads, 40 by default, which would cap concurrency
# (SQLite's busy waits hold a thread); requests here are short, so a larger pool is cheap.
WORKER_THREADS = 100


class HubError(Exception):
    """An answer other than success: status, error code, detail, extra fields and headers."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers
        self.extra = extra


def error_response(
    status: int, error: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(error_body(error, detail, **extra), status, headers=headers)


class BodyLimit:
    """Refuses bodies over `limit` bytes with 413 before they are read whole: first by
    Content-Length, then by counting while streaming (chunked uploads declare no length)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = [v for k, v in scope["headers"] if k == b"content-length"]
        if declared:
            text = declared[0].decode("latin-1").strip()
            if len(declared) > 1 or not text.isdigit():
                await error_response(400, "bad-request", "invalid Content-Length")(
                    scope, receive, send
                )
                return
            if int(text) > self.limit:
                await self._too_large(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away: nothing to answer.
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, "too-large", f"request body exceeds {self.limit} bytes")
        await response(scope, receive, send)


def _errors_of(exc: RequestValidationError | ValidationError) -> list[dict[str, Any]]:
    # Only the location, message and type: inputs can be huge and ctx may not be JSON.
    return [
        {
            "loc": list(e.get("loc", ())),
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()[:20]
    ]


# The bodies of a status that has several error codes, told apart by `error`.
CONFLICT = Annotated[Exists | InFlight, Field(discriminator="error")]
POST_REFUSAL = Annotated[
    Invalid | DigestMismatch | MetadataMismatch | KeyReused, Field(discriminator="error")
]


def _header(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": schema}


# Every answer a route can give besides its success, for `responses=` (and so /openapi.json).
# 400/413 come from BodyLimit and 500 from internal_error, for any route; 503 from a database
# that does not answer (database_unavailable) and, in tests, from FaultInjection, as 429 is
# (docs/contract.md: any endpoint may).
ANSWERS: dict[int, dict[str, Any]] = {
    400: {"model": BadRequest, "description": "The request's framing cannot be read."},
    401: {
        "model": Unauthorized,
        "description": "Missing, malformed or unknown bearer token.",
        "headers": {"WWW-Authenticate": _header("`Bearer`", {"type": "string"})},
    },
    403: {
        "model": Annotated[Forbidden | ForbiddenName, Field(discriminator="error")],
        "description": "`forbidden`: the token lacks the scope this operation needs; "
        "`forbidden-name`: it may write, but not this name (nothing was stored).",
    },
    409: {
        "model": CONFLICT,
        "description": "`exists`: the version is already published (`digest` is the stored "
        "one); `in-flight`: the same Idempotency-Key is being processed, retry.",
    },
    413: {"model": TooLarge, "description": "The request body is too large."},
    429: {
        "model": RateLimited,
        "description": "Rate limited.",
        "headers": {
            "Retry-After": _header("seconds to wait", {"type": "string", "pattern": "^[0-9]+$"})
        },
    },
    500: {"model": Internal, "description": "An unexpected failure of the hub."},
    503: {"model": Unavailable, "description": "Temporarily unavailable; retry."},
}


def answers(
    statuses: tuple[int, ...], special: dict[int, dict[str, Any]] | None = None
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: ANSWERS for `statuses` and for 400/413/500 (any route may give
    those), then this route's `special` entries, in status order."""
    chosen = {status: ANSWERS[status] for status in {400, 413, 500, *statuses}}
    chosen.update(special or {})
    return {status: chosen[status] for status in sorted(chosen)}


# No 403 for a read: every token may read.
READ_ANSWERS = (401, 429, 503)
WRITE_ANSWERS = (401, 403, 409, 429, 503)


@dataclass(frozen=True)
class Hub:
    """What the routes work with; kept on `app.state.hub`."""

    store: Store
    tokens: Tokens
    signer: Signer
    trusted: TrustedPublishing | None = None  # --publishers; None: POST /auth/oidc is 404
    # --public-read: anyone may read (the API's GETs and the pages) without a token.
    public_read: bool = False


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


bearer = HTTPBearer(auto_error=False)


def caller_of(request: Request) -> Caller | None:
    """Who made this request, as the hub verified it; None when nobody it knows. The sources,
    in order: the static tokens (--token-file, POLICY_HUB_SERVER_TOKENS, --no-auth), then the
    tokens minted by POST /auth/oidc (looked up by their SHA-256, in the store, not expired)."""
    authorization = request.headers.get("authorization")
    hub = hub_of(request)
    caller = hub.tokens.caller_of(authorization)
    if caller is not None or hub.trusted is None:
        return caller
    token = bearer_token(authorization)
    minted = hub.store.minted_caller(token_sha256(token)) if token else None
    if minted is None:
        return None
    globs, publisher = minted
    return Caller(frozenset((READ, WRITE)), globs, publisher)


def verified_caller(request: Request) -> Caller:
    """The caller _authorize kept for this request (a route behind require_write)."""
    caller: Caller = request.state.caller
    return caller


def forbid_unless_writes(caller: Caller, name: str) -> None:
    """`403 forbidden-name` unless `caller` may write `name`: decided before anything is read
    or stored, so the answer is the same whether or not the version exists."""
    if not caller.may_write(name):
        raise HubError(
            403, "forbidden-name", "this token may not write policies of this name", name=name
        )


def _authorize(request: Request, scope: str) -> None:
    if scope == READ and hub_of(request).public_read and not request.headers.get("authorization"):
        return
    caller = caller_of(request)
    if caller is None:
        raise HubError(
            401,
            "unauthorized",
            "missing, malformed or unknown bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if scope not in caller.scopes:
        raise HubError(403, "forbidden", f"this token lacks the {scope} scope")
    request.state.caller = caller
    if scope == WRITE:
        request.state.writer = True


# The bearer dependency only documents the scheme in /openapi.json; _authorize decides.
def require_read(request: Request, _: Annotated[Any, Depends(bearer)] = None) -> None:
    _authorize(request, READ)


def require_write(request: Request, _: Annotated[Any, Depends(bearer)] = None) -> None:
    _authorize(request, WRITE)


async def policy_body(request: Request) -> PolicyIn:
    raw = await request.body()
    try:
        # pydantic's own JSON parser: it refuses NaN/Infinity and overly deep nesting.
        return PolicyIn.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]
        ) from exc


async def oidc_body(request: Request) -> bytes:
    """POST /auth/oidc's body, refused over MAX_OIDC_BODY_BYTES (BodyLimit has read it whole,
    within the hub's own cap)."""
    raw = await request.body()
    if len(raw) > MAX_OIDC_BODY_BYTES:
        raise HubError(413, "too-large", f"request body exceeds {MAX_OIDC_BODY_BYTES} bytes")
    return raw


async def yank_body(request: Request) -> YankIn:
    raw = await request.body()
    try:
        return YankIn.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]
        ) from exc


NamePath = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64)]
VersionPath = Annotated[str, Path(pattern=SEMVER_PATTERN, max_length=256)]


router = APIRouter()


@router.get(
    "/health",
    response_model=Health,
    responses=answers(
        (),
        {
            503: {
                "model": Unavailable,
                "description": "The database does not answer: this process cannot serve now.",
            }
        },
    ),
    tags=["health"],
    summary="Liveness and whether the database answers (no auth)",
)
def health(request: Request) -> dict[str, str]:
    # StoreUnavailable becomes the 503 (database_unavailable), as for every route.
    hub_of(request).store.check()
    return {"status": "ok", "database": "ok"}


@router.get(
    "/policies/{name}/{version}",
    response_model=PolicyRecord,
    responses=answers(
        READ_ANSWERS,
        {
            404: {"model": NotFound, "description": "No such policy version."},
            422: {"model": Invalid, "description": "The name or version is invalid."},
        },
    ),
    dependencies=[Depends(require_read)],
    tags=["policies"],
    summary="One policy version",
)
def get_policy_version(
    request: Request,
    name: Annotated[str, Path(pattern=NAME_PATTERN, max_length=64)],
    version: Annotated[str, Path(pattern=SEMVER_PATTERN, max_length=256)],
) -> dict[str, Any]:
    record = hub_of(request).store.get(name, version)
    if record is None:
        raise HubError(404, "not-found", f"{name}@{version} is not in the hub")
    return record


@router.get(
    "/policies",
    response_model=PolicyList,
    responses=answers(
        READ_ANSWERS,
        {422: {"model": Invalid, "description": "`after` or `limit` is out of range."}},
    ),
    dependencies=[Depends(require_read)],
    tags=["policies"],
    summary="Every policy, a page at a time, in byte order of name",
)
def list_policies(
    request: Request,
    after: Annotated[
        str | None,
        Query(
            pattern=NAME_PATTERN,
            max_length=64,
            description="list the names after this one (the `next` of the previous page)",
        ),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=LIST_LIMIT_MAX, description="at most this many policies")
    ] = LIST_LIMIT_DEFAULT,
) -> dict[str, Any]:
    found, following = hub_of(request).store.policy_page(after, limit)
    return {"policies": [summary.as_json() for summary in found], "next": following}


@router.get(
    "/policies/{name}",
    response_model=PolicyVersions,
    responses=answers(
        READ_ANSWERS,
        {
            404: {"model": NotFound, "description": "No version of this policy."},
            422: {"model": Invalid, "description": "The name is invalid."},
        },
    ),
    dependencies=[Depends(require_read)],
    tags=["policies"],
    summary="The versions of one policy, in SemVer order",
)
def get_policy(
    request: Request, name: Annotated[str, Path(pattern=NAME_PATTERN, max_length=64)]
) -> dict[str, Any]:
    versions = sorted(hub_of(request).store.versions(name), key=semver_key)
    if not versions:
        raise HubError(404, "not-found", f"{name} is not in the hub")
    return {"name": name, "versions": versions}


@router.post(
    "/policies",
    status_code=201,
    response_model=PolicyRecord,
    responses=answers(
        WRITE_ANSWERS,
        {
            201: {"description": "Created; a replay of the same key and body answers the same."},
            422: {
                "model": POST_REFUSAL,
                "description": "`invalid`: the request does not match this document. A body "
                "that does can still be refused: `digest-mismatch`, `metadata-mismatch` "
                "(rules between fields, which a schema cannot state) and "
                "`idempotency-key-reused` (the key was first used with another body).",
            },
        },
    ),
    dependencies=[Depends(require_write)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PolicyIn.model_json_schema()}},
        }
    },
    tags=["policies"],
    summary="Publish a policy version (immutable, idempotent)",
)
def create_policy(
    request: Request,
    policy: Annotated[PolicyIn, Depends(policy_body)],
    idempotency_key: Annotated[
        str,
        Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY_PATTERN, max_length=400),
    ],
) -> JSONResponse:
    hub = hub_of(request)
    caller = verified_caller(request)
    forbid_unless_writes(caller, policy.name)
    refused = content_refusal(policy)
    if refused is not None:
        hub.store.audit(policy.name, policy.version, idempotency_key, refused)
        return JSONResponse(refused.body, refused.status)
    fields = policy.model_dump()
    provenance = Provenance(caller.publisher, hub.signer)
    answer = hub.store.publish(idempotency_key, sha256_of_body(fields), fields, provenance)
    return JSONResponse(answer.body, answer.status)


@router.post(
    "/auth/oidc",
    response_model=OidcToken,
    responses=answers(
        (),
        {
            200: {"description": "A hub token for the names of the matching publishers."},
            401: {
                "model": InvalidOidcToken,
                "description": "The JWT failed a check (signature, iss, aud, exp, nbf, iat, jti"
                "...); `reason` names it.",
            },
            403: {
                "model": NoTrustedPublisher,
                "description": "A valid JWT that no trusted publisher matches.",
            },
            404: {
                "model": NotFound,
                "description": "This hub trusts no publisher (started without --publishers).",
            },
            422: {"model": Invalid, "description": 'The body is not `{"token": "<JWT>"}`.'},
            503: {
                "model": Unavailable,
                "description": "The issuer's keys (JWKS) or the database cannot be read now.",
            },
        },
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": OidcIn.model_json_schema()}},
        }
    },
    tags=["auth"],
    summary="Exchange an OpenID Connect token of a trusted publisher for a hub token (no auth)",
)
def exchange_oidc_token(request: Request, body: Annotated[bytes, Depends(oidc_body)]) -> Any:
    trusted = hub_of(request).trusted
    if trusted is None:
        raise HubError(
            404,
            "not-found",
            "this hub trusts no publisher: trusted publishing needs policy-hub serve "
            "--publishers FILE",
        )
    try:
        token = OidcIn.model_validate_json(body).token
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]
        ) from exc
    store = hub_of(request).store
    try:
        minted = trusted.exchange(token, store)
    except OidcRefused as exc:
        log.info("trusted publishing refused: %s", exc)
        raise HubError(
            401, "invalid-oidc-token", f"the token is refused: {exc}", reason=str(exc)
        ) from None
    except NoPublisherMatched as exc:
        log.info("trusted publishing: no trusted publisher matches %s", exc)
        raise HubError(
            403,
            "no-trusted-publisher",
            "the token is valid, but no trusted publisher of this hub matches its repository, "
            "owner, workflow and environment",
        ) from None
    except JwksUnavailable as exc:
        raise HubError(503, "unavailable", f"the issuer's keys cannot be read now: {exc}") from None
    who = minted.publisher
    log.info(
        "trusted publishing: %s, workflow %s, run %s may publish %s until %s",
        shown(who.get("repository")),
        shown(who.get("workflow_ref")),
        shown(who.get("run_id")),
        ", ".join(minted.globs),
        expires_at := time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(minted.expires_at)),
    )
    return {
        "token": minted.token,
        "expires_at": expires_at,
        "policies": list(minted.globs),
    }


@router.get(
    "/keys",
    response_model=Keys,
    # Not under /policies, so the test-only fault injection leaves it alone: no 429 here.
    responses=answers((503,)),
    tags=["provenance"],
    summary="Every public key the hub has signed attestations with (no auth)",
)
def get_keys(request: Request) -> dict[str, Any]:
    return {"keys": hub_of(request).store.keys()}


@router.get(
    "/policies/{name}/{version}/attestation",
    response_model=Envelope,
    responses=answers(
        READ_ANSWERS,
        {
            404: {
                "model": Annotated[NotFound | NoAttestation, Field(discriminator="error")],
                "description": "`not-found`: no such version; `no-attestation`: the version was "
                "published before the hub signed its records.",
            },
            422: {"model": Invalid, "description": "The name or version is invalid."},
        },
    ),
    dependencies=[Depends(require_read)],
    tags=["provenance"],
    summary="The signed DSSE envelope of a version's in-toto Statement",
)
def get_attestation(request: Request, name: NamePath, version: VersionPath) -> dict[str, Any]:
    found, envelope = hub_of(request).store.attestation(name, version)
    if not found:
        raise HubError(404, "not-found", f"{name}@{version} is not in the hub")
    if envelope is None:
        raise HubError(
            404,
            "no-attestation",
            f"{name}@{version} was published before this hub signed its records",
        )
    return envelope


@router.post(
    "/policies/{name}/{version}/yank",
    response_model=PolicyRecord,
    responses=answers(
        (401, 403, 429, 503),
        {
            200: {"description": "The record, `yanked` set; a second yank answers the first."},
            404: {"model": NotFound, "description": "No such policy version."},
            422: {"model": Invalid, "description": "The name, version or reason is invalid."},
        },
    ),
    dependencies=[Depends(require_write)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": YankIn.model_json_schema()}},
        }
    },
    tags=["policies"],
    summary="Yank a version: it stays readable, marked, and is never published again",
)
def yank_policy_version(
    request: Request,
    name: NamePath,
    version: VersionPath,
    body: Annotated[YankIn, Depends(yank_body)],
) -> dict[str, Any]:
    forbid_unless_writes(verified_caller(request), name)
    record = hub_of(request).store.yank(name, version, body.reason)
    if record is None:
        raise HubError(404, "not-found", f"{name}@{version} is not in the hub")
    return record


def content_refusal(policy: PolicyIn) -> Answer | None:
    """The 422 for a body the schema allows but the hub must not store: a digest that is not
    its content's, or metadata that names another policy version. Decided before the key is
    claimed, so the same key with a corrected body may still create."""
    computed = policy_digest(policy.metadata, policy.definition)
    if computed != policy.digest:
        return digest_mismatch(policy.digest, computed)
    mismatches = metadata_mismatches(policy)
    return metadata_mismatch(mismatches) if mismatches else None


def _audit_refusal(request: Request, status: int, error: str) -> None:
    # Only for POSTs that passed auth: an anonymous client must not write to the file.
    if request.method == "POST" and request.scope.get("state", {}).get("writer"):
        hub_of(request).store.audit(
            None, None, request.headers.get("idempotency-key"), Answer(status, {}, error)
        )


def hub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HubError)
    try:
        _audit_refusal(request, exc.status, exc.error)
    except StoreUnavailable as lost:
        return database_unavailable(request, lost)
    return error_response(exc.status, exc.error, exc.detail, exc.headers, **exc.extra)


def invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    try:
        _audit_refusal(request, 422, "invalid")
    except StoreUnavailable as lost:
        return database_unavailable(request, lost)
    errors = _errors_of(exc)
    summary = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:3])
    return error_response(422, "invalid", summary or "invalid request", errors=errors)


def is_page(request: Request) -> bool:
    """Whether the request is for a web page (answered in HTML), not the API."""
    path = request.url.path
    return path == "/" or path.startswith("/ui/")


def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        # Starlette names the methods of the first route that matched the path; /policies has
        # one route for GET and one for POST.
        headers["Allow"] = ", ".join(allowed_methods(request))
    if is_page(request):
        titles = {404: "Not found", 405: "Not allowed"}
        page = error_page(
            request,
            exc.status_code,
            titles.get(exc.status_code, "Cannot show this page"),
            "There is no such page in this hub."
            if exc.status_code == 404
            else "The pages only read: this request cannot be answered.",
        )
        page.headers.update(headers)
        return page
    codes = {404: "not-found", 405: "method-not-allowed"}
    return error_response(
        exc.status_code,
        codes.get(exc.status_code, f"http-{exc.status_code}"),
        str(exc.detail),
        headers or None,
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this request's path (a route matches FULL only for a
    method it serves)."""
    routes = request.app.router.routes
    return [
        method
        for method in ("GET", "HEAD", "POST")
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]


def database_unavailable(request: Request, exc: Exception) -> Response:
    """A database that does not answer (down, restarting, the connection lost mid-request):
    nothing was acknowledged, so the client retries, a POST with the same key; its detail is
    already redacted by the store."""
    if is_page(request):
        return error_page(
            request, 503, "Unavailable", "The hub's database does not answer now; try again soon."
        )
    return error_response(503, "unavailable", str(exc) or "the database does not answer; retry")


async def internal_error(request: Request, exc: Exception) -> Response:
    if is_page(request):
        return error_page(request, 500, "Hub error", "The hub failed to show this page.")
    return error_response(500, "internal", "internal server error")


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = max(limiter.total_tokens, WORKER_THREADS)
    yield


def create_app(
    store: Store,
    tokens: Tokens,
    faults: Faults | None = None,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    trusted: TrustedPublishing | None = None,
    signer: Signer | None = None,
    public_read: bool = False,
) -> FastAPI:
    """The hub as an ASGI app over an initialized store (either engine); `faults` (tests only)
    adds the FaultInjection middleware. `signer` signs the attestations (`serve` and the
    embedded hub pass the --signing-key one); without one, a key made for this app only, which
    /keys still lists once it has signed (keys are stored with the records they sign).
    `public_read` lets anyone read without a token."""
    app = FastAPI(
        title="Policy Hub",
        version="1.0.0",
        description=(
            "The reference Policy Hub (docs/contract.md section 5). Every request but /health, "
            "/openapi.json, /keys and POST /auth/oidc needs `Authorization: Bearer <token>`: GET "
            "needs the read scope, POST the write scope (write implies read). POST /auth/oidc "
            "exchanges a trusted publisher's OpenID Connect token for such a token (section 9)."
        ),
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.hub = Hub(
        store,
        tokens,
        signer or Signer(Ed25519PrivateKey.generate()),
        trusted,
        public_read=public_read,
    )
    app.include_router(router)
    app.include_router(pages_router)
    if faults is not None:
        # Inside BodyLimit (the last added is outermost): a refused body draws no faults.
        app.add_middleware(FaultInjection, faults=faults)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    # Sync handlers run in the threadpool, where their audit writes to SQLite belong.
    app.add_exception_handler(HubError, hub_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(StoreUnavailable, database_unavailable)
    app.add_exception_handler(Exception, internal_error)
    return app
