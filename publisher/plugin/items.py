"""The pytest nodes of the policy tree: `policies/` as a collector, one `PolicyItem` per version
folder. They know what runs them only through the small `Runner` protocol, passed down from the
tree to every node (`publisher/plugin/worker.py` implements it).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pytest

from policy_checks import Finding, PolicyFiles
from publisher.release.outcome import ItemOutcome, Outcome, first_problem
from publisher.repo.layout import folder_identity


class Runner(Protocol):
    root: Path

    def selected(self) -> list[str]: ...

    def read(self, folder: str) -> PolicyFiles: ...

    def run_item(self, folder: str) -> ItemOutcome: ...


class PolicyTree(pytest.Directory):
    """`policies/`: the items of the selected version folders, flat; or one `PolicyDir` per policy
    name when the command line names a path inside `policies/` (pytest matches such an argument
    one directory level at a time).
    """

    def __init__(self, *, runner: Runner, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runner = runner

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        by_name: dict[str, list[str]] = {}
        ignored = self._ignored_by_options()
        for folder in self.runner.selected():
            if not ignored(folder):
                by_name.setdefault(folder.split("/")[1], []).append(folder)
        if self._flat(by_name):
            # Every collector node costs pytest ~0.5 ms (hooks, conftest look-up, report), which
            # each xdist worker pays again: items straight under the tree, same node ids.
            return [
                PolicyItem.for_folder(self, folder)
                for _, folders in sorted(by_name.items())
                for folder in sorted(folders)
            ]
        return [
            PolicyDir.from_parent(self, path=self.path / name, runner=self.runner, folders=folders)
            for name, folders in sorted(by_name.items())
        ]

    def _ignored_by_options(self) -> Callable[[str], bool]:
        """`--ignore`/`--ignore-glob` name directories, which pytest would skip one level at a
        time; these nodes are made without walking the directories, so the policy folder and
        the version folder of each are put to `pytest_ignore_collect` here (only when asked)."""
        option = self.config.option
        if not (getattr(option, "ignore", None) or getattr(option, "ignore_glob", None)):
            return lambda folder: False

        @functools.cache
        def ignored(relpath: str) -> bool:
            path = self.runner.root / relpath
            return bool(self.ihook.pytest_ignore_collect(collection_path=path, config=self.config))

        def folder_ignored(folder: str) -> bool:
            policy = "/".join(folder.split("/")[:2])
            return ignored(policy) or ignored(folder)

        return folder_ignored

    def _flat(self, by_name: dict[str, list[str]]) -> bool:
        """Flat unless an argument names a path inside the tree or a conftest.py sits in a
        selected folder (pytest finds conftests by collecting each directory)."""
        base = self.config.invocation_params.dir
        for arg in self.config.args:
            path = (base / arg.split("::")[0]).resolve()
            if path != self.path and path.is_relative_to(self.path):
                return False
        # Only the selected folders are looked at: a no-op release stats nothing. Strings, not
        # Paths: pathlib costs more than the stat itself, twice per version.
        tree, root = str(self.path), str(self.runner.root)
        candidates = [os.path.join(tree, name, "conftest.py") for name in by_name]
        candidates += [
            os.path.join(root, folder, "conftest.py")
            for folders in by_name.values()
            for folder in folders
        ]
        return not any(os.path.isfile(path) for path in candidates)


class PolicyDir(pytest.Directory):
    """`policies/<name>/`: its version folders."""

    def __init__(self, *, runner: Runner, folders: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runner = runner
        self.folders = folders

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        nodes: list[pytest.Item | pytest.Collector] = []
        for folder in sorted(self.folders):
            name, _ = folder_identity(folder)
            if folder.count("/") == 1:
                # Files straight in policies/<name>/: a policy without any version folder.
                nodes.append(
                    PolicyItem.from_parent(self, name=name, folder=folder, runner=self.runner)
                )
                continue
            version_dir = self.runner.root / folder
            nodes.append(
                VersionDir.from_parent(self, path=version_dir, runner=self.runner, folder=folder)
            )
        return nodes


class VersionDir(pytest.Directory):
    """`policies/<name>/v<version>/`: exactly one item."""

    def __init__(self, *, runner: Runner, folder: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runner = runner
        self.folder = folder

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        name, version = folder_identity(self.folder)
        return [
            PolicyItem.from_parent(
                self, name=f"{name}@{version}", folder=self.folder, runner=self.runner
            )
        ]


class PolicyFailure(Exception):
    """An item's failure: its message is the whole report (no traceback to show or leak)."""


class PolicyItem(pytest.Item):
    """One policy version: checked in author mode, delivered in release mode."""

    def __init__(self, *, folder: str, runner: Runner, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.folder = folder
        self.runner = runner
        self.outcome: ItemOutcome | None = None

    @classmethod
    def for_folder(cls, tree: PolicyTree, folder: str) -> PolicyItem:
        """The item of `folder` directly under the tree, with the node id it has in the tree."""
        parts = folder.split("/")
        name, version = folder_identity(folder)
        item_name = f"{name}@{version}" if len(parts) > 2 else name
        item = cls.from_parent(
            tree,
            name=item_name,
            path=tree.runner.root / folder,
            nodeid=f"{folder}::{item_name}",
            folder=folder,
            runner=tree.runner,
        )
        # `-k` matches the names of parent nodes too: keep those of the folders.
        item.extra_keyword_matches.update(parts[1:])
        item.flat = True
        return item

    flat = False  # collected straight under the tree: its hooks are the tree's

    @property
    def ihook(self) -> Any:
        # pytest knows the conftests of a directory only once it collected that directory.
        return self.parent.ihook if self.flat and self.parent else super().ihook

    def runtest(self) -> None:
        if self.folder.count("/") == 1:
            name = self.folder.split("/")[1]
            out = ItemOutcome(self.folder, name, "", Outcome.INVALID, "no version folder")
            # A link where a policy folder would be: its finding, never what it points at.
            problems = self.runner.read(self.folder).read_errors
            out.findings.extend(problems)
            if not problems:
                out.findings.append(
                    Finding(
                        file=self.folder,
                        message="holds files but no version folder",
                        hint=f"move them into {self.folder}/v1.0.0/",
                        rule="layout",
                    )
                )
            out.reason = first_problem(out.findings)
        else:
            out = self.runner.run_item(self.folder)
        self.outcome = out
        self.user_properties.extend(out.properties())
        if not out.passed:
            raise PolicyFailure(out.failure_text())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, PolicyFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    @functools.cached_property
    def location(self) -> tuple[str, int | None, str]:
        # pytest's own (bestrelpath over pathlib, cached per path: every item misses) is a tenth
        # of a millisecond an item; os.path.relpath gives the same string on absolute paths.
        path, line, name = self.reportinfo()
        try:
            return os.path.relpath(path, self.config.rootpath), line, name
        except ValueError:  # another drive (Windows): pytest's answer
            return super().location

    def reportinfo(self) -> tuple[Path, int | None, str]:
        # The failure header names the version. Not `name@version` itself: pytest replaces the
        # dots of a domain that ends the node id with "::" in progress lines (1::2::0).
        name, version = folder_identity(self.folder)
        return self.path, None, f"policy {name}@{version}" if version else f"policy {name}"
