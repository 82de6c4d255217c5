"""The example-files acceptance cases: each folder under tests/example-files is one test.

The format of a case is described in tests/example-files/README.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from policy_checks import (
    DEFINITION_FILE,
    MAX_FILE_BYTES,
    METADATA_FILE,
    Finding,
    PolicyChecker,
    PolicyFiles,
)

EXAMPLES = Path(__file__).parent / "example-files"
DEFAULT_FOLDER = "policies/example/v1.0.0"


def _cases(kind: str) -> list[Any]:
    return [pytest.param(path, id=path.name) for path in sorted((EXAMPLES / kind).iterdir())]


def _load_case(path: Path) -> tuple[PolicyFiles, dict[str, Any]]:
    spec = yaml.safe_load((path / "case.yaml").read_text()) or {}
    folder = spec.get("folder", DEFAULT_FOLDER)
    contents: dict[str, bytes | None] = {}
    for name in (METADATA_FILE, DEFINITION_FILE):
        file = path / name
        contents[name] = file.read_bytes() if file.exists() else None
    for name in spec.get("oversize", []):
        contents[name] = b"#" * (MAX_FILE_BYTES + 1)
    names = tuple(sorted(p.name for p in path.iterdir() if p.name != "case.yaml"))
    return PolicyFiles(folder, contents[METADATA_FILE], contents[DEFINITION_FILE], (), names), spec


def _matches(entry: dict[str, Any], finding: Finding, folder: str) -> bool:
    file = folder if entry["file"] in (".", "") else f"{folder}/{entry['file']}"
    if finding.file != file or entry["contains"] not in finding.render():
        return False
    return "line" not in entry or entry["line"] == finding.line


@pytest.fixture(scope="module")
def checker() -> PolicyChecker:
    return PolicyChecker.load()


@pytest.mark.parametrize("case", _cases("valid"))
def test_valid_case_has_no_finding(case: Path, checker: PolicyChecker) -> None:
    files, _ = _load_case(case)
    result = checker.check(files)
    assert [f.render() for f in result.findings] == []
    assert result.ok
    assert result.digest is not None and result.digest.startswith("sha256:")
    assert result.metadata["name"] == files.name
    assert f"v{result.version}" == files.version_dir


@pytest.mark.parametrize("case", _cases("invalid"))
def test_invalid_case_reports_exactly_the_expected_findings(
    case: Path, checker: PolicyChecker
) -> None:
    files, spec = _load_case(case)
    expect = spec["expect"]
    result = checker.check(files)
    rendered = [f.render() for f in result.findings]
    assert not result.ok
    for entry in expect:
        assert any(_matches(entry, f, files.folder) for f in result.findings), (entry, rendered)
    for finding in result.findings:
        assert any(_matches(entry, finding, files.folder) for entry in expect), (
            finding.render(),
            finding.line,
        )


def test_every_case_folder_has_a_case_file() -> None:
    folders = [path for kind in ("valid", "invalid") for path in (EXAMPLES / kind).iterdir()]
    assert folders
    assert all((path / "case.yaml").is_file() for path in folders)
