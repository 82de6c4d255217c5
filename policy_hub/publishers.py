"""The `--publishers FILE` of `policy-hub serve` (docs/contract.md section 9): the OpenID Connect
issuers the hub trusts and the trusted publishers, read once at start. Every problem names the
file, the line and the entry, and says what to write instead (`PublishersError`, exit 4).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ISSUER_KEYS = frozenset({"issuer", "audience", "jwks_url", "jwks_file"})
PUBLISHER_KEYS = frozenset(
    {"issuer", "repository", "repository_owner_id", "workflow", "environment", "policies"}
)
MAX_FILE_BYTES = 1024 * 1024
# GitHub's rules for the parts of `owner/repo` and for a workflow file's name.
_REPOSITORY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
_WORKFLOW = re.compile(r"[A-Za-z0-9._-]+\.ya?ml")
_OWNER_ID = re.compile(r"[1-9][0-9]{0,19}")
_GLOB = re.compile(r"[a-z0-9*?\[\]!-]{1,64}")


class PublishersError(Exception):
    """The publishers file cannot be used: the message names file, line and entry."""


@dataclass(frozen=True)
class Issuer:
    """An OpenID Connect issuer: `iss` exactly, the audience it must put in `aud`, its keys."""

    issuer: str
    audience: str
    jwks_url: str | None = None
    jwks_file: Path | None = None


@dataclass(frozen=True)
class Publisher:
    """A trusted publisher: a workflow of one repository (and environment) and the names it may
    publish. Every field but `environment` must match the token's claims (`oidc.matches`)."""

    issuer: str
    repository: str
    repository_owner_id: str
    workflow: str
    environment: str | None
    policies: tuple[str, ...]
    line: int = 0


@dataclass(frozen=True)
class TrustConfig:
    """What `--publishers` says: issuers by their `iss`, and the publishers."""

    source: str
    issuers: Mapping[str, Issuer]
    publishers: tuple[Publisher, ...]


