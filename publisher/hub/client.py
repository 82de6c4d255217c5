"""`HubClient`: the Policy Hub API of docs/contract.md section 5 as the release flow uses it, and
the one place where a hub's answers are checked before anything trusts them.

One retry layer (`HubClient._request`): connection errors, timeouts, 429/5xx and a 409 `in-flight`
are tried again with jittered exponential backoff, `Retry-After` honoured up to a cap, a bounded
number of times within a deadline. Every wait is bounded (`RetryPolicy`): the connect, one try's
whole answer (a watchdog closes the socket of a hub that drips its answer), one request with all
its tries, one item. Every failure comes back as a `HubAnswer`, never as an exception, and every
text taken from an answer or an exception passes through `printable` (escaped, capped, the token
redacted). The CA bundle and the standard proxy variables are honoured; `~/.netrc` never is.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import asdict, dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import InvalidHeader
from urllib3.poolmanager import PoolManager
from urllib3.util import Retry

from policy_checks import canonical_json
from policy_checks.digest import DIGEST_RE
from publisher.printable import printable

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "policy-release-harness/0.1"
MAX_ANSWER_BYTES = 8 * 1024 * 1024  # a record is at most ~2 MiB; more is not a hub's answer


class HubConfigError(ValueError):
    """The hub URL cannot be used as given."""


class TokenUnavailable(Exception):
    """A token source could not give a token (a refused OpenID Connect exchange); the message
    is printable and names the reason, never a secret."""


class TokenSource(Protocol):
    """A hub token that changes during a run (trusted publishing, `oidc.OidcExchange`)."""

    def current(self) -> str:
        """The token to send now, renewed first when it is about to expire; TokenUnavailable
        when no token can be had."""

    def cached(self) -> str | None:
        """The token last given by `current`, without asking anyone."""

    def expired(self) -> None:
        """The hub refused the current token: the next `current` gets a new one."""


@dataclass(frozen=True)
class RetryPolicy:
    """Every bound on waiting for the hub; the defaults are the README's table."""

    attempts: int = 6  # tries of one request, the first included
    backoff: float = 0.5  # seconds before the 2nd try; doubles per try, plus up to 100 % jitter
    backoff_max: float = 8.0
    retry_after_cap: float = 30.0  # a hub's Retry-After is honoured up to this
    connect_timeout: float = 5.0
    read_timeout: float = 30.0  # one try's whole answer, headers and body, however it trickles
    deadline: float = 120.0  # one request, every try and pause included
    item_deadline: float = 300.0  # one policy version: its hub check and its POST

    def with_limits(self, limits: Mapping[str, float]) -> RetryPolicy:
        """This policy with some bounds replaced (the ini keys of `options.LIMIT_KEYS`)."""
        values = {**asdict(self), **limits}
        values["attempts"] = int(values["attempts"])
        return RetryPolicy(**values)

    def pause(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed try number `attempt`."""
        base = min(self.backoff_max, self.backoff * 2.0 ** (attempt - 1))
        pause: float = base + random.uniform(0, base)
        if retry_after is not None:
            pause = max(pause, min(retry_after, self.retry_after_cap))
        return pause


@dataclass(frozen=True)
class HubAnswer:
    """What the hub said (status and JSON body) or why it could not be asked (error).

    `unreachable` is set when no HTTP answer came back at all after every try (refused, timed
    out, TLS failed), or when every try was answered only with 5xx or 429 (an outage that still
    answers): the run then stops asking this hub.
    """

    status: int | None
    body: Any = None
    error: str | None = None
    attempts: int = 1
    unreachable: bool = False
    final: bool = False  # not worth another try (an untrusted TLS certificate)

    @property
    def describe(self) -> str:
        tries = f"after {self.attempts} tr{'y' if self.attempts == 1 else 'ies'}"
        if self.status is None:
            return f"no answer ({self.error}) {tries}"
        detail = ""
        if isinstance(self.body, dict):
            detail = printable(self.body.get("detail") or self.body.get("error") or "", 200)
        text = f"HTTP {self.status}" + (f": {detail}" if detail else "")
        return text + (f" ({tries})" if self.attempts > 1 else "")


@dataclass(frozen=True)
class HubRecord:
    """A record of one version as the hub holds it, checked (`hub_record`)."""

    name: str
    version: str
    digest: str


def hub_record(body: Any, name: str, version: str) -> HubRecord | None:
    """The hub's record of `name@version` in `body`, or None when `body` is not one.

    The single check of anything the hub says about a version before it can change state: a JSON
    object naming this very name and version, with a digest of the form `sha256:<64 hex>`.
    """
    if not isinstance(body, dict):
        return None
    digest = body.get("digest")
    if body.get("name") != name or body.get("version") != version:
        return None
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        return None
    return HubRecord(name, version, digest)


def describe_body(body: Any) -> str:
    """A short, printable account of an answer body that is not what was expected."""
    if body is None:
        return "not JSON"
    if not isinstance(body, dict):
        return f"a JSON {type(body).__name__}, not an object"
    return "an object " + printable(json.dumps(body, sort_keys=True, default=str), 160)


def check_hub_url(url: str, allow_insecure: bool) -> str:
    """Normalise the hub URL; refuse plain http to anything but loopback unless allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HubConfigError(
            f"hub URL {printable(url, 120)!r} is not an http(s) URL (or use `local`)"
        )
    if parts.username or parts.password:
        raise HubConfigError("put no credentials in the hub URL; set POLICY_HUB_TOKEN instead")
    if parts.scheme == "http" and not allow_insecure and not _is_loopback(parts.hostname):
        raise HubConfigError(
            f"refusing plain http to {parts.hostname}: the token would travel unencrypted; "
            "use https, or pass --allow-insecure-hub if you really mean it"
        )
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def policy_path(name: str, version: str) -> str:
    """`/policies/{name}/{version}` with every reserved character percent-encoded."""
    return f"/policies/{quote(name, safe='')}/{quote(version, safe='')}"


# -- the whole-answer watchdog -----------------------------------------------------------------
#
# A socket timeout bounds each read, not the answer: a hub that sends one byte every second keeps
# every read short and the answer endless. So each try runs under a timer that shuts the
# connection's socket down when the try's time is up; the blocked read then ends at once.

_current = threading.local()


class _AnswerWatch:
    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._conn: HTTPConnection | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, seconds), self._expire)
        self._timer.daemon = True

    def watch(self, conn: HTTPConnection) -> None:
        with self._lock:
            self._conn = conn
            if self.expired:
                self._shutdown()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            self._shutdown()

    def _shutdown(self) -> None:
        sock = getattr(self._conn, "sock", None)
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _AnswerWatch:
        _current.watch = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _current.watch = None


