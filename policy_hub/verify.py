"""`policy-hub verify` and `policy-hub yank`: a consumer's proof of where a version came from
(docs/contract.md section 9), and a publisher's yank, against any hub over HTTP.

The HTTP client here is small on purpose: `policy_hub` may not import `publisher`
(pyproject's import-linter contracts), whose HubClient is built around a release (its retry
policy, deadlines per version, the run's outage flag). This one sends a handful of requests, each
bounded (CONNECT_SECONDS, READ_SECONDS, the whole answer ANSWER_SECONDS, at most TRIES tries with
pauses of at most MAX_PAUSE_SECONDS), and all of them together by COMMAND_SECONDS: no try starts
after it, and a try then running ends within one read (READ_SECONDS). Text from the hub is
shown only through `publisher.printable.printable` (the one escaping function; the contracts allow
policy_hub that import alone), with the token registered as a secret.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from policy_checks.digest import DIGEST_RE, policy_digest
from policy_checks.model import PolicyFiles
from policy_checks.naming import DEFINITION_FILE, METADATA_FILE, NAME_RE, SEMVER_RE
from policy_hub.attest import PREDICATE_TYPE, STATEMENT_TYPE, EnvelopeError, verify_envelope
from publisher.printable import printable, register_secret

TOKEN_ENV = "POLICY_HUB_TOKEN"
CONNECT_SECONDS = 5.0
READ_SECONDS = 15.0
ANSWER_SECONDS = 20.0  # one whole answer, however slowly it trickles
TRIES = 3  # for 429, 502, 503, 504 and connection failures
MAX_PAUSE_SECONDS = 5.0
COMMAND_SECONDS = 60.0  # every request of one verify or yank together
MAX_ANSWER_BYTES = 8 * 1024 * 1024  # a record is at most 2 MiB of body, as JSON a few times less

OK, FAILED, UNUSABLE = 0, 1, 4


class Unusable(Exception):
    """A usage error or a hub that cannot be read: one line, exit 4."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # parsed JSON, or None
    retry_after: float | None = None  # seconds, when the hub said (429/503)


def parse_ref(ref: str) -> tuple[str, str]:
    """`name@version`, each as the harness spells them; Unusable otherwise."""
    name, at, version = ref.partition("@")
    if not at or not NAME_RE.fullmatch(name) or not SEMVER_RE.fullmatch(version):
        raise Unusable(f"{printable(ref, 120)!r} is not <name>@<version> (e.g. deny-root@1.2.0)")
    return name, version


