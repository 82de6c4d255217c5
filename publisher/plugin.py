"""The pytest plugin: maps pytest's lifecycle onto the release engine.

Hooks are in lifecycle order. The controller (or the only process, without xdist) decides what to
collect and finalizes state; xdist workers receive that decision through `workerinput` and only run
items. Inert in a directory without `policies/`.
"""

from __future__ import annotations

import json
import os
import secrets
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from policy_checks import NAME_RE, SEMVER_RE, Finding, PolicyChecker, RulesError
from publisher import gitrepo
from publisher.gitrepo import POLICIES_DIR, ConfigurationError, GitError
from publisher.hubclient import HubClient, HubConfigError, check_hub_url
from publisher.layout import (
    CommitSource,
    WorkingTreeSource,
    discover_version_folders,
    folder_identity,
)
from publisher.options import (
    LOCAL_DIR,
    LOCAL_HUB,
    HarnessOptions,
    UsageError,
    add_options,
    resolve_options,
)
from publisher.release import (
    ALREADY_IN_HUB,
    INVALID,
    PUBLISHED,
    VALID,
    WOULD_PUBLISH,
    HubCheckPrefetch,
    ItemOutcome,
    ReleasePlan,
    check_only,
    deliver_version,
    make_plan,
    plan_is_complete,
)
from publisher.shard import (
    Fragment,
    FragmentError,
    FragmentOutcome,
    merge_fragments,
    restrict_plan,
    write_fragment,
)
from publisher.state import DeliveredIndex, DeliveryRecord, StateDir, StateError, parse_baseline
from publisher.statesync import StateSyncError, commit_and_push
from publisher.summary import ReleaseReport, annotations, render_markdown, render_terminal

WORKERINPUT_KEY = "policyhub"
REPORT_ATTR = "policyhub"  # the item's outcome, shipped by xdist on the test report


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    root = config.rootpath
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        data = workerinput.get(WORKERINPUT_KEY)
        if data is not None:
            config.pluginmanager.register(
                Harness.for_worker(config, root, data), "policyhub-harness"
            )
        return
    if not (root / POLICIES_DIR).is_dir():
        if config.option.release or config.option.changed_since:
            raise UsageError(f"no {POLICIES_DIR}/ folder in {root}: nothing to validate or release")
        return
    harness = Harness.for_controller(config, root)
    config.pluginmanager.register(harness, "policyhub-harness")
    try:
        harness.prepare()
    except BaseException:
        harness.close()
        raise