def _watched(conn: HTTPConnection) -> None:
    watch = getattr(_current, "watch", None)
    if watch is not None:
        watch.watch(conn)


class _WatchedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _watched(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _watched(self)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter with no retries of its own and watched connections (direct or proxied)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


class _BearerAuth(AuthBase):
    """Adds the token at the last moment, so no dict of ours (a traceback local) ever holds it."""

    def __init__(self, token: str | TokenSource | None) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        # Set even without a token: requests would otherwise fill in ~/.netrc credentials.
        token = self._token if isinstance(self._token, str | None) else self._token.cached()
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(<hidden>)"


class HubClient:
    """A client of one Policy Hub; safe to share between the items of one process.

    `ca_bundle` is the file of CA certificates the hub's TLS certificate is checked against
    (None: certifi's bundle, requests' default). Proxies come from `HTTPS_PROXY`, `HTTP_PROXY`
    and `NO_PROXY`, as for every HTTP tool.
    """

    def __init__(
        self,
        base_url: str,
        token: str | TokenSource | None,
        policy: RetryPolicy | None = None,
        ca_bundle: str | None = None,
        hub_down: Callable[[], object] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._source = None if isinstance(token, str | None) else token
        self.policy = policy or RetryPolicy()
        # Asked before each pause between tries: once another process of the run has found the
        # hub down, a request that is failing too stops trying instead of waiting its deadline.
        self._hub_down = hub_down
        self._verify: str | bool = ca_bundle or True
        self._session = requests.Session()
        self._session.auth = _BearerAuth(token)
        adapter = _WatchedAdapter(max_retries=0, pool_connections=4, pool_maxsize=32)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = USER_AGENT
        # The environment's proxies for this one hub, read once: left to requests, every request
        # scans the whole environment again (a fifth of an item's CPU in a release). Nothing
        # else is taken from the environment: the CA bundle is `ca_bundle`, and never ~/.netrc.
        self._session.proxies = requests.utils.get_environ_proxies(self.base_url)
        self._session.trust_env = False

    def __repr__(self) -> str:
        return f"HubClient({self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def get_policy(self, name: str, version: str, deadline: float | None = None) -> HubAnswer:
        return self._request("GET", policy_path(name, version), deadline=deadline)

    def publish(
        self, body: dict[str, Any], idempotency_key: str, deadline: float | None = None
    ) -> HubAnswer:
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        return self._request(
            "POST", "/policies", data=canonical_json(body), headers=headers, deadline=deadline
        )

    def get(self, path: str = "", deadline: float | None = None) -> HubAnswer:
        """GET of any path below the base URL (`""`: the base URL itself)."""
        return self._request("GET", path, deadline=deadline)

    def post_json(self, path: str, body: Any, deadline: float | None = None) -> HubAnswer:
        """POST of a JSON body without an idempotency key: for requests that are safe to
        repeat (`POST /auth/oidc`: a refused repeat is a refusal, never a second effect)."""
        headers = {"Content-Type": "application/json"}
        data = json.dumps(body).encode()
        return self._request("POST", path, data=data, headers=headers, deadline=deadline)

    def _request(
        self,
        method: str,
        path: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        deadline: float | None = None,
    ) -> HubAnswer:
        """The one retry loop. POST is retried only because it carries the same idempotency key
        on every try; a 409 `in-flight` means an earlier try with that key is still being
        processed, so it is asked again like a 503. With a token source, its token is renewed
        when due, and once more when the hub answers 401 (it expired on the way)."""
        policy = self.policy
        end = time.monotonic() + policy.deadline
        if deadline is not None:
            end = min(end, deadline)
        attempt = 0
        failing = True  # every try so far: no answer, or a 5xx/429 (docs/contract.md section 3)
        renewed = False
        while True:
            attempt += 1
            if self._source is not None:
                try:
                    self._source.current()
                except TokenUnavailable as exc:
                    # As the hub would answer a token it does not know: the run's token-refused
                    # path says it once, with this reason.
                    body = {"error": "token-unavailable", "detail": printable(exc, 300)}
                    return HubAnswer(401, body, attempts=attempt)
            answer, retry_after = self._try(method, path, data, headers, end, attempt)
            if answer.status == 401 and self._source is not None and not renewed:
                renewed = True
                self._source.expired()
                attempt -= 1
                continue
            if answer.final or not _worth_retrying(answer):
                return answer
            failing = failing and (answer.status is None or answer.status in RETRY_STATUSES)
            if attempt >= policy.attempts:
                return _given_up(answer, failing)
            pause = policy.pause(attempt, retry_after)
            if time.monotonic() + pause >= end:
                return _given_up(answer, failing)
            if failing and self._hub_down is not None and self._hub_down():
                return _given_up(answer, failing)
            time.sleep(pause)

    def _try(
        self,
        method: str,
        path: str,
        data: bytes | None,
        headers: dict[str, str] | None,
        end: float,
        attempt: int,
    ) -> tuple[HubAnswer, float | None]:
        budget = max(0.05, min(self.policy.read_timeout, end - time.monotonic()))
        with _AnswerWatch(budget) as watch:
            try:
                response = self._session.request(
                    method,
                    self.base_url + path,
                    data=data,
                    headers=headers,
                    timeout=(self.policy.connect_timeout, budget),
                    allow_redirects=False,
                    verify=self._verify,
                    stream=True,
                )
                try:
                    raw = _read_capped(response)
                except BaseException:
                    # Closing after a whole answer would race: urllib3 already gave the
                    # connection back to the pool, where another thread may be using it.
                    response.close()
                    raise
            except requests.exceptions.SSLError as exc:
                error = _tls_error(exc)
                return HubAnswer(
                    None, error=error, attempts=attempt, unreachable=True, final=True
                ), None
            except requests.exceptions.ConnectTimeout:
                error = f"no connection within {self.policy.connect_timeout:g} s"
                return HubAnswer(None, error=error, attempts=attempt, unreachable=True), None
            except requests.exceptions.RequestException as exc:
                if watch.expired or isinstance(exc, requests.exceptions.ReadTimeout):
                    error = f"no complete answer within {budget:g} s"
                else:
                    error = _short_error(exc)
                return HubAnswer(None, error=error, attempts=attempt, unreachable=True), None
            except _AnswerTooLarge:
                error = f"an answer over {MAX_ANSWER_BYTES // (1024 * 1024)} MiB"
                return HubAnswer(response.status_code, error=error, attempts=attempt), None
            except Exception as exc:  # any traceback from in here could show request headers
                # No status and no body is no answer, however the try ended (a socket shut by
                # the watchdog can surface as a bare OSError or ValueError from http.client):
                # never a "status None" that delivery would take for an answer and POST after.
                error = (
                    f"no complete answer within {budget:g} s"
                    if watch.expired
                    else _short_error(exc)
                )
                return HubAnswer(None, error=error, attempts=attempt, unreachable=True), None
        body = _json_or_none(raw)
        answer = HubAnswer(response.status_code, body, attempts=attempt)
        return answer, _retry_after(response.headers.get("Retry-After"))


class _AnswerTooLarge(Exception):
    pass


def _given_up(answer: HubAnswer, failing: bool) -> HubAnswer:
    """The last answer of a request whose tries are spent. A hub that answered every try with
    only 5xx or 429 (the reference hub's 503 while its database is down) is in an outage: it is
    as unreachable as one that never answered, so the run stops asking it."""
    if failing and not answer.unreachable:
        return dataclasses.replace(answer, unreachable=True)
    return answer


def _worth_retrying(answer: HubAnswer) -> bool:
    if answer.status is None:
        return True
    if answer.status == 409:
        return isinstance(answer.body, dict) and answer.body.get("error") == "in-flight"
    return answer.status in RETRY_STATUSES


def _read_capped(response: requests.Response) -> bytes:
    chunks = []
    size = 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise _AnswerTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


# Only its reading of the header is used (ASCII delta-seconds or an HTTP date, never negative):
# the one retry loop is HubClient._request, and RetryPolicy caps what it reads.
_RETRY_AFTER_READER = Retry(total=None)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header, or None when there is none that can be read."""
    if value is None:
        return None
    try:
        return float(_RETRY_AFTER_READER.parse_retry_after(value))
    except (InvalidHeader, ValueError):  # ValueError: more digits than int() reads
        return None


TLS_UNTRUSTED = "the hub's TLS certificate is not trusted"


def _tls_error(exc: BaseException) -> str:
    text = str(exc)
    match = re.search(r"certificate verify failed: ([^(]*)", text)
    if match:
        return printable(f"{TLS_UNTRUSTED} ({match.group(1).strip()})", 240)
    match = re.search(r"\[SSL[^\]]*\] ([^(]*)", text)
    return printable(f"TLS failed: {match.group(1).strip() if match else text}", 240)


# Nesting deeper than any record (a policy's metadata and definition included) is not a hub's
# answer: it is refused like a body that is not JSON, before code that walks the value
# recursively (hub_record, the hub-check board, describe_body) could exhaust Python's stack.
MAX_ANSWER_DEPTH = 64


def _json_or_none(raw: bytes) -> Any:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if _depth_within(value, MAX_ANSWER_DEPTH) else None


def _depth_within(value: Any, limit: int) -> bool:
    """Whether `value` nests at most `limit` containers deep (without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return False
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return True


def _short_error(exc: BaseException) -> str:
    # urllib3 nests its cause in long reprs; the innermost reason is the useful part.
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] [^'\"()]*", text)
    if match:
        text = match.group().strip()
    elif "RemoteDisconnected" in text or "Connection aborted" in text:
        text = "the hub closed the connection without an answer"
    elif "IncompleteRead" in text or "Connection broken" in text:
        text = "the connection broke in the middle of the answer"
    return printable(f"{type(exc).__name__}: {text}", 240)
