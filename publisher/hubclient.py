"""`HubClient`: the Policy Hub API of CONTRACT.md section 5 as the release flow uses it.

One pooled `requests` session per process, timeouts on every call, retries through urllib3's
`Retry` (connection errors, timeouts, 429/5xx, exponential backoff with jitter, `Retry-After`
honoured but capped) plus one outer loop for answers cut off mid-body. POST is retried only because
it always carries the same `Idempotency-Key`. Every failure comes back as a `HubAnswer`, never as an
exception, so no traceback (and no request header holding the token) can reach a report.
"""

from __future__ import annotations

import ipaddress
import json
import random
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.util.retry import Retry

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "policy-release-harness/0.1"


class HubConfigError(ValueError):
    """The hub URL cannot be used as given."""


class _BearerAuth(AuthBase):
    """Adds the token at the last moment, so no dict of ours (a traceback local) ever holds it."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(<hidden>)"


class _CappedRetry(Retry):
    """urllib3's Retry with `Retry-After` capped, so a hub cannot park a worker for an hour."""

    RETRY_AFTER_CAP = 30.0

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, self.RETRY_AFTER_CAP)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # total tries of one request, first included
    backoff: float = 0.25  # seconds; doubles per retry, with jitter
    backoff_max: float = 8.0
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    deadline: float = 180.0  # seconds for one request including every retry


@dataclass(frozen=True)
class HubAnswer:
    """What the hub said (status and JSON body) or why it could not be asked (error)."""

    status: int | None
    body: Any = None
    error: str | None = None
    attempts: int = 1

    @property
    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.error}) after {self.attempts} attempt(s)"
        detail = ""
        if isinstance(self.body, dict):
            detail = str(self.body.get("detail") or self.body.get("error") or "")
        return f"HTTP {self.status}" + (f": {detail}" if detail else "")


def check_hub_url(url: str, allow_insecure: bool) -> str:
    """Normalise the hub URL; refuse plain http to anything but loopback unless allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HubConfigError(f"hub URL {url!r} is not an http(s) URL (or use `local`)")
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


class HubClient:
    """A client of one Policy Hub; safe to share between the items of one process."""

    def __init__(self, base_url: str, token: str | None, policy: RetryPolicy | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self._session = requests.Session()
        self._session.auth = _BearerAuth(token) if token else None
        retry = _CappedRetry(
            total=self.policy.attempts - 1,
            connect=self.policy.attempts - 1,
            read=self.policy.attempts - 1,
            status=self.policy.attempts - 1,
            other=0,
            redirect=0,
            allowed_methods=frozenset({"GET", "POST"}),
            status_forcelist=RETRY_STATUSES,
            backoff_factor=self.policy.backoff,
            backoff_max=self.policy.backoff_max,
            backoff_jitter=self.policy.backoff,
            respect_retry_after_header=True,
            raise_on_status=False,
            raise_on_redirect=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=32)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = USER_AGENT
        # The token stays in this object only; `trust_env` off keeps ~/.netrc from replacing it.
        self._session.trust_env = False

    def __repr__(self) -> str:
        return f"HubClient({self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def get_policy(self, name: str, version: str) -> HubAnswer:
        return self._request("GET", policy_path(name, version))

    def publish(self, body: dict[str, Any], idempotency_key: str) -> HubAnswer:
        data = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        for attempt in range(1, self.policy.attempts + 1):
            answer = self._request("POST", "/policies", data=data.encode("utf-8"), headers=headers)
            # 409 in-flight: an earlier try with this key is still being processed (a retry
            # after a dropped connection); its result will be replayed, so ask again shortly.
            if not (answer.status == 409 and _error_code(answer) == "in-flight"):
                return answer
            time.sleep(min(self.policy.backoff_max, self.policy.backoff * 2 ** (attempt - 1)))
        return answer

    def health(self) -> HubAnswer:
        return self._request("GET", "/health")

    def _request(
        self,
        method: str,
        path: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> HubAnswer:
        deadline = time.monotonic() + self.policy.deadline
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._session.request(
                    method,
                    self.base_url + path,
                    data=data,
                    headers=headers,
                    timeout=(self.policy.connect_timeout, self.policy.read_timeout),
                    allow_redirects=False,
                )
            except (requests.exceptions.ChunkedEncodingError, requests.exceptions.Timeout) as exc:
                # The connection broke mid-answer (the request may have taken effect): ask again
                # with the same idempotency key, which the hub answers with the first result.
                error = _short_error(exc)
            except requests.exceptions.RequestException as exc:
                # urllib3 already spent its retries on this one.
                return HubAnswer(None, error=_short_error(exc), attempts=attempt)
            except Exception as exc:  # any traceback from in here could show request headers
                return HubAnswer(None, error=_short_error(exc), attempts=attempt)
            else:
                return HubAnswer(response.status_code, _json_or_none(response), attempts=attempt)
            if attempt >= self.policy.attempts or time.monotonic() >= deadline:
                return HubAnswer(None, error=error, attempts=attempt)
            pause = min(self.policy.backoff_max, self.policy.backoff * 2 ** (attempt - 1))
            time.sleep(pause + random.uniform(0, self.policy.backoff))


def _error_code(answer: HubAnswer) -> str | None:
    return answer.body.get("error") if isinstance(answer.body, dict) else None


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _short_error(exc: BaseException) -> str:
    # The exception text names the URL and the cause, never request headers.
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."
