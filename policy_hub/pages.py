"""The hub's web pages (docs/contract.md section 6, "Its web pages"): HTML built on the server
from the same store and permissions as the API, one Jinja2 template a page, no script. Who may
read them (`may_read`), the read-token cookie, the security headers of every page, and the text
filters that escape and cap whatever a policy holds are here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any, Protocol
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from policy_checks.diff import (
    DEFAULT_ENFORCEMENT,
    definition_text,
    diff_policies,
    file_diffs,
    value_text,
)
from policy_checks.naming import NAME_RE, SEMVER_RE, semver_key
from policy_hub.attest import EnvelopeError, verify_envelope
from policy_hub.auth import READ, Tokens
from policy_hub.store import LIST_LIMIT_DEFAULT, Store, is_yanked
from policy_hub.verify import recomputed_check, statement_checks

# The cookie that keeps a read token for the pages: HttpOnly (no script reads it), SameSite=Strict
# (no other site's link or form sends it), Secure when the page was asked for over HTTPS (the hub's
# own --tls-cert, or a proxy on loopback saying X-Forwarded-Proto: https), Path=/, and no
# Max-Age: it ends with the browser session.
COOKIE = "policyhub_read"
# The page a form may send a reader back to: a path of this hub, never another site (`//host`
# and `/\host` are both another site to a browser).
_LOCAL_PATH = re.compile(r"^/(?![/\\])[!-~]{0,2000}$")
FORM_MAX_BYTES = 8192

# Strict: nothing but this hub's own stylesheet; no script, no frames, forms only to the hub.
CSP = (
    "default-src 'none'; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

# Caps on what a page shows of one text (a 1 MiB description): a paragraph, a block (a
# condition, the definition as YAML); templates pass smaller ones for a table's cell.
TEXT_LIMIT = 4000
BLOCK_LIMIT = 200_000
# C0 and C1 controls, DEL, line/paragraph separators and bidi controls (as publisher/printable.py,
# which the hub may not import): shown as escapes, never sent raw into a page.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNPRINTABLE_BUT_LINES = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
CSS = files("policy_hub").joinpath("static/hub.css").read_bytes()


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters not shown)"


def shown(value: Any, limit: int = TEXT_LIMIT) -> str:
    """Any value as one line a page shows: text as is, else compact JSON; control characters
    as escapes; at most `limit` characters. (Jinja2 then HTML-escapes it.)"""
    text = value_text(value, 10 * limit) if not isinstance(value, str) else value
    return _UNPRINTABLE.sub(_escape, _cap(text, limit))


def block(value: Any, limit: int = BLOCK_LIMIT) -> str:
    """Text shown as lines (a condition, YAML): as `shown`, but line ends and tabs kept."""
    text = value if isinstance(value, str) else value_text(value, 10 * limit)
    return _UNPRINTABLE_BUT_LINES.sub(_escape, _cap(text, limit))


def when(stamp: Any) -> str:
    """`2026-12-06T10:15:00Z` as `2026-12-06 10:15 UTC`; anything else as `shown`."""
    try:
        moment = datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return shown(stamp, 40)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def short_digest(digest: Any) -> str:
    text = shown(digest, 100)
    algorithm, _, hexdigits = text.partition(":")
    return f"{algorithm}:{hexdigits[:12]}…" if hexdigits else text[:16]


ENV = Environment(
    loader=PackageLoader("policy_hub", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def abbrev(value: Any, length: int = 12) -> str:
    """The start of an identifier (a commit), escaped, for a cell whose title holds all of it."""
    return shown(value, 200)[:length]


def url_part(value: Any) -> str:
    """One segment or query value of a link, percent-encoded whole (`/` included)."""
    return quote(str(value), safe="")


ENV.filters.update(
    shown=shown, block=block, when=when, short_digest=short_digest, abbrev=abbrev, url=url_part
)


# -- who reads -------------------------------------------------------------------------------


class PageHub(Protocol):
    """What the pages need of the app's state (app.Hub)."""

    store: Store
    tokens: Tokens
    public_read: bool


def hub_of(request: Request) -> PageHub:
    hub: PageHub = request.app.state.hub
    return hub


def may_read(request: Request) -> bool:
    """Whether this request may see policies: a hub with --public-read, or a token of the
    token file (`read`, or `write`, which implies it) in the cookie. A token minted for a
    workflow by POST /auth/oidc is for publishing, not for people: the pages do not take it."""
    hub = hub_of(request)
    if hub.public_read:
        return True
    token = request.cookies.get(COOKIE)
    if not token:
        return False
    granted = hub.tokens.scopes_of(f"Bearer {token}")
    return granted is not None and READ in granted


