"""Bearer tokens and their scopes: where they come from (a token file, an environment
variable) and how a request's Authorization header is checked against them.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

READ = "read"
WRITE = "write"
SCOPES = (READ, WRITE)
TOKENS_ENV = "POLICY_HUB_SERVER_TOKENS"
# RFC 6750 token68: anything else cannot be a token we issued, so it is malformed.
_TOKEN_RE = re.compile(r"[A-Za-z0-9._~+/-]+=*")


class TokenConfigError(Exception):
    """A token file or POLICY_HUB_SERVER_TOKENS entry that cannot be used."""


@dataclass(frozen=True)
class Tokens:
    """The configured tokens; `open_access` is --no-auth with no tokens (anyone may write)."""

    by_scope: tuple[tuple[str, str], ...] = ()
    open_access: bool = False

    def __repr__(self) -> str:  # never show the secrets themselves
        return f"Tokens(count={len(self.by_scope)}, open_access={self.open_access})"

    def scopes_of(self, authorization: str | None) -> set[str] | None:
        """The scopes an Authorization header grants; None when it is missing or unknown."""
        if self.open_access:
            return {READ, WRITE}
        token = bearer_token(authorization)
        if token is None:
            return None
        granted: set[str] = set()
        # Compare against every token, so timing says nothing about which one nearly matched.
        for scope, known in self.by_scope:
            if hmac.compare_digest(token.encode(), known.encode()):
                granted.add(scope)
        if WRITE in granted:
            granted.add(READ)
        return granted or None


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _TOKEN_RE.fullmatch(token):
        return None
    return token


def parse_token_lines(lines: list[str], source: str) -> list[tuple[str, str]]:
    """Lines `<scope> <token>`; blank lines and `#` comments are skipped."""
    pairs: list[tuple[str, str]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        # The message names the line, never its content: it may hold a secret.
        if len(parts) != 2 or parts[0] not in SCOPES or not _TOKEN_RE.fullmatch(parts[1]):
            raise TokenConfigError(
                f"{source}:{number}: expected '<read|write> <token>'"
                " (token characters: A-Z a-z 0-9 . _ ~ + / - and trailing =)"
            )
        pairs.append((parts[0], parts[1]))
    return pairs


def parse_token_env(value: str) -> list[tuple[str, str]]:
    """`write:abc,read:def` -> [("write", "abc"), ("read", "def")]."""
    pairs: list[tuple[str, str]] = []
    for number, item in enumerate(value.split(","), start=1):
        item = item.strip()
        if not item:
            continue
        scope, sep, token = item.partition(":")
        if not sep or scope not in SCOPES or not _TOKEN_RE.fullmatch(token):
            raise TokenConfigError(f"{TOKENS_ENV}: entry {number}: expected '<read|write>:<token>'")
        pairs.append((scope, token))
    return pairs


def load_tokens(
    token_file: Path | None, environ: Mapping[str, str] | None = None, *, no_auth: bool = False
) -> Tokens:
    """Tokens from --token-file and the environment; none at all is an error without --no-auth."""
    environ = os.environ if environ is None else environ
    pairs: list[tuple[str, str]] = []
    if token_file is not None:
        try:
            text = Path(token_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenConfigError(f"cannot read token file {token_file}: {exc}") from exc
        pairs += parse_token_lines(text.splitlines(), str(token_file))
    pairs += parse_token_env(environ.get(TOKENS_ENV, ""))
    if not pairs and not no_auth:
        raise TokenConfigError(
            f"no tokens configured: give --token-file, set {TOKENS_ENV}, or pass --no-auth"
        )
    return Tokens(by_scope=tuple(pairs), open_access=no_auth and not pairs)
