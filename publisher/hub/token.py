"""Where the hub token comes from: `POLICY_HUB_TOKEN`, read once per process by `resolve_token`
(stripped, checked, registered for redaction in `publisher.printable`). It goes only to
`HubClient` (`client.py`), which adds it to each request's `Authorization` header; it never
travels on the `RunSpec`, and no text that reaches a person, a report or a file holds it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from publisher.printable import register_secret
from publisher.refused import Refused

TOKEN_ENV = "POLICY_HUB_TOKEN"

# Anything but printable ASCII (a space included) cannot travel in an HTTP header as it is.
_TOKEN_BAD_CHAR = re.compile(r"[^\x20-\x7e]")


def resolve_token(env: Mapping[str, str]) -> str | None:
    """The bearer token from `POLICY_HUB_TOKEN`: surrounding whitespace (a pasted newline) is
    stripped; any other control or non-ASCII character is a usage error that never shows the
    token. The token is registered for redaction from every printed text of this process.
    """
    raw = env.get(TOKEN_ENV)
    # Only whitespace a paste or a secret store adds: str.strip() would also drop the control
    # characters \x1c-\x1f and \x85, which must be refused.
    token = raw.strip(" \t\r\n\v\f") if raw else ""
    if not token:
        return None
    register_secret(raw)
    register_secret(token)
    bad = _TOKEN_BAD_CHAR.search(token)
    if bad is not None:
        kind = "a control character" if ord(bad.group()) < 0x80 else "a non-ASCII character"
        raise Refused(
            f"{TOKEN_ENV} holds {kind} at position {bad.start() + 1} of {len(token)} "
            "(surrounding whitespace is already stripped); set the secret to the token alone, "
            "without line breaks or other characters pasted with it"
        )
    return token
