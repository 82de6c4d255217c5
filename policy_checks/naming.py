"""Names and versions of policy folders: `policies/<name>/v<semver>/`.

Owns the two patterns of the contract and the hints that say what is wrong with a folder name.
"""

from __future__ import annotations

import re

NAME_RE: re.Pattern[str] = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")

# The official regex from semver.org (numbered groups variant), without a leading "v".
SEMVER_RE: re.Pattern[str] = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)

POLICIES_DIR = "policies"  # the folder of every policy, at the top of the repository
METADATA_FILE = "metadata.json"
DEFINITION_FILE = "policy-definition.yaml"
TESTS_FILE = "tests.yaml"  # a version's test cases: checked, never published, not in the digest
MAX_FILE_BYTES = 1024 * 1024

_MAX_NAME = 64


def parse_version_dir(dirname: str) -> str | None:
    """`v1.2.3` -> `1.2.3`; anything that is not `v` + Semantic Versioning -> None."""
    if not dirname.startswith("v"):
        return None
    version = dirname[1:]
    # fullmatch, not match: `$` would accept a trailing newline.
    return version if SEMVER_RE.fullmatch(version) else None


def looks_like_version(dirname: str) -> bool:
    """Whether an entry of `policies/<name>/` is meant as a version (`v1.2.3`, `v1.2`, `1.0`):
    those are validated, and fail when malformed; anything else there (`docs/`, `examples/`)
    belongs to the policy and is left alone (CONTRACT section 1)."""
    return re.match(r"[vV]?\d", dirname) is not None


def name_problem(name: str) -> tuple[str, str] | None:
    """(message, hint) when `name` is not a valid policy name, else None."""
    if NAME_RE.fullmatch(name):
        return None
    reasons = []
    if name != name.lower():
        reasons.append("uppercase letters")
    if "_" in name:
        reasons.append("'_'")
    if re.search(r"[^A-Za-z0-9_-]", name):
        reasons.append("characters other than a-z, 0-9 and '-'")
    if name[:1] == "-" or name[-1:] == "-":
        reasons.append("a leading or trailing '-'")
    if len(name) > _MAX_NAME:
        reasons.append(f"{len(name)} characters (at most {_MAX_NAME})")
    if not name:
        reasons.append("no characters")
    message = f"folder name {name!r} is not a valid policy name"
    if reasons:
        message += ": it has " + ", ".join(reasons)
    suggestion = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:_MAX_NAME].rstrip("-")
    hint = "use lowercase letters, digits and '-' (at most 64)"
    if suggestion and NAME_RE.fullmatch(suggestion):
        hint += f", e.g. {suggestion}"
    return message, hint


def version_dir_problem(dirname: str) -> tuple[str, str] | None:
    """(message, hint) when `dirname` is not `v` + Semantic Versioning, else None."""
    if parse_version_dir(dirname) is not None:
        return None
    message = f"version folder {dirname!r} is not 'v' + a Semantic Versioning 2.0.0 version"
    bare = dirname[1:] if dirname[:1] in ("v", "V") else dirname
    if dirname[:1] != "v" and SEMVER_RE.fullmatch(bare):
        return message, f"write v{bare}"
    parts = re.fullmatch(r"(\d+)(?:\.(\d+))?", bare)
    if parts:
        major, minor = parts.group(1), parts.group(2) or "0"
        return message, (
            f"{dirname} is not Semantic Versioning: write v{int(major)}.{int(minor)}.0"
        )
    if re.fullmatch(r"\d+\.\d+\.\d+.*", bare) and re.search(r"(^|\.)0\d", bare):
        return message, "numbers must not have leading zeros, e.g. v1.2.3 not v01.02.03"
    return message, "expected v<major>.<minor>.<patch>[-<prerelease>], e.g. v1.0.0 or v2.0.0-rc.1"
