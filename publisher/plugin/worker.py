"""`ItemRunner`: what runs policy items, the same on the controller (without xdist) and on every
xdist worker, built from one `RunSpec`. It owns collection (`policies/` becomes a `PolicyTree`),
running one version (the checks, the next version's begun while this one's report is made so its
test cases run meanwhile, and in one process the tests.yaml of the version after that sent to the
evaluating process to read; or the delivery of `delivery.deliver_version` with the hub check the
controller sent ahead, or this process started during the previous item: `hubchecks`), and
shipping each outcome on its test report to the controller.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from policy_checks import (
    POLICIES_DIR,
    CheckResult,
    PolicyChecker,
    PolicyFiles,
    start_evaluating,
)
from policy_checks.evaluator import ReadAhead
from publisher.hub.client import HubAnswer, HubClient, RetryPolicy, TokenSource
from publisher.plugin.items import PolicyItem, PolicyTree
from publisher.release.delivery import deliver_version
from publisher.release.guard import check_only
from publisher.release.hubchecks import (
    HubCheckBoard,
    HubCheckPrefetch,
    HubOutage,
    TokenRefused,
)
from publisher.release.outcome import ItemOutcome
from publisher.release.run import load_checker, load_resource_schemas
from publisher.release.runspec import RunSpec
from publisher.repo.layout import CommitSource, WorkingTreeSource, discover_version_folders
from publisher.state.folder import DeliveredIndex, StateDir

RUNNER_PLUGIN = "policyhub-runner"
REPORT_ATTR = "policyhub"  # the item's outcome, shipped by xdist on the test report


class ItemRunner:
    """Registered as a plugin object in every process that runs policy items."""

    def __init__(
        self,
        root: Path,
        spec: RunSpec,
        token: str | TokenSource | None,
        checker: PolicyChecker | None = None,
    ) -> None:
        self.root = root
        self.spec = spec
        self._token = token  # for the HubClient only; never printed, never on `spec`
        self._checker = checker
        self._client: HubClient | None = None
        self._source: WorkingTreeSource | CommitSource | None = None
        self._prefetch: HubCheckPrefetch | None = None
        self._folders = spec.folders
        self._outage = HubOutage(Path(spec.outage_file)) if spec.outage_file else None
        self._refused = (
            TokenRefused(Path(spec.token_refused_file)) if spec.token_refused_file else None
        )
        self._board = HubCheckBoard(Path(spec.hub_checks_file)) if spec.hub_checks_file else None
        self._delivered: DeliveredIndex | None = None
        self._next: str | None = None  # the folder of the item pytest runs after this one
        self._after_next: str | None = None  # and of the one after that, when it is known
        self._started: dict[str, Callable[[], CheckResult]] = {}  # checks begun ahead
        # Versions read two items ahead, their tests.yaml sent to the evaluating process to
        # read (`PolicyChecker.read_ahead`) while this one reports and checks the two before.
        self._reading: dict[str, tuple[PolicyFiles, ReadAhead | None]] = {}
        self._positions: dict[int, int] | None = None  # id(item) -> its index in session.items
        self._stack = ExitStack()

    # -- what this process needs, made on first use -------------------------------------------

    @property
    def checker(self) -> PolicyChecker:
        if self._checker is None:
            # The controller has refused a file that is no JSON Schema: not checked again.
            schemas = load_resource_schemas(self.source, checked=True)
            self._checker = load_checker(self.spec.rules_dir, self.spec.checks, schemas)
        return self._checker

    @property
    def client(self) -> HubClient:
        if self._client is None:
            assert self.spec.hub_url is not None
            policy = RetryPolicy().with_limits(self.spec.limits)
            self._client = HubClient(
                self.spec.hub_url,
                self._token,
                policy,
                self.spec.ca_bundle,
                hub_down=self._outage.known if self._outage is not None else None,
            )
            self._stack.callback(self._client.close)
        return self._client

    @property
    def source(self) -> WorkingTreeSource | CommitSource:
        if self._source is None:
            plan = self.spec.plan
            if self.spec.release and plan is not None:
                source = CommitSource(self.root, plan.release_sha, plan.to_deliver)
                source.prefetch(plan.to_deliver)
                self._source = source
            else:
                self._source = WorkingTreeSource(self.root)
        return self._source

    @property
    def delivered(self) -> DeliveredIndex:
        """Author mode: what the state records as delivered (the controller checked it parses)."""
        if self._delivered is None:
            state_dir = self.spec.state_dir
            self._delivered = (
                StateDir(Path(state_dir)).read_delivered() if state_dir else DeliveredIndex()
            )
        return self._delivered

    def close(self) -> None:
        self._stack.close()

    # -- the items' side (items.Runner) ---------------------------------------------------------

    def selected(self) -> list[str]:
        if self._folders is None:
            self._folders = discover_version_folders(self.root)
        return self._folders

    def read(self, folder: str) -> PolicyFiles:
        return self.source.read(folder)

    def run_item(self, folder: str) -> ItemOutcome:
        plan = self.spec.plan
        if not self.spec.release or plan is None:
            started = self._started.pop(folder, None)
            result = (started or self._start(folder))()
            with self.checker.together():  # the two requests below wake the child once
                if self._next is not None and self._next not in self._started:
                    # The next version's checks, its test cases sent to the evaluating process,
                    # which runs them while pytest reports this one.
                    self._started[self._next] = self._start(self._next)
                after = self._after_next
                if after and after not in self._started and after not in self._reading:
                    files = self.source.read(after)
                    self._reading[after] = (files, self.checker.read_ahead(files))
            return check_only(result, self.delivered.get(result.name, result.version))
        result = self.checker.check(self.source.read(folder))
        return deliver_version(
            result,
            self.client,
            plan.release_sha,
            self.spec.auth_problem,
            dry_run=self.spec.dry_run,
            hub_check=self._hub_check(folder),
            outage=self._outage,
            token_refused=self._refused,
        )

    def _start(self, folder: str) -> Callable[[], CheckResult]:
        """The checks of `folder` begun, with its tests.yaml as read ahead if it was."""
        read = self._reading.pop(folder, None)
        if read is None:
            return self.checker.start(self.source.read(folder))
        return self.checker.start(*read)

    def _hub_check(self, folder: str) -> HubAnswer | Future[HubAnswer] | None:
        """The hub check of `folder` already sent by the controller, or started by this process
        during the previous item; None when the item must send it itself."""
        started = self._prefetch.take(folder) if self._prefetch else None
        sent = self._board.take(folder) if self._board else None
        return sent or started

    # -- collection ----------------------------------------------------------------------------

    def pytest_ignore_collect(self, collection_path: Path) -> bool | None:
        # A release runs policy items only, never the repository's other tests.
        if not self.spec.release:
            return None
        policies = self.root / POLICIES_DIR
        inside = collection_path in (self.root, policies) or policies in collection_path.parents
        return None if inside else True

    def pytest_collect_directory(
        self, path: Path, parent: pytest.Collector
    ) -> pytest.Collector | None:
        if path == self.root / POLICIES_DIR:
            return PolicyTree.from_parent(parent, path=path, runner=self)
        return None

    # -- running -------------------------------------------------------------------------------

    def pytest_collection(self, session: pytest.Session) -> None:
        # The controller of an xdist run (its "dsession") runs no item, so it evaluates
        # nothing: a child of its own would only take a core from the workers while they start.
        if session.config.pluginmanager.has_plugin("dsession"):
            return
        if self.spec.plan is None or self.spec.plan.to_deliver:
            start_evaluating(self.spec.checks)  # importing the engine overlaps collection

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        self._next = _version_folder(nextitem)
        self._after_next = None
        if not self.spec.release and not hasattr(item.config, "workerinput"):
            # In one process the items run in session.items' order; an xdist worker is handed
            # its items as it goes, so it knows only the next one.
            self._after_next = _version_folder(self._following(item.session, nextitem))
        # Overlap the next version's hub check with this one's validation and POST.
        plan = self.spec.plan
        if not self.spec.release or plan is None or not isinstance(nextitem, PolicyItem):
            return
        if self.spec.auth_problem or (self._outage is not None and self._outage.known()):
            return
        if self._board is not None and self._board.has(nextitem.folder):
            return
        if self._prefetch is None:
            self._prefetch = HubCheckPrefetch(self.client, plan)
            self._stack.callback(self._prefetch.close)
        self._prefetch.start(nextitem.folder)

    def _following(self, session: pytest.Session, item: pytest.Item | None) -> pytest.Item | None:
        """The item after `item` in `session.items`."""
        if item is None:
            return None
        if self._positions is None:
            self._positions = {id(each): index for index, each in enumerate(session.items)}
        index = self._positions.get(id(item))
        if index is None or index + 1 >= len(session.items):
            return None
        return session.items[index + 1]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        report = outcome.get_result()
        if isinstance(item, PolicyItem) and call.when == "call" and item.outcome is not None:
            setattr(report, REPORT_ATTR, item.outcome.to_json())

    @pytest.hookimpl(optionalhook=True)
    def pytest_json_runtest_metadata(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> dict[str, Any]:
        if isinstance(item, PolicyItem) and call.when == "call":
            return dict(item.user_properties)
        return {}

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.close()


def _version_folder(item: pytest.Item | None) -> str | None:
    """The version folder `item` checks; None for another item, or a policy folder without
    versions (which is not checked)."""
    if not isinstance(item, PolicyItem) or item.folder.count("/") < 2:
        return None
    return item.folder