class Harness:
    """Everything one pytest process knows about this run; registered as a plugin object."""

    def __init__(self, config: pytest.Config, root: Path, opts: HarnessOptions | None) -> None:
        self.config = config
        self.root = root
        self.opts = opts
        self.is_controller = not hasattr(config, "workerinput")
        self.release = bool(opts and opts.release)
        self.dry_run = bool(opts and opts.dry_run)
        self.folders: list[str] | None = None  # None = discover from the working tree
        self.plan: ReleasePlan | None = None
        self.hub_url: str | None = None
        self.auth_problem: str | None = None
        self.rules_dir: Path | None = None
        self._token: str | None = None
        self._checker: PolicyChecker | None = None
        self._client: HubClient | None = None
        self._source: WorkingTreeSource | CommitSource | None = None
        self._stack = ExitStack()
        self.outcomes: dict[str, ItemOutcome] = {}
        self.report: ReleaseReport | None = None
        self.state: StateDir | None = None
        self.local_hub_note: str | None = None
        self.sync_failed = False
        self.prefetch: HubCheckPrefetch | None = None
        self.scale_out_notes: list[str] = []  # what --finalize merged, or what is missing

    # -- set-up ------------------------------------------------------------------------------

    @classmethod
    def for_controller(cls, config: pytest.Config, root: Path) -> Harness:
        return cls(config, root, resolve_options(config, root))

    @classmethod
    def for_worker(cls, config: pytest.Config, root: Path, data: dict[str, Any]) -> Harness:
        harness = cls(config, root, None)
        harness.release = data["release"]
        harness.dry_run = data["dry_run"]
        harness.folders = data["folders"]
        harness.plan = ReleasePlan.from_json(data["plan"]) if data.get("plan") else None
        harness.hub_url = data.get("hub_url")
        harness.auth_problem = data.get("auth_problem")
        harness.rules_dir = Path(data["rules_dir"]) if data.get("rules_dir") else None
        harness._token = data.get("token") or os.environ.get("POLICY_HUB_TOKEN") or None
        return harness

    def prepare(self) -> None:
        """Controller only: refuse bad options, then compute what this run collects."""
        opts = self.opts
        assert opts is not None
        if opts.release and opts.hub_url is None and opts.in_ci:
            # Before anything is read: no state, no rules, no git.
            raise UsageError(
                "--release needs a Policy Hub: set POLICY_HUB_URL "
                "(or --hub-url / ini policy_hub_url); "
                "with CI set, the embedded local hub is never used implicitly"
            )
        self.rules_dir = opts.rules_dir if opts.rules_dir.is_dir() else None
        self.checker  # noqa: B018 - a broken repository rules file is a usage error, now
        if opts.release:
            self._prepare_release(opts)
        elif opts.changed_since:
            self.folders = self._changed_since(opts.changed_since)

    def _prepare_release(self, opts: HarnessOptions) -> None:
        local = opts.hub_url in (None, LOCAL_HUB)
        if local and opts.commit_state:
            raise UsageError(
                "--commit-state/--push commit the tracked state; the embedded local hub keeps its "
                f"own state in {LOCAL_DIR}/ (git-ignored): name a real hub with --hub-url"
            )
        if not local:
            try:
                self.hub_url = check_hub_url(opts.hub_url or "", opts.allow_insecure_hub)
            except HubConfigError as exc:
                raise UsageError(str(exc)) from None
            self._token = opts.token
        if local:
            why = "no hub URL configured" if opts.hub_url is None else "--hub-url local"
            self.local_hub_note = (
                f"policy-hub: {why}: releasing to the embedded local hub "
                f"({LOCAL_DIR}/hub.sqlite3, state in {self._display(opts.state_dir)})"
            )
            self._write_line(self.local_hub_note)
        try:
            top = gitrepo.repo_toplevel(self.root)
            if top is not None and top.resolve() != self.root.resolve():
                raise ConfigurationError(
                    f"pytest's rootdir {self.root} is not the top of the git repository {top}; "
                    "run from the repository's top level, where policies/ and .state/ live"
                )
            if top is None:
                raise ConfigurationError(
                    f"{self.root} is not a git repository; --release needs git history"
                )
            release_sha = gitrepo.resolve_commit(self.root, opts.release_ref)
            self.state = StateDir(opts.state_dir, self._display(opts.state_dir))
            if opts.shard is None:
                # A shard only reads the state (written atomically) and writes its own
                # fragment, so shards may run side by side in one checkout.
                self._stack.enter_context(self.state.locked())
            delivered = self.state.read_delivered()
            baseline_text = self.state.read_baseline_text()
            baseline = parse_baseline(baseline_text) if baseline_text is not None else None
            self.plan = make_plan(
                self.root, release_sha, baseline_text, baseline, delivered, self.checker
            )
        except (StateError, ConfigurationError, GitError) as exc:
            raise UsageError(str(exc)) from None
        if self.plan.baseline_warning:
            self._write_line(f"policy-hub: warning: {self.plan.baseline_warning}")
        if opts.finalize:
            self._merge_fragments(opts)
            return
        if opts.shard is not None:
            self.plan = restrict_plan(self.plan, opts.shard)
        self.folders = list(self.plan.to_deliver)
        if local:
            self._start_local_hub()
        # Only a well-formed name and version may reach a URL path, even for this probe.
        probe = next((f for f in self.plan.to_deliver if _well_formed(folder_identity(f))), None)
        if probe is not None:
            self._preflight_auth(probe)

    def _merge_fragments(self, opts: HarnessOptions) -> None:
        """--finalize: the shards' outcomes become this run's; no item is collected."""
        assert self.plan is not None
        paths = [(path, self._display(path)) for path in opts.finalize]
        try:
            merged = merge_fragments(paths, self.plan)
        except FragmentError as exc:
            raise UsageError(str(exc)) from None
        self.folders = []
        self.scale_out_notes = merged.notes()
        for line in self.scale_out_notes:
            self._write_line(f"policy-hub: {line}")
        for fo in merged.outcomes:
            record = merged.deliveries.get(fo.name, fo.version)
            self.outcomes[fo.folder] = ItemOutcome(
                fo.folder, fo.name, fo.version, fo.outcome, fo.reason, fo.digest, delivery=record
            )
        for record in merged.deliveries:
            folder = f"{POLICIES_DIR}/{record.name}/v{record.version}"
            if folder not in self.outcomes:
                self.outcomes[folder] = ItemOutcome(
                    folder,
                    record.name,
                    record.version,
                    record.outcome,
                    "",
                    record.digest,
                    delivery=record,
                )

    def _start_local_hub(self) -> None:
        try:
            from policy_hub.embedded import start_embedded_hub
        except ImportError as exc:
            raise UsageError(
                f"the embedded local hub needs the hub extra: "
                f"pip install 'policy-release-harness[hub]' ({exc})"
            ) from None
        self._token = secrets.token_urlsafe(32)
        db = self.root / LOCAL_DIR / "hub.sqlite3"
        db.parent.mkdir(parents=True, exist_ok=True)
        hub = start_embedded_hub(db, self._token)
        self._stack.callback(hub.stop)
        self.hub_url = hub.url

    def _preflight_auth(self, folder: str) -> None:
        """One authenticated request up front: a bad token is one clear message, not N failures."""
        name, version = folder_identity(folder)
        answer = self.client.get_policy(name, version)
        if answer.status in (401, 403):
            self.auth_problem = (
                f"not attempted: the hub at {self.hub_url} refused the token "
                f"(HTTP {answer.status}); "
                "check POLICY_HUB_TOKEN and that it has read and write access"
            )
            self._write_line(f"policy-hub: ERROR: {self.auth_problem}")

    def _changed_since(self, ref: str) -> list[str]:
        try:
            base = gitrepo.git(self.root, "merge-base", ref, "HEAD").strip()
            paths = gitrepo.git(
                self.root, "diff", "--no-renames", "--name-only", "-z", base, "--", POLICIES_DIR
            )
            untracked = gitrepo.git(
                self.root, "ls-files", "--others", "--exclude-standard", "-z", "--", POLICIES_DIR
            )
        except GitError as exc:
            raise UsageError(f"--changed-since {ref}: {exc}") from None
        touched = gitrepo.version_folders_of(p for p in (paths + untracked).split("\0") if p)
        existing = set(discover_version_folders(self.root))
        return [f for f in touched if f in existing]

    # -- helpers -----------------------------------------------------------------------------

    def _display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def _write_line(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)

    @property
    def checker(self) -> PolicyChecker:
        if self._checker is None:
            try:
                self._checker = PolicyChecker.load(self.rules_dir)
            except RulesError as exc:
                raise UsageError(str(exc)) from None
        return self._checker

    @property
    def client(self) -> HubClient:
        if self._client is None:
            assert self.hub_url is not None
            self._client = HubClient(self.hub_url, self._token)
            self._stack.callback(self._client.close)
        return self._client

    @property
    def source(self) -> WorkingTreeSource | CommitSource:
        if self._source is None:
            if self.release and self.plan is not None:
                source = CommitSource(self.root, self.plan.release_sha, self.plan.to_deliver)
                source.prefetch(self.plan.to_deliver)
                self._source = source
            else:
                self._source = WorkingTreeSource(self.root)
        return self._source

    def close(self) -> None:
        self._stack.close()

    def selected(self) -> list[str]:
        if self.folders is None:
            self.folders = discover_version_folders(self.root)
        return self.folders

    def run_item(self, folder: str) -> ItemOutcome:
        result = self.checker.check(self.source.read(folder))
        if not self.release:
            return check_only(result)
        assert self.plan is not None
        return deliver_version(
            result,
            self.client,
            self.plan.release_sha,
            self.auth_problem,
            dry_run=self.dry_run,
            hub_check=self.prefetch.take(folder) if self.prefetch else None,
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        # Overlap the next version's hub check with this one's validation and POST.
        if self.release and not self.auth_problem and isinstance(nextitem, PolicyItem):
            if self.prefetch is None:
                self.prefetch = HubCheckPrefetch(self.client)
                self._stack.callback(self.prefetch.close)
            self.prefetch.start(nextitem.folder)

    # -- xdist hand-over ---------------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[WORKERINPUT_KEY] = {
            "release": self.release,
            "dry_run": self.dry_run,
            "folders": self.folders,
            "plan": self.plan.to_json() if self.plan else None,
            "hub_url": self.hub_url,
            "auth_problem": self.auth_problem,
            "rules_dir": str(self.rules_dir) if self.rules_dir else None,
            # Only the embedded hub's throw-away token travels this way; a real one comes from
            # the environment the workers inherit.
            "token": self._token if self.opts and self.opts.hub_url in (None, LOCAL_HUB) else None,
        }

    # -- collection --------------------------------------------------------------------------

    def pytest_ignore_collect(self, collection_path: Path) -> bool | None:
        # A release runs policy items only, never the repository's other tests.
        if not self.release:
            return None
        policies = self.root / POLICIES_DIR
        inside = collection_path in (self.root, policies) or policies in collection_path.parents
        return None if inside else True

    def pytest_collect_directory(
        self, path: Path, parent: pytest.Collector
    ) -> pytest.Collector | None:
        if path == self.root / POLICIES_DIR:
            return PolicyTree.from_parent(parent, path=path, harness=self)
        return None

    # -- running -----------------------------------------------------------------------------

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        report = outcome.get_result()
        if isinstance(item, PolicyItem) and call.when == "call" and item.outcome is not None:
            setattr(report, REPORT_ATTR, _outcome_to_json(item.outcome))

    @pytest.hookimpl(optionalhook=True)
    def pytest_json_runtest_metadata(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> dict[str, Any]:
        if isinstance(item, PolicyItem) and call.when == "call":
            return dict(item.user_properties)
        return {}

    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        """Outcome words in progress lines: PUBLISHED, ALREADY-IN-HUB, INVALID, ..."""
        data = getattr(report, REPORT_ATTR, None)
        if data is None or report.when != "call" or data["outcome"] == VALID:
            return None
        if report.passed:
            letter = {PUBLISHED: "P", ALREADY_IN_HUB: "A", WOULD_PUBLISH: "W"}.get(
                data["outcome"], "."
            )
            return "passed", letter, (data["outcome"].upper(), {"green": True})
        return "failed", "F", (data["outcome"].upper(), {"red": True})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.is_controller:
            return
        data = getattr(report, REPORT_ATTR, None)
        if data is not None:
            out = _outcome_from_json(data)
            self.outcomes[out.folder] = out

    # -- finishing ---------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.is_controller:
            return
        if self.release and self.plan is not None:
            self._finalize()
        nothing_to_do = not self.selected()
        if (
            exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED
            and nothing_to_do
            and (self.release or (self.opts and self.opts.changed_since))
        ):
            session.exitstatus = pytest.ExitCode.OK
        # After the "nothing collected" rule: a --finalize run collects nothing by design, and
        # its failures are the shards' versions that no fragment reports as delivered.
        finalize_failed = bool(
            self.opts and self.opts.finalize and self.report and self.report.failed
        )
        if (self.sync_failed or finalize_failed) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _finalize(self) -> None:
        """Merge this run's deliveries; advance the baseline iff the change set is delivered."""
        assert self.plan is not None and self.opts is not None
        self.report = ReleaseReport(self.plan, self.outcomes, dry_run=self.dry_run)
        self.report.notes.extend(self.scale_out_notes)
        if self.opts.finalize:
            self.report.not_run_reason = "no fragment reports it (shard failed or fragment missing)"
        if self.opts.shard is not None:
            self.report.shard = str(self.opts.shard)
        if self.dry_run or self.state is None:
            return
        if self.opts.shard is not None:
            self._write_fragment()
            return
        current = self.state.read_delivered()
        merged = DeliveredIndex(current)
        for out in self.outcomes.values():
            if out.delivery is not None:
                merged.add(out.delivery)
        if len(merged) != len(current):
            self.state.write_delivered(merged)
            self.report.state_written = True
        # With a valid baseline and no policy change since, the baseline stays: it is as good
        # as the release commit, and rewriting it would make every run a new state commit.
        unchanged = self.plan.baseline_sha is not None and not self.plan.change_set
        recorded = parse_baseline(self.state.read_baseline_text() or "")
        if not gitrepo.moves_forward(self.root, recorded, self.plan.release_sha):
            self.report.notes.append(
                f"baseline stays at {recorded[:12] if recorded else '?'}: the release commit is "
                "older than it, and the baseline only moves forward"
            )
        elif plan_is_complete(self.plan, merged) and not unchanged:
            if recorded != self.plan.release_sha:
                self.state.write_baseline(self.plan.release_sha)
                self.report.state_written = True
            self.report.baseline_advanced = True
        if self.opts.commit_state:
            try:
                notes = commit_and_push(self.root, self.state, self.plan, push=self.opts.push)
            except (StateSyncError, GitError) as exc:
                self.sync_failed = True
                notes = [f"ERROR: state not committed/pushed: {exc}"]
            self.report.notes.extend(notes)

    def _write_fragment(self) -> None:
        """--shard: this run's deliveries go to a fragment; the state is the finalize run's."""
        assert self.plan is not None and self.opts is not None and self.report is not None
        assert self.opts.shard is not None and self.opts.fragment_out is not None
        ran = [self.outcomes[f] for f in self.plan.to_deliver if f in self.outcomes]
        fragment = Fragment(
            release_sha=self.plan.release_sha,
            shard=self.opts.shard,
            change_set=list(self.plan.change_set),
            share=list(self.plan.to_deliver),
            deliveries=DeliveredIndex(o.delivery for o in ran if o.delivery is not None),
            outcomes=[
                FragmentOutcome(o.folder, o.name, o.version, o.outcome, o.reason, o.digest)
                for o in ran
            ],
        )
        shown = self._display(self.opts.fragment_out)
        try:
            write_fragment(self.opts.fragment_out, fragment)
        except OSError as exc:
            self.sync_failed = True
            self.report.notes.append(f"ERROR: fragment not written to {shown}: {exc}")
            return
        self.report.fragment = shown

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.report is not None:
            self._write_report(terminalreporter, self.report)
        # Author mode annotates too (pull-request checks); a --finalize run does not repeat
        # what its shards already annotated.
        if os.environ.get("GITHUB_ACTIONS") and not (self.opts and self.opts.finalize):
            for line in annotations(self.outcomes.values()):
                terminalreporter.write_line(line)

    def _write_report(self, terminalreporter: Any, report: ReleaseReport) -> None:
        terminalreporter.section("policy hub release")
        for line in render_terminal(report):
            terminalreporter.write_line(line)
        summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_path:
            with open(summary_path, "a", encoding="utf-8") as handle:
                handle.write(render_markdown(report))

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.close()


def _well_formed(identity: tuple[str, str]) -> bool:
    name, version = identity
    return bool(NAME_RE.match(name) and SEMVER_RE.match(version))


def _outcome_to_json(out: ItemOutcome) -> dict[str, Any]:
    data = {
        "folder": out.folder,
        "name": out.name,
        "version": out.version,
        "outcome": out.outcome,
        "reason": out.reason,
        "digest": out.digest,
        "hub_digest": out.hub_digest,
        "get_status": out.get_status,
        "post_status": out.post_status,
        "findings": [asdict(f) for f in out.findings],
        "delivery": out.delivery.to_json() if out.delivery else None,
    }
    json.dumps(data)  # only plain JSON-like values may cross the xdist channel
    return data


def _outcome_from_json(data: dict[str, Any]) -> ItemOutcome:
    delivery = data.get("delivery")
    return ItemOutcome(
        folder=data["folder"],
        name=data["name"],
        version=data["version"],
        outcome=data["outcome"],
        reason=data["reason"],
        digest=data["digest"],
        hub_digest=data["hub_digest"],
        get_status=data["get_status"],
        post_status=data["post_status"],
        findings=[Finding(**f) for f in data["findings"]],
        delivery=DeliveryRecord.from_json(data["name"], data["version"], delivery)
        if delivery
        else None,
    )


# -- collectors and the item -------------------------------------------------------------------


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
        return self.config.pluginmanager.get_plugin("policyhub-harness")  # type: ignore[no-any-return]

    def runtest(self) -> None:
        if self.folder.count("/") == 1:
            name = self.folder.split("/")[1]
            out = ItemOutcome(self.folder, name, "", INVALID, "no version folder")
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