class HubReader:
    """GET and POST JSON of one hub, with `POLICY_HUB_TOKEN` when it is set."""

    def __init__(self, url: str, token: str | None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Unusable(f"--hub-url {printable(url, 120)!r} is not an http(s) URL")
        if parts.username or parts.password:
            raise Unusable(f"put no credentials in --hub-url; set {TOKEN_ENV} instead")
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if token and parts.scheme == "http" and not loopback:
            raise Unusable(
                f"refusing to send {TOKEN_ENV} over plain http to {parts.hostname}; use https"
            )
        self.url = url.rstrip("/")
        self.token = token or None
        register_secret(self.token)
        self.session = requests.Session()
        self.deadline = time.monotonic() + COMMAND_SECONDS

    def close(self) -> None:
        self.session.close()

    def request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Answer:
        headers = {"Accept": "application/json"}
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        problem = "no answer"
        for attempt in range(1, TRIES + 1):
            if time.monotonic() >= self.deadline:
                problem += f"; gave up after {COMMAND_SECONDS:g} s"
                break
            pause = 0.0
            try:
                answer = self._once(method, path, body, headers)
            except (requests.RequestException, OSError, _TooSlow, _TooLarge) as exc:
                problem = _short(exc)
                pause = min(2.0 ** (attempt - 1), MAX_PAUSE_SECONDS)
            else:
                if answer.status not in (429, 502, 503, 504):
                    return answer
                problem = f"HTTP {answer.status}" + _detail(answer.body)
                pause = min(answer.retry_after or 2.0 ** (attempt - 1), MAX_PAUSE_SECONDS)
            if attempt < TRIES:
                time.sleep(max(0.0, min(pause, self.deadline - time.monotonic())))
        shown = printable(self.url, 200)
        raise Unusable(f"the hub at {shown} cannot be read: {problem} (up to {TRIES} tries)")

    def _once(self, method: str, path: str, body: Any, headers: dict[str, str]) -> Answer:
        started = time.monotonic()
        limit = min(ANSWER_SECONDS, self.deadline - started)
        with self.session.request(
            method,
            self.url + path,
            json=body,
            headers=headers,
            timeout=(CONNECT_SECONDS, READ_SECONDS),
            stream=True,
            allow_redirects=False,
        ) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise _TooLarge(f"answer over {MAX_ANSWER_BYTES} bytes")
                if time.monotonic() - started > limit:
                    raise _TooSlow(f"answer not complete within {limit:.0f} s")
                chunks.append(chunk)
            try:
                parsed = json.loads(b"".join(chunks))
            except (ValueError, UnicodeDecodeError, RecursionError):
                parsed = None  # not JSON, or nested deeper than Python parses
            retry_after = (response.headers.get("Retry-After") or "").strip()
            seconds = float(retry_after) if retry_after.isdigit() else None
            return Answer(response.status_code, parsed, seconds)


class _TooSlow(Exception):
    pass


class _TooLarge(Exception):
    pass


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return printable(text, 160)


def _detail(body: Any) -> str:
    if isinstance(body, Mapping):
        shown = body.get("detail") or body.get("error")
        if shown:
            return ": " + printable(shown, 200)
    return ""


def _refused(what: str, answer: Answer) -> Unusable:
    if answer.status == 401:
        hint = f" (set {TOKEN_ENV} to a token this hub accepts)"
    elif answer.status == 403:
        hint = " (the token may not do this)"
    else:
        hint = ""
    return Unusable(f"{what}: HTTP {answer.status}{_detail(answer.body)}{hint}")


# -- verify ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    held: bool
    said: str

    def line(self) -> str:
        return f"{'ok  ' if self.held else 'FAIL'} {self.name}: {self.said}"


@dataclass(frozen=True)
class VerifyRequest:
    name: str
    version: str
    keys_file: Path | None = None
    repository: str | None = None
    workflow: str | None = None
    local: Path | None = None
    allow_yanked: bool = False


def read_jwks(path: Path) -> list[Mapping[str, Any]]:
    """The pinned JWKS document (`{"keys": [...]}`); Unusable naming the file otherwise."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise Unusable(f"--keys {path}: cannot read it ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Unusable(f"--keys {path}: not JSON") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
        raise Unusable(f'--keys {path}: not a JWKS document ({{"keys": [...]}})')
    return keys


def local_digest(folder: Path) -> str | None:
    """The digest of a version folder's own files, as the harness computes it; Unusable when it
    is not a version folder, None when its files cannot be read as a policy."""
    # Imported here: the checker brings the CEL engine, which only --local needs (~0.2 s).
    from policy_checks.checker import content_digest

    folder = Path(folder)
    try:
        metadata = (folder / METADATA_FILE).read_bytes()
        definition = (folder / DEFINITION_FILE).read_bytes()
    except OSError as exc:
        raise Unusable(
            f"--local {folder}: not a version folder ({METADATA_FILE} and {DEFINITION_FILE}:"
            f" {exc.strerror or exc})"
        ) from None
    return content_digest(PolicyFiles(str(folder), metadata, definition))


def verify(reader: HubReader, request: VerifyRequest) -> list[Check]:
    """Every check of section 9 on one version, in order; Unusable when the hub cannot be read
    or a file given cannot be used."""
    name, version = request.name, request.version
    pinned = read_jwks(request.keys_file) if request.keys_file is not None else None
    local = local_digest(request.local) if request.local is not None else None
    path = f"/policies/{quote(name, safe='')}/{quote(version, safe='')}"
    got = reader.request("GET", path)
    if got.status == 404:
        return [Check("record", False, f"{name}@{version} is not in the hub")]
    if got.status != 200 or not isinstance(got.body, dict):
        raise _refused(f"GET {name}@{version}", got)
    record = got.body
    digest = record.get("digest")
    if record.get("name") != name or record.get("version") != version:
        return [Check("record", False, "the hub answered with another version's record")]
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        return [Check("record", False, "the hub's record has no valid digest")]

    checks: list[Check] = []
    attested = reader.request("GET", path + "/attestation")
    statement: dict[str, Any] | None = None
    if attested.status == 404:
        checks.append(Check("signature", False, "no attestation" + _detail(attested.body)))
    elif attested.status != 200:
        raise _refused(f"GET {name}@{version}/attestation", attested)
    else:
        if pinned is not None:
            keys, source = pinned, f"pinned keys {request.keys_file}"
        else:
            listed = reader.request("GET", "/keys", auth=False)
            body = listed.body
            if listed.status != 200 or not isinstance(body, dict):
                raise _refused("GET /keys", listed)
            raw_keys = body.get("keys")
            if not isinstance(raw_keys, list):
                raise Unusable("GET /keys: not a JWKS document")
            keys, source = [k for k in raw_keys if isinstance(k, dict)], "the hub's /keys"
        try:
            keyid, statement = verify_envelope(attested.body, keys)
        except EnvelopeError as exc:
            checks.append(Check("signature", False, printable(exc, 200) + f" ({source})"))
        else:
            checks.append(Check("signature", True, f"Ed25519, key {printable(keyid)} ({source})"))
    checks += statement_checks(statement, record, name, version, digest)
    checks.append(recomputed_check(record, digest))
    if request.repository is not None or request.workflow is not None:
        checks.append(publisher_check(statement, request.repository, request.workflow))
    if request.local is not None:
        checks.append(
            Check("local", local == digest, f"{request.local} is {local or 'not a valid policy'}")
        )
    checks.append(yank_check(record, request.allow_yanked))
    return checks


def statement_checks(
    statement: dict[str, Any] | None,
    record: Mapping[str, Any],
    name: str,
    version: str,
    digest: str,
) -> list[Check]:
    if statement is None:
        return [Check("subject", False, "no signed statement to read it from")]
    subject = statement.get("subject")
    expected = [{"name": f"{name}@{version}", "digest": {"sha256": digest.removeprefix("sha256:")}}]
    checks = []
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        checks.append(Check("statement", False, "not an in-toto v1 statement of this hub's kind"))
    if subject == expected:
        checks.append(Check("subject", True, f"{name}@{version} {digest}"))
    else:
        shown = printable(json.dumps(subject, ensure_ascii=False), 200)
        checks.append(Check("subject", False, f"signed for {shown}, not {name}@{version} {digest}"))
    predicate = statement.get("predicate")
    fields = ("publisher", "release_sha", "published_at")
    ours = {field: record.get(field) for field in fields}
    if isinstance(predicate, dict) and {f: predicate.get(f) for f in fields} == ours:
        checks.append(
            Check(
                "provenance",
                True,
                f"{describe_publisher(ours['publisher'])}, commit "
                f"{printable(ours['release_sha'], 60)}, at {printable(ours['published_at'], 40)}",
            )
        )
    else:
        checks.append(
            Check(
                "provenance",
                False,
                "the record's publisher, release_sha or published_at is not what was signed",
            )
        )
    return checks


def describe_publisher(publisher: Any) -> str:
    if not isinstance(publisher, Mapping):
        return "publisher unknown"
    if publisher.get("kind") == "github-oidc":
        return (
            f"published by {printable(publisher.get('repository'), 100)} "
            f"({printable(publisher.get('workflow_ref'), 200)})"
        )
    label = publisher.get("label")
    return f"published with token {printable(label, 64)!r}" if label else "published with a token"


def recomputed_check(record: Mapping[str, Any], digest: str) -> Check:
    computed = policy_digest(record.get("metadata"), record.get("definition"))
    if computed == digest:
        return Check("digest", True, "recomputed from metadata and definition")
    return Check("digest", False, f"metadata and definition hash to {computed}, not {digest}")


def workflow_file(workflow_ref: str) -> str:
    """`owner/repo/.github/workflows/release.yml@refs/heads/main` -> `release.yml`."""
    return workflow_ref.partition("@")[0].rsplit("/", 1)[-1]


def publisher_check(
    statement: Mapping[str, Any] | None, repository: str | None, workflow: str | None
) -> Check:
    predicate = statement.get("predicate") if statement else None
    publisher = predicate.get("publisher") if isinstance(predicate, Mapping) else None
    wanted = " ".join(
        part for part in (repository, f"workflow {workflow}" if workflow else None) if part
    )
    if not isinstance(publisher, Mapping) or publisher.get("kind") != "github-oidc":
        kind = describe_publisher(publisher)
        return Check("publisher", False, f"{kind}, not a workflow of {wanted} (signed)")
    repo = str(publisher.get("repository") or "")
    ref = str(publisher.get("workflow_ref") or "")
    held = (repository is None or repo.lower() == repository.lower()) and (
        workflow is None or workflow_file(ref) == workflow
    )
    said = f"signed {printable(repo, 100)} {printable(ref, 200)}"
    return Check("publisher", held, said if held else f"{said}, not {wanted}")


def yank_check(record: Mapping[str, Any], allowed: bool) -> Check:
    yanked = record.get("yanked")
    if not yanked:
        return Check("yanked", True, "not yanked")
    reason = yanked.get("reason") if isinstance(yanked, Mapping) else None
    at = yanked.get("at") if isinstance(yanked, Mapping) else None
    said = f"yanked at {printable(at, 40)}: {printable(reason, 300)}"
    return Check("yanked", allowed, said + (" (allowed by --allow-yanked)" if allowed else ""))


def run_verify(
    hub_url: str, request: VerifyRequest, out: Callable[[str], None], environ: Mapping[str, str]
) -> int:
    reader = HubReader(hub_url, environ.get(TOKEN_ENV))
    try:
        checks = verify(reader, request)
    finally:
        reader.close()
    for check in checks:
        out(check.line())
    failed = [check.name for check in checks if not check.held]
    ref = f"{request.name}@{request.version}"
    if failed:
        out(f"NOT VERIFIED {ref}: {', '.join(failed)} failed")
        return FAILED
    out(f"verified {ref}")
    return OK


def run_yank(
    hub_url: str,
    name: str,
    version: str,
    reason: str,
    out: Callable[[str], None],
    environ: Mapping[str, str],
) -> int:
    token = environ.get(TOKEN_ENV)
    if not token:
        raise Unusable(f"set {TOKEN_ENV} to a write token of the hub to yank")
    reader = HubReader(hub_url, token)
    path = f"/policies/{quote(name, safe='')}/{quote(version, safe='')}/yank"
    try:
        answer = reader.request("POST", path, {"reason": reason})
    finally:
        reader.close()
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.status == 200 and isinstance(body.get("yanked"), dict):
        yanked = body["yanked"]
        again = "" if yanked.get("reason") == reason else " (already, with another reason)"
        out(
            f"yanked {name}@{version} at {printable(yanked.get('at'), 40)}{again}: "
            f"{printable(yanked.get('reason'), 300)}"
        )
        return OK
    if answer.status in (403, 404, 422):
        error = body.get("error")
        out(
            f"not yanked {name}@{version}: HTTP {answer.status} {printable(error, 40)}"
            f"{_detail(body)}"
        )
        return FAILED
    raise _refused(f"POST {name}@{version}/yank", answer)
