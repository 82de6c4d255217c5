"""The values that cross the package boundary: raw folder input, findings and results.

Plain frozen dataclasses, so the publisher can ship them between processes as simple data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Finding:
    """One problem with a policy version, located as precisely as the input allows."""

    file: str
    message: str
    line: int | None = None
    json_path: str | None = None
    hint: str | None = None
    rule: str | None = None

    def render(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = (
            f"{where}: {self.json_path}: {self.message}"
            if self.json_path
            else (f"{where}: {self.message}")
        )
        return f"{text} (hint: {self.hint})" if self.hint else text


def shown(text: str, limit: int = 60) -> str:
    """Text from a file (a key, a name) as output shows it: capped, and with anything
    unprintable escaped as repr escapes it, so a file cannot write to a terminal."""
    capped = text if len(text) <= limit else text[: limit - 1] + "…"
    return capped if capped.isprintable() else repr(capped)[1:-1]


def quoted(text: str, limit: int = 60) -> str:
    """Text from a policy file as a message shows it: `shown`, in backticks."""
    return f"`{shown(text, limit)}`"


def _segment(folder: str, index: int) -> str:
    parts = folder.split("/")
    return parts[index] if len(parts) > index else ""


@dataclass(frozen=True)
class OtherFile:
    """Another file of a version folder (a test case's `resource_file`), as a source read it:
    its bytes, or why there are none (a link, not a regular file); neither when it is absent."""

    data: bytes | None
    problem: str | None = None


@dataclass(frozen=True)
class PolicyFiles:
    """What a source (working tree or git commit) read for one version folder."""

    folder: str
    metadata: bytes | None
    definition: bytes | None
    read_errors: tuple[Finding, ...] = ()
    names: tuple[str, ...] = ()  # the folder's file names, for hints about a misnamed file
    tests: bytes | None = None  # tests.yaml, when the folder has one (never published)
    # Reads a file of the folder by its path relative to it, with the source's refusals.
    read_other: Callable[[str], OtherFile] | None = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return _segment(self.folder, 1)

    @property
    def version_dir(self) -> str:
        return _segment(self.folder, 2)


@dataclass(frozen=True)
class CheckResult:
    """Everything the checks found out about one policy version."""

    folder: str
    name: str
    version: str
    findings: tuple[Finding, ...]
    metadata: Any | None
    definition: Any | None
    digest: str | None
    tests: str | None = None  # "passed/total" cases of tests.yaml, when it has any that ran

    @property
    def ok(self) -> bool:
        return not self.findings
