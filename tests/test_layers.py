"""The import layers that the package docstrings promise, checked over the source (`ast`), so the
tree keeps saying what it does: pytest (and xdist) only in `publisher/plugin/`, and every arrow
between the `publisher` packages pointing down:

    plugin -> release -> {state -> repo, hub} -> {printable, refused};   policy_checks below.

An import inside a function counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTEST_LIKE = ("pytest", "_pytest", "xdist", "pluggy")

# package (a folder, or a top-level module) -> the publisher packages it may import
MAY_IMPORT: dict[str, set[str]] = {
    "publisher.printable": set(),
    "publisher.refused": set(),
    "publisher.hub": {"publisher.printable", "publisher.refused"},
    "publisher.repo": {"publisher.printable", "publisher.refused"},
    "publisher.state": {"publisher.repo", "publisher.printable", "publisher.refused"},
    "publisher.release": {
        "publisher.hub",
        "publisher.repo",
        "publisher.state",
        "publisher.printable",
        "publisher.refused",
    },
    "publisher.plugin": {
        "publisher.hub",
        "publisher.repo",
        "publisher.state",
        "publisher.release",
        "publisher.printable",
        "publisher.refused",
    },
}


def _modules() -> list[Path]:
    return sorted(
        p
        for pkg in ("publisher", "policy_checks", "policy_hub")
        for p in (ROOT / pkg).rglob("*.py")
    )


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # `from publisher import printable` names a module in the imported names
            found.extend((node.lineno, f"{node.module}.{a.name}") for a in node.names)
    return found


def _package_of(module: str) -> str | None:
    """`publisher.release.plan` -> `publisher.release`; None outside the publisher packages."""
    for package in MAY_IMPORT:
        if module == package or module.startswith(package + "."):
            return package
    return None


def _dotted(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def layer_violations() -> list[str]:
    problems: list[str] = []
    for path in _modules():
        module = _dotted(path)
        own = _package_of(module)
        shown = path.relative_to(ROOT).as_posix()
        for line, name in _imports(path):
            top = name.split(".")[0]
            if top in PYTEST_LIKE and own != "publisher.plugin":
                problems.append(f"{shown}:{line}: imports {name}; only publisher/plugin/ may")
            if top == "publisher" and not module.startswith("publisher."):
                problems.append(f"{shown}:{line}: imports {name}; publisher is above it")
            target = _package_of(name)
            if own is None or target is None or target == own:
                continue
            if target not in MAY_IMPORT[own]:
                problems.append(f"{shown}:{line}: {own} imports {name}, above it")
    return problems


def test_pytest_is_imported_only_by_the_plugin_and_every_arrow_points_down() -> None:
    assert layer_violations() == []


def test_the_check_finds_a_layer_broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself can fail: a copy of the tree with pytest in the engine, and an arrow
    pointing up, is reported line by line."""
    import shutil

    for pkg in ("publisher", "policy_checks", "policy_hub"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    plan = tmp_path / "publisher" / "release" / "plan.py"
    plan.write_text(plan.read_text(encoding="utf-8") + "\nimport pytest\n", encoding="utf-8")
    client = tmp_path / "publisher" / "hub" / "client.py"
    client.write_text(
        client.read_text(encoding="utf-8") + "\nfrom publisher.release import plan\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    problems = layer_violations()
    assert any(p.startswith("publisher/release/plan.py:") and "pytest" in p for p in problems)
    assert any(
        p.startswith("publisher/hub/client.py:") and "publisher.hub imports publisher.release" in p
        for p in problems
    )
