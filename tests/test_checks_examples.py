"""The example-files acceptance cases: each folder under tests/example-files is one test.

The format of a case is described in tests/example-files/README.md.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy_checks import (
    MAX_FILE_BYTES,
    RESOURCE_SCHEMAS_DIR,
    CheckSettings,
    Finding,
    PolicyChecker,
    PolicyFiles,
    ResourceSchemas,
    read_policy_folder,
    read_resource_schema_files,
    start_evaluating,
)
from policy_checks.evaluator import DEFAULT_TIMEOUT

pytestmark = pytest.mark.fast

EXAMPLES = Path(__file__).parent / "example-files"
DEFAULT_FOLDER = "policies/example/v1.0.0"


def install_resource_schemas(spec: dict[str, Any], root: Path) -> None:
    """The case's `resource_schemas`, from example-files/resource-schemas/, into the
    repository's resource-schemas/."""
    for name in spec.get("resource_schemas") or []:
        (root / RESOURCE_SCHEMAS_DIR).mkdir(exist_ok=True)
        shutil.copy(EXAMPLES / RESOURCE_SCHEMAS_DIR / name, root / RESOURCE_SCHEMAS_DIR / name)


def _cases(kind: str) -> list[Any]:
    return [pytest.param(path, id=path.name) for path in sorted((EXAMPLES / kind).iterdir())]


def _load_case(path: Path, tmp_path: Path) -> tuple[PolicyFiles, dict[str, Any]]:
    """The case's folder copied into a repository under tmp_path and read by the real working
    tree reader, as author mode reads it: with `oversize` files and `symlinks` made there."""
    spec = yaml.safe_load((path / "case.yaml").read_text()) or {}
    folder = spec.get("folder", DEFAULT_FOLDER)
    target = tmp_path / folder
    shutil.copytree(path, target, ignore=shutil.ignore_patterns("case.yaml"))
    for name in spec.get("oversize", []):
        (target / name).write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    for link, points_to in (spec.get("symlinks") or {}).items():
        (target / link).symlink_to(points_to)
    install_resource_schemas(spec, tmp_path)
    return read_policy_folder(tmp_path, folder), spec


def _checker(spec: dict[str, Any], root: Path) -> PolicyChecker:
    settings = spec.get("settings") or {}
    return PolicyChecker.load(
        settings=CheckSettings(
            conditions=settings.get("conditions", "cel"),
            tests_required=settings.get("tests") == "required",
            eval_timeout=settings.get("eval_timeout", DEFAULT_TIMEOUT),
        ),
        resource_schemas=ResourceSchemas.load(read_resource_schema_files(root)),
    )


def _matches(entry: dict[str, Any], finding: Finding, folder: str) -> bool:
    file = folder if entry["file"] in (".", "") else f"{folder}/{entry['file']}"
    if finding.file != file or entry["contains"] not in finding.render():
        return False
    return "line" not in entry or entry["line"] == finding.line


@pytest.mark.parametrize("case", _cases("valid"))
def test_valid_case_has_no_finding(case: Path, tmp_path: Path) -> None:
    files, spec = _load_case(case, tmp_path)
    result = _checker(spec, tmp_path).check(files)
    assert [f.render() for f in result.findings] == []
    assert result.ok
    assert result.digest is not None and result.digest.startswith("sha256:")
    assert result.metadata["name"] == files.name
    assert f"v{result.version}" == files.version_dir


@pytest.mark.parametrize("case", _cases("invalid"))
def test_invalid_case_reports_exactly_the_expected_findings(case: Path, tmp_path: Path) -> None:
    files, spec = _load_case(case, tmp_path)
    expect = spec["expect"]
    result = _checker(spec, tmp_path).check(files)
    rendered = [f.render() for f in result.findings]
    assert not result.ok
    for entry in expect:
        assert any(_matches(entry, f, files.folder) for f in result.findings), (entry, rendered)
    for finding in result.findings:
        assert any(_matches(entry, finding, files.folder) for entry in expect), (
            finding.render(),
            finding.line,
        )


@pytest.mark.parametrize("case", _cases("valid") + _cases("invalid"))
def test_a_tests_file_read_ahead_gives_the_same_result(case: Path, tmp_path: Path) -> None:
    # Author mode in one process sends tests.yaml to the evaluating process two items ahead
    # (PolicyChecker.read_ahead): what the version is found to be must not change by it.
    files, spec = _load_case(case, tmp_path)
    checker = _checker(spec, tmp_path)
    here = checker.check(files)
    start_evaluating(CheckSettings(checker.conditions, eval_timeout=checker.eval_timeout))
    ahead = checker.read_ahead(files)
    small = files.tests is not None and len(base64.b64encode(files.tests)) + 13 <= 4096
    if small and checker.conditions == "cel" and os.name != "nt":  # a request any pipe holds
        assert ahead is not None
    read = checker.start(files, ahead)()
    assert [(f.render(), f.line) for f in read.findings] == [
        (f.render(), f.line) for f in here.findings
    ]
    assert (read.tests, read.digest, read.definition) == (here.tests, here.digest, here.definition)


def test_every_case_folder_has_a_case_file() -> None:
    folders = [path for kind in ("valid", "invalid") for path in (EXAMPLES / kind).iterdir()]
    assert folders
    assert all((path / "case.yaml").is_file() for path in folders)