@dataclass(frozen=True)
class AttestationCheck:
    """What a page says of a version's signature: `state` is `verified`, `failed` or `none`
    (the badge: "verified", "does not verify", "no attestation"), `text` the detail shown
    beside a verified or failed one (which key; why not)."""

    state: str
    text: str


def attestation_check(store: Store, record: dict[str, Any]) -> AttestationCheck:
    """Whether the hub's signed attestation of `record` verifies (docs/contract.md section 9):
    the stored DSSE envelope against the keys of /keys, its statement against the record (the
    subject's name, version and digest; publisher, commit and time), and the digest recomputed
    from the record's files: the checks of `policy-hub verify` (verify.py), less the pinned keys
    that only a consumer can bring."""
    name, version, digest = record["name"], record["version"], str(record["digest"])
    _, envelope = store.attestation(name, version)
    if envelope is None:
        return AttestationCheck("none", "no attestation: published before this hub signed")
    try:
        keyid, signed = verify_envelope(envelope, store.keys())
    except EnvelopeError as exc:
        return AttestationCheck("failed", str(exc))
    checks = [*statement_checks(signed, record, name, version, digest)]
    checks.append(recomputed_check(record, digest))
    failed = [check.said for check in checks if not check.held]
    if failed:
        return AttestationCheck("failed", "; ".join(failed))
    return AttestationCheck("verified", f"signed by this hub, key {keyid[:12]}…")


# -- rendering ---------------------------------------------------------------------------------


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = ENV.get_template(template).render(
        public=hub_of(request).public_read, signed_in=bool(request.cookies.get(COOKIE)), **context
    )
    response = HTMLResponse(html, status)
    response.headers.update(SECURITY_HEADERS)
    return response


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """An HTML answer for a page that cannot be shown (404, 503, 500)."""
    return page(request, "error.html", status, title=title, detail=detail)