def load_publishers(path: Path) -> TrustConfig:
    """The publishers file, checked whole; PublishersError names the first problem."""
    shown = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PublishersError(f"{shown}: cannot read it ({exc.strerror or exc})") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise PublishersError(f"{shown}: over {MAX_FILE_BYTES} bytes; is it the right file?")
    try:
        text = raw.decode("utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        raise PublishersError(f"{shown}: not UTF-8 text") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise PublishersError(f"{shown}{where}: not valid YAML ({problem})") from exc
    return parse_publishers(data, node, shown, path.parent)


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 1


def _item_nodes(node: yaml.Node | None, key: str) -> list[yaml.Node | None]:
    """The nodes of the entries of top-level list `key`, for their line numbers."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                if isinstance(v, yaml.SequenceNode):
                    return list(v.value)
                return [v]
    return []


def parse_publishers(
    data: Any, node: yaml.Node | None, shown: str, folder: Path | None = None
) -> TrustConfig:
    if not isinstance(data, dict):
        raise PublishersError(
            f"{shown}:{_line(node)}: expected a mapping with 'issuers' and 'publishers' lists"
        )
    unknown = sorted(str(k) for k in data if k not in ("issuers", "publishers"))
    if unknown:
        raise PublishersError(
            f"{shown}:{_line(node)}: unknown top-level key {unknown[0]!r}; "
            "expected 'issuers' and 'publishers'"
        )
    for key in ("issuers", "publishers"):
        if not isinstance(data.get(key), list) or not data[key]:
            raise PublishersError(
                f"{shown}:{_line(node)}: '{key}' must be a non-empty list "
                "(see the README, 'Trusted publishing')"
            )
    issuers: dict[str, Issuer] = {}
    nodes = _item_nodes(node, "issuers")
    for index, entry in enumerate(data["issuers"]):
        where = f"{shown}:{_line(nodes[index] if index < len(nodes) else node)}: issuers[{index}]"
        issuer = _issuer(entry, where, folder)
        if issuer.issuer in issuers:
            raise PublishersError(f"{where}: issuer {issuer.issuer!r} is listed twice")
        issuers[issuer.issuer] = issuer
    publishers = []
    nodes = _item_nodes(node, "publishers")
    for index, entry in enumerate(data["publishers"]):
        line = _line(nodes[index] if index < len(nodes) else node)
        where = f"{shown}:{line}: publishers[{index}]"
        publishers.append(_publisher(entry, where, issuers, line))
    return TrustConfig(shown, issuers, tuple(publishers))


def _mapping(entry: Any, where: str, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise PublishersError(f"{where}: expected a mapping of {', '.join(sorted(allowed))}")
    unknown = sorted(str(k) for k in entry if k not in allowed)
    if unknown:
        raise PublishersError(
            f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}"
        )
    return entry


def _text(entry: dict[str, Any], key: str, where: str, hint: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PublishersError(f"{where}: '{key}' is missing or not a string; give {hint}")
    return value.strip()


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _url(value: str, where: str, key: str) -> str:
    """An https URL; plain http only to this machine (a test issuer): keys fetched over plain
    http to anywhere else could be swapped on the way, and with them every token trusted."""
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise PublishersError(f"{where}: '{key}' must be an https:// URL")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise PublishersError(
            f"{where}: '{key}' must be an https:// URL (plain http only to 127.0.0.1, ::1 or "
            "localhost)"
        )
    return value


def _issuer(entry: Any, where: str, folder: Path | None) -> Issuer:
    entry = _mapping(entry, where, ISSUER_KEYS)
    issuer = _text(
        entry, "issuer", where, "the `iss` claim, e.g. https://token.actions.githubusercontent.com"
    )
    _url(issuer, where, "issuer")
    audience = _text(entry, "audience", where, "the audience the tokens name, e.g. policy-hub")
    if ("jwks_url" in entry) == ("jwks_file" in entry):
        raise PublishersError(
            f"{where}: give exactly one of 'jwks_url' (the issuer's keys, e.g. "
            f"{issuer.rstrip('/')}/.well-known/jwks) and 'jwks_file' (a JWKS document)"
        )
    if "jwks_url" in entry:
        url = _url(
            _text(entry, "jwks_url", where, "the URL of the issuer's JWKS"), where, "jwks_url"
        )
        return Issuer(issuer, audience, jwks_url=url)
    file = Path(_text(entry, "jwks_file", where, "the path of a JWKS document"))
    if not file.is_absolute() and folder is not None:
        file = folder / file
    return Issuer(issuer, audience, jwks_file=file)


def _publisher(entry: Any, where: str, issuers: Mapping[str, Issuer], line: int) -> Publisher:
    entry = _mapping(entry, where, PUBLISHER_KEYS)
    issuer = _text(entry, "issuer", where, "the `issuer` of one of 'issuers'")
    if issuer not in issuers:
        raise PublishersError(
            f"{where}: issuer {issuer!r} is not one of 'issuers'; add it there or fix the spelling"
        )
    repository = _text(entry, "repository", where, "OWNER/REPO")
    if not _REPOSITORY.fullmatch(repository):
        raise PublishersError(f"{where}: repository {repository!r} is not OWNER/REPO")
    owner_id = entry.get("repository_owner_id")
    if isinstance(owner_id, int) and not isinstance(owner_id, bool):
        owner_id = str(owner_id)
    if not isinstance(owner_id, str) or not _OWNER_ID.fullmatch(owner_id.strip()):
        raise PublishersError(
            f"{where}: 'repository_owner_id' must be the owner's numeric id (quoted, e.g. "
            f'"1342004"); find it at https://api.github.com/users/{repository.split("/")[0]}'
            " (the `id` field)"
        )
    workflow = _text(entry, "workflow", where, "the workflow file's name, e.g. release.yml")
    if not _WORKFLOW.fullmatch(workflow):
        raise PublishersError(
            f"{where}: workflow {workflow!r} must be the file name alone, e.g. release.yml "
            "(not its path under .github/workflows/)"
        )
    environment = entry.get("environment")
    if environment is not None and (not isinstance(environment, str) or not environment.strip()):
        raise PublishersError(f"{where}: 'environment' must be a GitHub environment's name")
    policies = entry.get("policies")
    if isinstance(policies, str):
        policies = [policies]
    if (
        not isinstance(policies, list)
        or not policies
        or not all(isinstance(p, str) and _GLOB.fullmatch(p) for p in policies)
    ):
        raise PublishersError(
            f"{where}: 'policies' must be a non-empty list of name globs, e.g. "
            '["deny-*", "require-tags"] (lower-case letters, digits, -, and * ? [ ])'
        )
    return Publisher(
        issuer=issuer,
        repository=repository,
        repository_owner_id=owner_id.strip(),
        workflow=workflow,
        environment=environment.strip() if isinstance(environment, str) else None,
        policies=tuple(policies),
        line=line,
    )
