"""The pytest nodes of the policy tree: `policies/` as a collector, one `PolicyItem` per version
folder. They know the harness only through the plugin object registered as `policyhub-harness`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from policy_checks import Finding
from publisher.layout import folder_identity
from publisher.release import INVALID, ItemOutcome

if TYPE_CHECKING:
    from publisher.plugin import Harness

HARNESS_PLUGIN = "policyhub-harness"


class PolicyTree(pytest.Directory):
    """`policies/`: the items of the selected version folders, flat; or one `PolicyDir` per policy
    name when the command line names a path inside `policies/` (pytest matches such an argument
    one directory level at a time).
    """

    def __init__(self, *, harness: Harness, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.harness = harness

    def collect(self) -> list[pytest.Node]:
        by_name: dict[str, list[str]] = {}
        for folder in self.harness.selected():
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
            PolicyDir.from_parent(
                self, path=self.path / name, harness=self.harness, folders=folders
            )
            for name, folders in sorted(by_name.items())
        ]

    def _flat(self, by_name: dict[str, list[str]]) -> bool:
        """Flat unless an argument names a path inside the tree or a conftest.py sits in a
        selected folder (pytest finds conftests by collecting each directory)."""
        base = self.config.invocation_params.dir
        for arg in self.config.args:
            path = (base / arg.split("::")[0]).resolve()
            if path != self.path and path.is_relative_to(self.path):
                return False
        # Only the selected folders are looked at: a no-op release stats nothing.
        candidates = [self.path / name / "conftest.py" for name in by_name]
        candidates += [
            self.harness.root / folder / "conftest.py"
            for folders in by_name.values()
            for folder in folders
        ]
        return not any(path.is_file() for path in candidates)


class PolicyDir(pytest.Directory):
    """`policies/<name>/`: its version folders."""

    def __init__(self, *, harness: Harness, folders: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.harness = harness
        self.folders = folders

    def collect(self) -> list[pytest.Node]:
        nodes: list[pytest.Node] = []
        for folder in sorted(self.folders):
            name, _ = folder_identity(folder)
            if folder.count("/") == 1:
                # Files straight in policies/<name>/: a policy without any version folder.
                nodes.append(PolicyItem.from_parent(self, name=name, folder=folder))
                continue
            version_dir = self.harness.root / folder
            nodes.append(
                VersionDir.from_parent(self, path=version_dir, harness=self.harness, folder=folder)
            )
        return nodes


class VersionDir(pytest.Directory):
    """`policies/<name>/v<version>/`: exactly one item."""

    def __init__(self, *, harness: Harness, folder: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.harness = harness
        self.folder = folder

    def collect(self) -> list[pytest.Item]:
        name, version = folder_identity(self.folder)
        return [PolicyItem.from_parent(self, name=f"{name}@{version}", folder=self.folder)]


class PolicyFailure(Exception):
    """An item's failure: its message is the whole report (no traceback to show or leak)."""


class PolicyItem(pytest.Item):
    """One policy version: checked in author mode, delivered in release mode."""

    def __init__(self, *, folder: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.folder = folder
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
            path=tree.harness.root / folder,
            nodeid=f"{folder}::{item_name}",
            folder=folder,
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

    @property
    def harness(self) -> Harness:
        return self.config.pluginmanager.get_plugin(HARNESS_PLUGIN)  # type: ignore[no-any-return]

    def runtest(self) -> None:
        if self.folder.count("/") == 1:
            name = self.folder.split("/")[1]
            out = ItemOutcome(self.folder, name, "", INVALID, "no version folder")
            # A link where a policy folder would be: its finding, never what it points at.
            problems = self.harness.source.read(self.folder).read_errors
            out.findings.extend(problems)
            if problems:
                out.reason = "not a valid policy folder (see the problems below); nothing sent"
            else:
                out.findings.append(
                    Finding(
                        file=self.folder,
                        message="holds files but no version folder",
                        hint=f"move them into {self.folder}/v1.0.0/",
                        rule="layout",
                    )
                )
        else:
            out = self.harness.run_item(self.folder)
        self.outcome = out
        self.user_properties.extend(out.properties())
        if not out.passed:
            raise PolicyFailure(out.failure_text())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, PolicyFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        # No "domain": pytest would turn the dots of a version into "::" in progress lines.
        return self.path, None, ""