def login_page(request: Request, refused: bool = False) -> HTMLResponse:
    """The form that asks for a read token, sent instead of any page that needs one."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = page(
        request,
        "login.html",
        401,
        next=target if _LOCAL_PATH.match(target) else "/",
        refused=refused,
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="policy-hub"'
    return response


def not_found(request: Request, what: str) -> HTMLResponse:
    return error_page(request, 404, "Not found", f"{what} is not in this hub.")


router = APIRouter(include_in_schema=False)


@router.get("/ui/static/hub.css")
def stylesheet() -> Response:
    return Response(
        CSS,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.post("/ui/login")
async def login(request: Request) -> Response:
    """Keep a read token in the cookie when the hub accepts it; else the form again, saying only
    that this token is not accepted (never whether any token exists)."""
    body = await request.body()
    form = parse_qs(body[:FORM_MAX_BYTES].decode("utf-8", "replace"), max_num_fields=4)
    token = (form.get("token") or [""])[0].strip()
    target = (form.get("next") or ["/"])[0]
    if not _LOCAL_PATH.match(target):
        target = "/"
    granted = hub_of(request).tokens.scopes_of(f"Bearer {token}") if token else None
    if granted is None or READ not in granted:
        return login_page(request, refused=True)
    response = RedirectResponse(target, 303)
    response.set_cookie(
        COOKIE,
        token,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.headers.update(SECURITY_HEADERS)
    return response


@router.post("/ui/logout")
def logout(request: Request) -> Response:
    response = RedirectResponse("/", 303)
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    response.headers.update(SECURITY_HEADERS)
    return response


@router.get("/")
def index(request: Request, q: str = "", after: str = "") -> Response:
    if not may_read(request):
        return login_page(request)
    search = q.strip().lower()[:64]
    if after and not NAME_RE.fullmatch(after):
        after = ""
    found, following = hub_of(request).store.policy_page(
        after or None, LIST_LIMIT_DEFAULT, search or None
    )
    return page(request, "index.html", policies=found, q=search, after=after, next=following)


def _records(request: Request, name: str) -> list[dict[str, Any]]:
    """The versions of `name`, newest first in SemVer order; none for a name that cannot be."""
    if not NAME_RE.fullmatch(name):
        return []
    records = hub_of(request).store.records(name)
    return sorted(records, key=lambda r: semver_key(r["version"]), reverse=True)


def _record(request: Request, name: str, version: str) -> dict[str, Any] | None:
    if not NAME_RE.fullmatch(name) or not SEMVER_RE.fullmatch(version) or len(version) > 256:
        return None
    return hub_of(request).store.get(name, version)


@router.get("/ui/policies/{name}")
def policy(request: Request, name: str) -> Response:
    if not may_read(request):
        return login_page(request)
    records = _records(request, name)
    if not records:
        return not_found(request, f"Policy {shown(name, 80)}")
    latest = next((r for r in records if not is_yanked(r)), None)
    previous = {
        r["version"]: records[i + 1]["version"] if i + 1 < len(records) else None
        for i, r in enumerate(records)
    }
    shown_record = latest or records[0]
    return page(
        request,
        "policy.html",
        name=name,
        records=records,
        latest=latest,
        metadata=_object(shown_record.get("metadata")),
        previous=previous,
        is_yanked=is_yanked,
    )


@router.get("/ui/policies/{name}/compare")
def compare(request: Request, name: str, a: str = "", b: str = "") -> Response:
    """The version picker's GET form: on to the diff's own address."""
    if not may_read(request):
        return login_page(request)
    target = f"/ui/policies/{quote(name, safe='')}/diff/{quote(a, safe='+')}...{quote(b, safe='+')}"
    return RedirectResponse(target, 303)


@router.get("/ui/policies/{name}/{version}")
def version_page(request: Request, name: str, version: str) -> Response:
    if not may_read(request):
        return login_page(request)
    record = _record(request, name, version)
    if record is None:
        return not_found(request, f"Version {shown(name, 80)}@{shown(version, 80)}")
    definition = record.get("definition")
    spec = definition.get("spec") if isinstance(definition, dict) else None
    spec = spec if isinstance(spec, dict) else {}
    rules = _list(spec.get("rules"))
    parameters = _object(spec.get("parameters"))
    targets = _list(spec.get("targets"))
    versions = [r["version"] for r in _records(request, name)]
    index = versions.index(version) if version in versions else -1
    older = versions[index + 1] if 0 <= index < len(versions) - 1 else None
    return page(
        request,
        "version.html",
        record=record,
        metadata=_object(record.get("metadata")),
        spec=spec,
        severity=spec.get("severity"),
        enforcement=spec.get("enforcement", DEFAULT_ENFORCEMENT if spec else None),
        targets=targets,
        parameters=parameters,
        rules=[r if isinstance(r, dict) else {"(rule)": r} for r in rules],
        yaml_text=definition_text(definition),
        publisher=record.get("publisher"),
        yanked=record.get("yanked") if is_yanked(record) else None,
        attestation=attestation_check(hub_of(request).store, record),
        older=older,
        github=_github_links(record.get("publisher")),
    )


@router.get("/ui/policies/{name}/diff/{versions}")
def diff_page(request: Request, name: str, versions: str) -> Response:
    """`a...b`: from version a of `name` to version b; `b` may be `other@version`, another
    policy's version, which the page says."""
    if not may_read(request):
        return login_page(request)
    a, sep, b = versions.partition("...")
    if not sep:
        return error_page(
            request,
            404,
            "Not found",
            "A comparison is written VERSION...VERSION, e.g. 1.0.0...1.1.0.",
        )
    other_name, at, other_version = b.rpartition("@")
    b_name, b_version = (other_name, other_version) if at else (name, b)
    old = _record(request, name, a)
    if old is None:
        return not_found(request, f"Version {shown(name, 80)}@{shown(a, 80)}")
    new = _record(request, b_name, b_version)
    if new is None:
        return not_found(request, f"Version {shown(b_name, 80)}@{shown(b_version, 80)}")
    diff = diff_policies(old["metadata"], old["definition"], new["metadata"], new["definition"])
    texts = file_diffs(
        (old["metadata"], old["definition"]),
        (new["metadata"], new["definition"]),
        f"{name}@{a}",
        f"{b_name}@{b_version}",
    )
    return page(
        request,
        "diff.html",
        name=name,
        old=old,
        new=new,
        diff=diff,
        texts=texts,
        itself=old["name"] == new["name"] and old["version"] == new["version"],
        other_policy=old["name"] != new["name"],
    )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
_SHA = re.compile(r"^[0-9a-f]{40}$")
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


def _github_links(publisher: Any) -> dict[str, str]:
    """Links to the repository, commit and run of a GitHub publisher, only when each part is
    exactly what GitHub's claims look like (never a link built from arbitrary text)."""
    if not isinstance(publisher, dict) or publisher.get("issuer") != GITHUB_ISSUER:
        return {}
    repository = publisher.get("repository")
    if not isinstance(repository, str) or not _REPOSITORY.match(repository):
        return {}
    base = f"https://github.com/{repository}"
    links = {"repository": base}
    sha = publisher.get("sha")
    if isinstance(sha, str) and _SHA.match(sha):
        links["commit"] = f"{base}/commit/{sha}"
    run_id = publisher.get("run_id")
    if isinstance(run_id, str | int) and str(run_id).isdigit():
        links["run"] = f"{base}/actions/runs/{run_id}"
    return links
