"""Kubernetes' semver library at SemverVersion(1): `semver()`, `isSemver()` (each with the
`normalize` flag) and the members of `kubernetes.Semver`, ported from k8s.io/apiserver
`pkg/cel/library/semverlib.go` and `pkg/cel/semver.go` (commit 24a394e516bf), over a port of
the parser they call, github.com/blang/semver/v4 `Parse` (v4.0.0, `v4/semver.go`).

Equality is Kubernetes' (`Version.EQ`, build metadata ignored): the opaque value's text is the
version without its build metadata, which nothing else reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from policy_checks.cel import messages
from policy_checks.cel.library import (
    Function,
    Library,
    function,
    implemented,
    member,
    refusal,
)
from policy_checks.cel.library.gotext import quote

SEMVER = "kubernetes.Semver"

_SEMVER_FUNCTIONS = (
    Function(
        "semver",
        (
            function("string_to_semver", ("string",), SEMVER, None),
            function("string_bool_to_semver", ("string", "bool"), SEMVER, None),
        ),
    ),
    Function(
        "isSemver",
        (
            function("is_semver_string", ("string",), "bool", None),
            function("is_semver_string_bool", ("string", "bool"), "bool", None),
        ),
    ),
    Function("isGreaterThan", (member("semver_is_greater_than", SEMVER, (SEMVER,), "bool", None),)),
    Function("isLessThan", (member("semver_is_less_than", SEMVER, (SEMVER,), "bool", None),)),
    Function("compareTo", (member("semver_compare_to", SEMVER, (SEMVER,), "int", None),)),
    Function("major", (member("semver_major", SEMVER, (), "int", None),)),
    Function("minor", (member("semver_minor", SEMVER, (), "int", None),)),
    Function("patch", (member("semver_patch", SEMVER, (), "int", None),)),
)

_UINT64_MAX = (1 << 64) - 1
_NUMBERS = re.compile("[0-9]*")
_ALPHANUMERIC = re.compile("[0-9A-Za-z-]*")


@dataclass(frozen=True)
class Prerelease:
    """semver.PRVersion: a number or an identifier."""

    text: str
    number: int | None

    def compare(self, other: Prerelease) -> int:
        if self.number is not None and other.number is not None:
            return (self.number > other.number) - (self.number < other.number)
        if self.number is not None:
            return -1
        if other.number is not None:
            return 1
        # Go compares strings by their bytes: code points in the same order, for UTF-8.
        return (self.text > other.text) - (self.text < other.text)


@dataclass(frozen=True)
class Version:
    """semver.Version; build metadata is kept out (no function of the library reads it)."""

    major: int
    minor: int
    patch: int
    pre: tuple[Prerelease, ...]

    def compare(self, other: Version) -> int:
        """Version.Compare."""
        for mine, theirs in ((self.major, other.major), (self.minor, other.minor)):
            if mine != theirs:
                return 1 if mine > theirs else -1
        if self.patch != other.patch:
            return 1 if self.patch > other.patch else -1
        if not self.pre and not other.pre:
            return 0
        if not self.pre:
            return 1
        if not other.pre:
            return -1
        for mine_pre, theirs_pre in zip(self.pre, other.pre, strict=False):
            found = mine_pre.compare(theirs_pre)
            if found:
                return found
        if len(self.pre) == len(other.pre):
            return 0
        return -1 if len(self.pre) < len(other.pre) else 1

    def text(self) -> str:
        """Version.String without the build metadata."""
        core = f"{self.major}.{self.minor}.{self.patch}"
        if not self.pre:
            return core
        return core + "-" + ".".join(p.text for p in self.pre)


def _contains_only(text: str, pattern: re.Pattern[str]) -> bool:
    return pattern.fullmatch(text) is not None


def _has_leading_zeroes(text: str) -> bool:
    return len(text) > 1 and text[0] == "0"


def _parse_uint(text: str) -> int:
    """strconv.ParseUint(text, 10, 64), its errors word for word (text is digits only)."""
    if not text:
        raise ValueError(f"strconv.ParseUint: parsing {quote(text)}: invalid syntax")
    # Before int(): a mebibyte of digits is out of range in linear time.
    if len(text.lstrip("0")) > 20 or int(text) > _UINT64_MAX:
        raise ValueError(f"strconv.ParseUint: parsing {quote(text)}: value out of range")
    return int(text)


def parse(text: str) -> Version:
    """semver.Parse; raises ValueError with its error."""
    if not text:
        raise ValueError("Version string empty")
    parts = text.split(".", 2)
    if len(parts) != 3:
        raise ValueError("No Major.Minor.Patch elements found")
    numbers = []
    for part, name in ((parts[0], "major"), (parts[1], "minor")):
        if not _contains_only(part, _NUMBERS):
            raise ValueError(f"Invalid character(s) found in {name} number {quote(part)}")
        if _has_leading_zeroes(part):
            raise ValueError(
                f"{name.capitalize()} number must not contain leading zeroes {quote(part)}"
            )
        numbers.append(_parse_uint(part))

    patch_text: str = parts[2]
    build_text: str | None = None
    prerelease_text: str | None = None
    if "+" in patch_text:
        patch_text, build_text = patch_text.split("+", 1)
    if "-" in patch_text:
        patch_text, prerelease_text = patch_text.split("-", 1)
    if not _contains_only(patch_text, _NUMBERS):
        raise ValueError(f"Invalid character(s) found in patch number {quote(patch_text)}")
    if _has_leading_zeroes(patch_text):
        raise ValueError(f"Patch number must not contain leading zeroes {quote(patch_text)}")
    patch = _parse_uint(patch_text)

    pre: tuple[Prerelease, ...] = ()
    if prerelease_text is not None:
        pre = tuple(_prerelease(p) for p in prerelease_text.split("."))
    for build in build_text.split(".") if build_text is not None else ():
        if not build:
            raise ValueError("Build meta data is empty")
        if not _contains_only(build, _ALPHANUMERIC):
            raise ValueError(f"Invalid character(s) found in build meta data {quote(build)}")
    return Version(numbers[0], numbers[1], patch, pre)


def _prerelease(text: str) -> Prerelease:
    """semver.NewPRVersion."""
    if not text:
        raise ValueError("Prerelease is empty")
    if _contains_only(text, _NUMBERS):
        if _has_leading_zeroes(text):
            raise ValueError(
                f"Numeric PreRelease version must not contain leading zeroes {quote(text)}"
            )
        return Prerelease(text, _parse_uint(text))
    if _contains_only(text, _ALPHANUMERIC):
        return Prerelease(text, None)
    raise ValueError(f"Invalid character(s) found in prerelease {quote(text)}")


def normalize_and_parse(text: str) -> Version:
    """semverlib.go's normalizeAndParse: no "v" prefix, leading zeros removed, a missing minor
    and patch made 0, then Parse. Unlike ParseTolerant it does not trim spaces."""
    text = text.removeprefix("v")
    parts = text.split(".", 2)
    for index, part in enumerate(parts):
        if len(part.encode()) > 1:  # Go's len: bytes
            part = part.lstrip("0")
            if not part or part[0] not in "0123456789":
                part = "0" + part
            parts[index] = part
    if len(parts) < 3:
        if any(c in parts[-1] for c in "+-"):
            raise ValueError("short version cannot contain PreRelease/Build meta data")
        parts += ["0"] * (3 - len(parts))
    return parse(".".join(parts))


# -- the opaque value ---------------------------------------------------------------------------


def to_value(version: Version) -> object:
    return messages.opaque(SEMVER, version.text())


def from_value(message: object) -> Version:
    # The text is one this module wrote: it parses, and means what it meant.
    return parse(messages.text_of(message))


def _go_int(value: int) -> int:
    """types.Int(v.Major): Go converts the uint64 to an int64, wrapping."""
    return value - (1 << 64) if value > (1 << 63) - 1 else value


# -- the functions ------------------------------------------------------------------------------


def _semver(text: str, normalize: bool = False) -> object:
    return to_value(normalize_and_parse(text) if normalize else parse(text))


def _is_semver(text: str, normalize: bool = False) -> bool:
    try:
        normalize_and_parse(text) if normalize else parse(text)
    except ValueError:
        return False
    return True


def _is_greater_than(version: object, other: object) -> bool:
    return from_value(version).compare(from_value(other)) == 1


def _is_less_than(version: object, other: object) -> bool:
    return from_value(version).compare(from_value(other)) == -1


def _compare_to(version: object, other: object) -> int:
    return from_value(version).compare(from_value(other))


def _major(version: object) -> int:
    return _go_int(from_value(version).major)


def _minor(version: object) -> int:
    return _go_int(from_value(version).minor)


def _patch(version: object) -> int:
    return _go_int(from_value(version).patch)


# A `semver('...')` literal that Kubernetes would refuse when it runs, refused when the
# condition compiles, with Kubernetes' message (without the normalize flag: with it, the literal
# is read only when it runs).
_refused = refusal(parse)


_IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    "string_to_semver": _semver,
    "string_bool_to_semver": _semver,
    "is_semver_string": _is_semver,
    "is_semver_string_bool": _is_semver,
    "semver_is_greater_than": _is_greater_than,
    "semver_is_less_than": _is_less_than,
    "semver_compare_to": _compare_to,
    "semver_major": _major,
    "semver_minor": _minor,
    "semver_patch": _patch,
}

LIBRARY = Library(
    "kubernetes.Semver",
    implemented(_SEMVER_FUNCTIONS, _IMPLEMENTATIONS),
    opaque_types=(SEMVER,),
    constants={"string_to_semver": (0, _refused)},
)
