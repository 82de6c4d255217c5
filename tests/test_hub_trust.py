"""Who may write what, provenance, attestations, /keys and yank (docs/contract.md section 9)
against real hub processes over loopback, on both engines where the database is the witness.
"""

from __future__ import annotations

import pytest
import requests

from policy_hub.auth import READ, WRITE, Caller, TokenConfigError, Tokens, parse_token_lines
from tests.hubprocess import HubProcess, on_both_engines
from tests.test_hub_api import assert_json_error, auth, policy_body

# -- token lines and the Caller (unit) ---------------------------------------------------


def test_token_lines_with_globs_and_labels() -> None:
    entries = parse_token_lines(
        [
            "write plain-token",
            "write scoped-token deny-*,require-tags label=team-a",
            "write labelled-token label=ci.bot_1",
            "read reader-token",
        ],
        "tokens",
    )
    assert [(e.scope, e.globs, e.label) for e in entries] == [
        (WRITE, None, None),
        (WRITE, ("deny-*", "require-tags"), "team-a"),
        (WRITE, None, "ci.bot_1"),
        (READ, None, None),
    ]
    assert "scoped-token" not in repr(entries)


@pytest.mark.parametrize(
    "line",
    [
        "write tok Deny-*",  # uppercase can never match a name
        "write tok deny-*,",  # an empty glob
        "write tok deny-* require-tags",  # globs are one comma-separated word
        "read tok deny-*",  # a read token writes nothing: globs make no sense
        "write tok label=",  # an empty label
        "write tok label=has space",
        "write tok deny-* label=a label=b",
        "admin tok",
        "write",
        "write tök",
    ],
)
def test_a_bad_token_line_is_named_never_shown(line: str) -> None:
    with pytest.raises(TokenConfigError) as raised:
        parse_token_lines(["# first", line], "/etc/hub/tokens")
    message = str(raised.value)
    assert message.startswith("/etc/hub/tokens:2: expected")
    assert "tok " not in message and "tök" not in message


def test_a_caller_may_write_only_its_globs() -> None:
    tokens = Tokens(
        entries=tuple(
            parse_token_lines(
                ["write a deny-*,require-tags label=team", "read a", "read r", "write w"], "t"
            )
        )
    )
    scoped = tokens.caller_of("Bearer a")
    assert scoped == Caller(
        frozenset({READ, WRITE}), ("deny-*", "require-tags"), {"kind": "token", "label": "team"}
    )
    assert scoped.may_write("deny-privileged") and scoped.may_write("require-tags")
    assert not scoped.may_write("require-tags-x") and not scoped.may_write("allow-all")
    reader = tokens.caller_of("Bearer r")
    assert reader is not None and reader.scopes == {READ} and not reader.may_write("deny-x")
    writer = tokens.caller_of("Bearer w")
    assert writer is not None and writer.globs is None and writer.may_write("anything")
    assert writer.publisher == {"kind": "token", "label": None}
    assert tokens.caller_of("Bearer unknown") is None and tokens.caller_of(None) is None
    anyone = Tokens(open_access=True).caller_of(None)
    assert anyone is not None and anyone.may_write("x") and anyone.publisher["label"] is None


# -- forbidden-name over HTTP ------------------------------------------------------------


@on_both_engines
def test_a_post_outside_the_tokens_globs_is_403_and_stores_nothing(hub: HubProcess) -> None:
    body = policy_body(name="require-tags")
    refused = requests.post(
        f"{hub.url}/policies", json=body, headers=auth(hub.scoped_token, "k1"), timeout=10
    )
    assert assert_json_error(refused, 403, "forbidden-name")["name"] == "require-tags"
    assert hub.records() == []
    # The same answer when the version exists: the token learns nothing and changes nothing.
    assert (
        requests.post(
            f"{hub.url}/policies", json=body, headers=auth(hub.token, "k2"), timeout=10
        ).status_code
        == 201
    )
    again = requests.post(
        f"{hub.url}/policies", json=body, headers=auth(hub.scoped_token, "k3"), timeout=10
    )
    assert assert_json_error(again, 403, "forbidden-name")["name"] == "require-tags"
    assert hub.created("require-tags", "1.2.0") == 1
    # Its key was never claimed: the same key may still be used for a name it may write.
    allowed = requests.post(
        f"{hub.url}/policies",
        json=policy_body(name="deny-privileged"),
        headers=auth(hub.scoped_token, "k1"),
        timeout=10,
    )
    assert allowed.status_code == 201, allowed.text
    assert hub.records()[0][0] == "deny-privileged"
