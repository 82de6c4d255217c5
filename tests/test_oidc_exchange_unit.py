"""The harness's side of trusted publishing, one function at a time (publisher/hub/oidc.py): what a
hub's answer to `POST /auth/oidc` may be before its token is used, when a token is renewed, and
that no secret is ever in what is said. The whole exchange runs end to end in
tests/test_release_oidc.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from publisher.hub.client import HubAnswer
from publisher.hub.oidc import (
    REQUEST_TOKEN_ENV,
    REQUEST_URL_ENV,
    ExchangeRefused,
    OidcExchange,
    _epoch,
    actions_oidc_available,
)
from publisher.printable import printable

ENV = {REQUEST_URL_ENV: "http://127.0.0.1:9/idtoken?api-version=2.0", REQUEST_TOKEN_ENV: "rq-x1"}


def exchange() -> OidcExchange:
    return OidcExchange("http://127.0.0.1:9", "policy-hub", ENV)


def test_only_a_job_with_both_variables_may_ask_for_an_id_token() -> None:
    assert actions_oidc_available(ENV)
    assert not actions_oidc_available({REQUEST_URL_ENV: ENV[REQUEST_URL_ENV]})
    assert not actions_oidc_available({**ENV, REQUEST_TOKEN_ENV: "  "})


def test_the_audience_is_added_to_the_runners_url() -> None:
    made = OidcExchange("http://h", "hub acme&x", ENV)
    assert made._runner_url == (
        "http://127.0.0.1:9/idtoken?api-version=2.0&audience=hub%20acme%26x"
    )
    plain = OidcExchange("http://h", "policy-hub", {**ENV, REQUEST_URL_ENV: "http://r/t"})
    assert plain._runner_url == "http://r/t?audience=policy-hub"


def test_a_good_answer_gives_its_token_expiry_and_names() -> None:
    body = {"token": "pho_abc", "expires_at": "2026-12-06T10:15:00Z", "policies": ["deny-*"]}
    assert exchange()._minted(HubAnswer(200, body)) == (
        "pho_abc",
        "2026-12-06T10:15:00Z",
        ("deny-*",),
    )


@pytest.mark.parametrize(
    "body",
    [
        {"token": "pho abc", "expires_at": "2026-12-06T10:15:00Z", "policies": []},
        {"token": "pho_\nabc", "expires_at": "2026-12-06T10:15:00Z", "policies": []},
        {"token": "pho_é", "expires_at": "2026-12-06T10:15:00Z", "policies": []},
        {"token": "pho_abc", "expires_at": "tomorrow", "policies": []},
        {"token": "pho_abc", "expires_at": "2026-12-06T10:15:00Z", "policies": "deny-*"},
        {"token": 5, "expires_at": "2026-12-06T10:15:00Z", "policies": []},
        None,
        ["pho_abc"],
    ],
)
def test_a_200_without_a_usable_token_is_refused_without_showing_it(body: Any) -> None:
    with pytest.raises(ExchangeRefused) as refused:
        exchange()._minted(HubAnswer(200, body))
    assert str(refused.value) == (
        "the hub at http://127.0.0.1:9 answered POST /auth/oidc with no usable token"
    )
    if isinstance(body, dict) and isinstance(body["token"], str):
        # Registered for redaction: even a broken token never reaches a printable text.
        assert body["token"] not in printable(f"x {body['token']} y")


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (
            HubAnswer(401, {"error": "invalid-oidc-token", "reason": "exp: the token has expired"}),
            "refused the workflow's ID token: exp: the token has expired",
        ),
        (
            HubAnswer(401, {"error": "invalid-oidc-token", "reason": "::error::x\n\x1b[31m"}),
            # Escaped, and never the start of a workflow command.
            "refused the workflow's ID token: \\::error::x\\x0a\\x1b[31m",
        ),
        (HubAnswer(403, {"error": "no-trusted-publisher"}), "(no-trusted-publisher)"),
        (HubAnswer(404, {"error": "not-found"}), "does not offer trusted publishing"),
        (HubAnswer(None, error="no connection within 5 s", attempts=6), "no answer"),
        (HubAnswer(503, {"error": "unavailable", "detail": "JWKS"}), "HTTP 503: JWKS"),
    ],
)
def test_a_refusal_names_the_hubs_reason_in_one_printable_line(
    answer: HubAnswer, said: str
) -> None:
    with pytest.raises(ExchangeRefused) as refused:
        exchange()._minted(answer)
    text = str(refused.value)
    assert said in text
    assert "\n" not in text and "\x1b" not in text


def test_a_token_is_renewed_a_minute_or_a_quarter_of_its_life_before_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = exchange()
    now = time.time()
    expiries = iter([now + 900, now + 8])
    monkeypatch.setattr(made, "_id_token", lambda: "a.b.c")

    def minted(answer: HubAnswer) -> tuple[str, str, tuple[str, ...]]:
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(next(expiries)))
        return f"pho_{made.exchanges}", at, ("deny-*",)

    monkeypatch.setattr(made, "_minted", minted)
    monkeypatch.setattr("publisher.hub.oidc.HubClient.post_json", lambda *a: HubAnswer(200, {}))
    made.exchange()
    assert made._renew_at == pytest.approx(now + 900 - 60, abs=2)
    assert made.current() == "pho_0"  # not due: no second exchange
    made.expired()  # the hub answered 401
    assert made.current() == "pho_1"
    assert made._renew_at == pytest.approx(now + 8 - 2, abs=1.5)  # a quarter of 8 s


def test_iso_times_are_read_as_utc() -> None:
    assert _epoch("1970-01-01T00:01:00Z") == 60
    assert _epoch("1970-01-01T00:01:00") == 60
    assert _epoch("not a time") == 0
