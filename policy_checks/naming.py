"""Names and versions of policy folders: `policies/<name>/v<semver>/`.

Owns the two patterns of the contract and the hints that say what is wrong with a folder name.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from policy_checks.model import quoted

# The two patterns of the contract (section 1), as text: the hub's API declares the same ones
# (policy_hub/models.py), so a name or version is valid for the harness exactly when it is for
# the hub. ASCII only: `[0-9]`, never `\d`, which in Python's `re` and in pydantic's Rust regex
# also takes other scripts' digits (`1١.0.0` with an Arabic-Indic one).
NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
# The official SemVer 2.0.0 regex (semver.org, numbered groups), without a leading "v".
SEMVER_PATTERN = (
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
# Use with fullmatch: `$` alone would accept a trailing newline.
NAME_RE: re.Pattern[str] = re.compile(NAME_PATTERN)
SEMVER_RE: re.Pattern[str] = re.compile(SEMVER_PATTERN)

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
    belongs to the policy and is left alone (docs/contract.md section 1). Any script's digit counts
    here (`\\d`): `v١.0.0` is meant as a version, and fails as one."""
    return re.match(r"[vV]?\d", dirname) is not None


# NAME_RE in words, for authors.
NAME_RULE = (
    f"1 to {_MAX_NAME} lowercase letters, digits and '-', starting and ending with a letter "
    "or digit"
)


def name_problem(
    name: str, what: str = "folder name", noun: str = "policy name"
) -> tuple[str, str] | None:
    """(message, hint) when `name` is not a valid policy name (or, `noun`, another name with
    the same rule: a rule id), else None. The message says what is wrong with it, the hint the
    rule in words and the name it could be; `what` names the place (empty: the JSON path does)."""
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
    message = f"{what} {quoted(name)}".lstrip() + f" is not a valid {noun}"
    if reasons:
        message += ": it has " + ", ".join(reasons)
    suggestion = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:_MAX_NAME].rstrip("-")
    hint = f"a {noun} is {NAME_RULE}"
    if suggestion and NAME_RE.fullmatch(suggestion):
        hint += f": write `{suggestion}`"
    return message, hint


def version_dir_problem(dirname: str) -> tuple[str, str] | None:
    """(message, hint) when `dirname` is not `v` + Semantic Versioning, else None."""
    if parse_version_dir(dirname) is not None:
        return None
    message = f"version folder {dirname!r} is not 'v' + a Semantic Versioning 2.0.0 version"
    bare = dirname[1:] if dirname[:1] in ("v", "V") else dirname
    fixed = full_version_dir(dirname)
    if fixed is not None:
        only_the_v = fixed[1:] == bare
        return message, f"write {fixed}" if only_the_v else (
            f"{dirname} is not Semantic Versioning: write {fixed}"
        )
    other_digit = next((c for c in bare if c.isdigit() and not "0" <= c <= "9"), None)
    if other_digit is not None:
        what = unicodedata.name(other_digit, "a digit of another script")
        return message, (
            f"a version's numbers are written with the digits 0-9 only: {other_digit!r} "
            f"(U+{ord(other_digit):04X} {what}) is not one of them"
        )
    if re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+.*", bare) and re.search(r"(^|\.)0[0-9]", bare):
        return message, "numbers must not have leading zeros, e.g. v1.2.3 not v01.02.03"
    return message, "expected v<major>.<minor>.<patch>[-<prerelease>], e.g. v1.0.0 or v2.0.0-rc.1"


def full_version_dir(dirname: str) -> str | None:
    """The version folder meant by one that is not valid, when it is plain: `v1.2` -> `v1.2.0`,
    `1.2.3` -> `v1.2.3`, `V2` -> `v2.0.0`; None when that cannot be told."""
    bare = dirname[1:] if dirname[:1] in ("v", "V") else dirname
    if dirname[:1] != "v" and SEMVER_RE.fullmatch(bare):
        return f"v{bare}"
    parts = re.fullmatch(r"([0-9]+)(?:\.([0-9]+))?", bare)
    if parts:
        return f"v{int(parts.group(1))}.{int(parts.group(2) or '0')}.0"
    return None


def semver_key(version: str) -> tuple[Any, ...]:
    """Sort key in SemVer precedence (build metadata ignored, then used as a tie-break)."""
    match = SEMVER_RE.fullmatch(version)
    if match is None:
        return ((), (), version)
    major, minor, patch, pre, build = match.groups()
    if pre is None:
        pre_key: tuple[Any, ...] = ((1,),)
    else:
        pre_key = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
        pre_key = ((0,), *pre_key)
    return ((int(major), int(minor), int(patch)), pre_key, build or "")
