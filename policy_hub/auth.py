"""Bearer tokens and what they may do: where they come from (a token file, an environment
variable), how a request's Authorization header is checked against them, and the `Caller` a
verified request is made by (its scopes, the names it may write, its `publisher` for provenance).
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

READ = "read"
WRITE = "write"
SCOPES = (READ, WRITE)
TOKENS_ENV = "POLICY_HUB_SERVER_TOKENS"
# RFC 6750 token68: anything else cannot be a token we issued, so it is malformed.
_TOKEN_RE = re.compile(r"[A-Za-z0-9._~+/-]+=*")
# A glob over policy names (policy_checks.naming: lowercase, digits, '-'): those characters and
# fnmatch's own (* ? [ ] !). Anything else could never match a name, so it is a typo.
_GLOB_RE = re.compile(r"[a-z0-9*?\[\]!-]{1,64}")
# A label names the token in provenance (`publisher.label`): short, printable, no secret.
_LABEL_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
LINE_FORMAT = (
    "expected '<read|write> <token>' or 'write <token> [<glob>[,<glob>...]] [label=NAME]'"
    " (token characters: A-Z a-z 0-9 . _ ~ + / - and trailing =; globs over names: a-z 0-9 - * ?"
    " [ ] !; label: A-Z a-z 0-9 . _ -)"
)


@dataclass(frozen=True)
class Caller:
    """Who made a request, as the hub verified it."""

    scopes: frozenset[str]  # {"read"} or {"read", "write"}
    globs: tuple[str, ...] | None  # fnmatch globs over names it may write; None = every name
    # {"kind": "token", "label": str | None} or {"kind": "github-oidc", "issuer", ...}
    publisher: Mapping[str, Any] = field(default_factory=lambda: {"kind": "token", "label": None})

    def may_write(self, name: str) -> bool:
        """Whether this caller may publish or yank `name`: the write scope and, when it has
        globs, a glob that matches the whole name (case-sensitive, as names are)."""
        if WRITE not in self.scopes:
            return False
        return self.globs is None or any(fnmatchcase(name, glob) for glob in self.globs)


@dataclass(frozen=True)
class TokenEntry:
    """One configured token: its scope, the names it may write (None = every name) and the
    label that names it in provenance."""

    scope: str
    token: str
    globs: tuple[str, ...] | None = None
    label: str | None = None

    def __repr__(self) -> str:  # never show the secret itself
        return f"TokenEntry(scope={self.scope!r}, globs={self.globs!r}, label={self.label!r})"


class TokenConfigError(Exception):
    """A token file or POLICY_HUB_SERVER_TOKENS entry that cannot be used."""


@dataclass(frozen=True)
class Tokens:
    """The configured tokens; `open_access` is --no-auth with no tokens (anyone may write)."""

    entries: tuple[TokenEntry, ...] = ()
    open_access: bool = False

    def __repr__(self) -> str:  # never show the secrets themselves
        return f"Tokens(count={len(self.entries)}, open_access={self.open_access})"

    def caller_of(self, authorization: str | None) -> Caller | None:
        """The caller an Authorization header proves; None when it is missing or unknown.

        A token on several lines gets every scope and glob they give; one line without globs
        lets it write every name; its label is the first one given."""
        if self.open_access:
            return Caller(frozenset(SCOPES), None, {"kind": "token", "label": None})
        token = bearer_token(authorization)
        if token is None:
            return None
        # Compare against every token, so timing says nothing about which one nearly matched.
        matched = [
            entry
            for entry in self.entries
            if hmac.compare_digest(token.encode(), entry.token.encode())
        ]
        if not matched:
            return None
        scopes = {entry.scope for entry in matched}
        if WRITE in scopes:
            scopes.add(READ)
        writes = [entry for entry in matched if entry.scope == WRITE]
        globs: tuple[str, ...] | None = ()
        if any(entry.globs is None for entry in writes):
            globs = None
        else:
            globs = tuple(dict.fromkeys(g for entry in writes for g in entry.globs or ()))
        label = next((entry.label for entry in matched if entry.label), None)
        return Caller(frozenset(scopes), globs, {"kind": "token", "label": label})

    def scopes_of(self, authorization: str | None) -> set[str] | None:
        """The scopes an Authorization header grants; None when it is missing or unknown."""
        caller = self.caller_of(authorization)
        return None if caller is None else set(caller.scopes)


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _TOKEN_RE.fullmatch(token):
        return None
    return token


def parse_token_line(line: str) -> TokenEntry | None:
    """One line `<read|write> <token>` or `write <token> [<globs>] [label=NAME]`; None when it
    cannot be used (the caller says where, never what: it may hold a secret)."""
    parts = line.split()
    if len(parts) < 2 or parts[0] not in SCOPES or not _TOKEN_RE.fullmatch(parts[1]):
        return None
    scope, token, rest = parts[0], parts[1], parts[2:]
    label: str | None = None
    if rest and rest[-1].startswith("label="):
        label = rest.pop()[len("label=") :]
        if not _LABEL_RE.fullmatch(label):
            return None
    globs: tuple[str, ...] | None = None
    if rest:
        if scope != WRITE or len(rest) != 1:
            return None
        globs = tuple(rest[0].split(","))
        if not all(_GLOB_RE.fullmatch(glob) for glob in globs):
            return None
    return TokenEntry(scope, token, globs, label)


def parse_token_lines(lines: list[str], source: str) -> list[TokenEntry]:
    """The token file's lines; blank lines and `#` comments are skipped."""
    entries: list[TokenEntry] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        entry = parse_token_line(line)
        # The message names the line, never its content: it may hold a secret.
        if entry is None:
            raise TokenConfigError(f"{source}:{number}: {LINE_FORMAT}")
        entries.append(entry)
    return entries


def parse_token_env(value: str) -> list[TokenEntry]:
    """`write:abc,read:def`: tokens that may write every name (globs need the token file)."""
    pairs: list[TokenEntry] = []
    for number, item in enumerate(value.split(","), start=1):
        item = item.strip()
        if not item:
            continue
        scope, sep, token = item.partition(":")
        if not sep or scope not in SCOPES or not _TOKEN_RE.fullmatch(token):
            raise TokenConfigError(f"{TOKENS_ENV}: entry {number}: expected '<read|write>:<token>'")
        pairs.append(TokenEntry(scope, token))
    return pairs


def load_tokens(
    token_file: Path | None, environ: Mapping[str, str] | None = None, *, no_auth: bool = False
) -> Tokens:
    """Tokens from --token-file and the environment; none at all is an error without --no-auth."""
    environ = os.environ if environ is None else environ
    pairs: list[TokenEntry] = []
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
    return Tokens(entries=tuple(pairs), open_access=no_auth and not pairs)
