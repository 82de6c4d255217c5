"""Trusted publishing from GitHub Actions (docs/contract.md section 9): `OidcExchange` asks the
runner for an ID token (a JWT) for the hub's audience and exchanges it at the hub's
`POST /auth/oidc` for a short-lived hub token, again whenever that token is about to expire. It is
a `TokenSource` of `HubClient`. The JWT, the runner's request token and every hub token are
registered for redaction at once and never leave this object but in an Authorization header or
the exchange's body.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

from publisher.hub.client import HubAnswer, HubClient, RetryPolicy, TokenUnavailable
from publisher.printable import printable, register_secret

REQUEST_URL_ENV = "ACTIONS_ID_TOKEN_REQUEST_URL"
REQUEST_TOKEN_ENV = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
DEFAULT_AUDIENCE = "policy-hub"
# A hub token is renewed when less than this is left of it (or a quarter of its life, when that
# is shorter), so a request never starts with a token about to expire.
RENEW_MARGIN_SECONDS = 60.0


class ExchangeRefused(TokenUnavailable):
    """No hub token could be had: the runner gave no JWT, or the hub refused it (its reason)."""


def actions_oidc_available(env: Mapping[str, str]) -> bool:
    """Whether this is a GitHub Actions job that may ask for an ID token (`id-token: write`)."""
    return bool(env.get(REQUEST_URL_ENV, "").strip() and env.get(REQUEST_TOKEN_ENV, "").strip())


class OidcExchange:
    """A hub token from trusted publishing, renewed when due; safe to share between threads.

    Each process of a run has its own (xdist workers inherit the runner's variables and make
    their own exchange): no hub token or JWT travels between processes."""

    def __init__(
        self,
        hub_url: str,
        audience: str,
        env: Mapping[str, str],
        policy: RetryPolicy | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.audience = audience
        request_url = env.get(REQUEST_URL_ENV, "").strip()
        request_token = env.get(REQUEST_TOKEN_ENV, "").strip()
        register_secret(request_token)
        separator = "&" if "?" in request_url else "?"
        self._runner_url = f"{request_url}{separator}audience={quote(audience, safe='')}"
        self._request_token = request_token
        self._policy = policy or RetryPolicy()
        self._ca_bundle = ca_bundle
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.expires_at: str | None = None  # ISO 8601, as the hub said
        self.policies: tuple[str, ...] = ()
        self.exchanges = 0

    def __repr__(self) -> str:
        return f"OidcExchange({self.hub_url!r}, audience={self.audience!r})"

    # -- TokenSource ---------------------------------------------------------------------------

    def current(self) -> str:
        with self._lock:
            if self._token is None or time.time() >= self._renew_at:
                self._exchange()
            assert self._token is not None
            return self._token

    def cached(self) -> str | None:
        return self._token

    def expired(self) -> None:
        with self._lock:
            self._renew_at = 0.0

    # -- the exchange --------------------------------------------------------------------------

    def exchange(self) -> None:
        """Exchange now (the run's up-front check); ExchangeRefused says why not."""
        with self._lock:
            self._exchange()

    def _exchange(self) -> None:
        jwt = self._id_token()
        hub = HubClient(self.hub_url, None, self._policy, self._ca_bundle)
        try:
            answer = hub.post_json("/auth/oidc", {"token": jwt})
        finally:
            hub.close()
        token, expires_at, policies = self._minted(answer)
        register_secret(token)
        now = time.time()
        life = max(0.0, _epoch(expires_at) - now)
        self._renew_at = now + life - min(RENEW_MARGIN_SECONDS, life / 4)
        self._token = token
        self.expires_at = expires_at
        self.policies = policies
        self.exchanges += 1

    def _id_token(self) -> str:
        """The runner's JWT for this audience: `GET <URL>&audience=<aud>` with its request token."""
        runner = HubClient(self._runner_url, self._request_token, self._policy)
        try:
            answer = runner.get()
        finally:
            runner.close()
        value = answer.body.get("value") if isinstance(answer.body, dict) else None
        if answer.status != 200 or not isinstance(value, str) or not value.strip():
            raise ExchangeRefused(
                "the GitHub Actions runner gave no ID token "
                f"({answer.describe if answer.status != 200 else 'no value in its answer'}); "
                "the job needs `permissions: id-token: write`"
            )
        register_secret(value.strip())
        return value.strip()

    def _minted(self, answer: HubAnswer) -> tuple[str, str, tuple[str, ...]]:
        body = answer.body if isinstance(answer.body, dict) else {}
        where = f"the hub at {self.hub_url}"
        if answer.status == 200:
            token, expires_at, policies = (
                body.get("token"),
                body.get("expires_at"),
                body.get("policies"),
            )
            if (
                isinstance(token, str)
                and token.isascii()
                and token.isprintable()
                and " " not in token
                and isinstance(expires_at, str)
                and _epoch(expires_at) > 0
                and isinstance(policies, list)
                and all(isinstance(p, str) for p in policies)
            ):
                return token, expires_at, tuple(policies)
            if isinstance(token, str):
                register_secret(token)
            raise ExchangeRefused(f"{where} answered POST /auth/oidc with no usable token")
        if answer.status == 401:
            reason = printable(body.get("reason") or body.get("detail") or "no reason", 200)
            raise ExchangeRefused(f"{where} refused the workflow's ID token: {reason}")
        if answer.status == 403:
            raise ExchangeRefused(
                f"{where} trusts no publisher that matches this workflow "
                "(no-trusted-publisher): its publishers file must name this repository, its "
                "owner id, the workflow file and, if it names one, the environment"
            )
        if answer.status == 404:
            raise ExchangeRefused(
                f"{where} does not offer trusted publishing (HTTP 404 on POST /auth/oidc): "
                "start it with --publishers FILE, or set POLICY_HUB_TOKEN"
            )
        raise ExchangeRefused(f"the exchange at {where} failed: {answer.describe}")


def _epoch(text: str) -> float:
    """Seconds since the epoch of an ISO 8601 UTC time (`2026-12-06T10:15:00Z`); 0 if unreadable."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
