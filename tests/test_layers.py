"""The import layers of docs/architecture.md, kept: they are import-linter contracts
(`[tool.importlinter]` in pyproject.toml), and `lint-imports` checks them over the source. Every
import counts, relative or inside a function, and a chain through other modules as much as a
direct one:

    publisher.plugin -> release -> {state -> repo, hub} -> {printable, refused}
    publisher -> policy_hub -> policy_checks;   pytest only in publisher.plugin
    policy_hub: cli -> server -> {app, engines} -> each engine -> store -> answers
    policy_checks: evalcli -> checker -> checks -> evaluator -> words -> {rules, worktree} -> cel
        -> {loading, fastschema} -> {digest, jsonpath, naming} -> model
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("publisher", "policy_checks", "policy_hub")
LINT_IMPORTS = (
    "import sys; from importlinter.cli import lint_imports_command; "
    "sys.exit(lint_imports_command())"
)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` over the packages under `root`, with the contracts of its pyproject.toml."""
    return subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-cache", "--no-logo"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_layer_contract_is_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_planted_back_arrow_breaks_its_contract(tmp_path: Path) -> None:
    """The check itself can fail: in a copy of the tree, each arrow planted the wrong way is
    reported, with the contract it breaks and the line that breaks it."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    plants = {
        # (file, the line appended) -> what the report must say
        ("policy_checks/digest.py", "import pytest"): "policy_checks.digest -> pytest",
        ("publisher/hub/client.py", "from ..release import plan"): (
            "publisher.hub.client -> publisher.release.plan"
        ),
        ("policy_hub/store.py", "from policy_hub.engines import open_store"): (
            "policy_hub.store -> policy_hub.engines"
        ),
        ("policy_checks/naming.py", "def _f():\n    import policy_hub.models"): (
            "policy_checks.naming -> policy_hub.models"
        ),
        ("policy_checks/evaluator.py", "from policy_checks.checks import conditions"): (
            "policy_checks.evaluator -> policy_checks.checks.conditions"
        ),
    }
    for file, line in plants:
        path = tmp_path / file
        path.write_text(path.read_text(encoding="utf-8") + f"\n\n{line}\n", encoding="utf-8")

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    report = " ".join(result.stdout.split())
    for contract in (
        "pytest (and xdist, pluggy) only in publisher.plugin BROKEN",
        "publisher: plugin -> release -> {state -> repo, hub} -> {printable, refused} BROKEN",
        "policy_hub: the CLI -> the app and engines.py -> pages -> oidc -> verify -> each engine "
        "-> store.py -> answers.py BROKEN",
        "publisher above policy_hub above policy_checks BROKEN",
        "policy_checks: the CLI -> checker -> checks -> evaluator -> words -> cel -> loading -> "
        "facts BROKEN",
    ):
        assert contract in report, result.stdout
    for arrow in plants.values():
        assert arrow in report, result.stdout
