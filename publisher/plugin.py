"""The pytest plugin: maps pytest's lifecycle onto the release engine.

Hooks are in lifecycle order. The controller (or the only process, without xdist) decides what to
collect and finalizes state; xdist workers receive that decision through `workerinput` and only run
items. Inert in a directory without `policies/`.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from policy_checks import PolicyChecker, RulesError
from publisher import gitrepo
from publisher.gitrepo import POLICIES_DIR, ConfigurationError, GitError
from publisher.hubclient import TLS_UNTRUSTED, HubClient, HubConfigError, RetryPolicy, check_hub_url
from publisher.items import HARNESS_PLUGIN, PolicyItem, PolicyTree
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
    repair_rootdir,
    resolve_options,
    resolve_token,
)
from publisher.release import (
    ALREADY_IN_HUB,
    PUBLISHED,
    VALID,
    WOULD_PUBLISH,
    HubCheckPrefetch,
    HubOutage,
    ItemOutcome,
    ReleasePlan,
    check_only,
    deliver_version,
    make_plan,
    plan_is_complete,
    unreachable_reason,
)
from publisher.shard import (
    Fragment,
    FragmentError,
    FragmentOutcome,
    merge_fragments,
    restrict_plan,
    write_fragment,
)
from publisher.state import (
    DeliveredIndex,
    StateDir,
    StateError,
    os_reason,
    parse_baseline,
    release_lock_path,
)
from publisher.statesync import StateSyncError, commit_and_push
from publisher.summary import ReleaseReport, annotations, render_markdown, render_terminal

WORKERINPUT_KEY = "policyhub"
REPORT_ATTR = "policyhub"  # the item's outcome, shipped by xdist on the test report


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    repair_rootdir(early_config, args)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    root = config.rootpath
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        data = workerinput.get(WORKERINPUT_KEY)
        if data is not None:
            config.pluginmanager.register(Harness.for_worker(config, root, data), HARNESS_PLUGIN)
        return
    if not (root / POLICIES_DIR).is_dir():
        if config.option.release or config.option.changed_since:
            raise UsageError(f"no {POLICIES_DIR}/ folder in {root}: nothing to validate or release")
        return
    harness = Harness.for_controller(config, root)
    config.pluginmanager.register(harness, HARNESS_PLUGIN)
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
        self.ca_bundle: str | None = None
        self.limits: dict[str, float] = {}
        self.outage: HubOutage | None = None  # shared by all processes of a release run
        self.collect_only = bool(config.option.collectonly)

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
        harness._token = data.get("token") or resolve_token(os.environ)
        harness.ca_bundle = data.get("ca_bundle")
        harness.limits = data.get("limits") or {}
        harness.outage = HubOutage(Path(data["outage"])) if data.get("outage") else None
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
            self.ca_bundle = opts.ca_bundle
        self.limits = dict(opts.limits)
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
            # A shard only reads the state (written atomically) and writes its own fragment, so
            # shards may run side by side in one checkout; a dry run or --collect-only writes
            # nothing at all, so it neither locks nor probes.
            if opts.shard is None and not self.writes_nothing:
                self._stack.enter_context(
                    self.state.locked(release_lock_path(gitrepo.git_dir(self.root), opts.state_dir))
                )
                self.state.check_writable()
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
        if self.collect_only:
            return
        if local:
            self._start_local_hub()
        outage_dir = tempfile.mkdtemp(prefix="policyhub-run-")
        self._stack.callback(shutil.rmtree, outage_dir, ignore_errors=True)
        self.outage = HubOutage(Path(outage_dir) / "hub-unreachable")
        # Only a well-formed name and version may reach a URL path, even for this probe.
        probe = next((f for f in self.plan.to_deliver if self.plan.sendable(f)), None)
        if probe is not None:
            self._preflight(probe)

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

    @property
    def writes_nothing(self) -> bool:
        return self.dry_run or self.collect_only

    def _preflight(self, folder: str) -> None:
        """One authenticated request up front: a bad token, an untrusted certificate or a dead
        hub is one clear line, not N failures."""
        name, version = folder_identity(folder)
        answer = self.client.get_policy(name, version)
        if answer.unreachable:
            assert self.outage is not None and self.hub_url is not None
            why = unreachable_reason(self.hub_url, answer)
            if answer.error and answer.error.startswith(TLS_UNTRUSTED):
                why += (
                    "; pass the CA certificates that signed it with --hub-ca-bundle PATH "
                    "(or ini policy_hub_ca_bundle, REQUESTS_CA_BUNDLE, SSL_CERT_FILE)"
                )
            self.outage.mark(why)
            self._write_line(f"policy-hub: ERROR: {why}; no version is attempted")
            return
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
            policy = dataclasses.replace(RetryPolicy(), **self.limits)
            self._client = HubClient(self.hub_url, self._token, policy, self.ca_bundle)
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
            outage=self.outage,
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        # Overlap the next version's hub check with this one's validation and POST.
        down = self.outage is not None and self.outage.known()
        if self.release and not (self.auth_problem or down) and isinstance(nextitem, PolicyItem):
            if self.prefetch is None:
                self.prefetch = HubCheckPrefetch(self.client, self.plan)
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
            "ca_bundle": self.ca_bundle,
            "limits": self.limits,
            "outage": str(self.outage.path) if self.outage else None,
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
            setattr(report, REPORT_ATTR, item.outcome.to_json())

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
            out = ItemOutcome.from_json(data)
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
            self.opts
            and self.opts.finalize
            and self.report
            and (self.report.failed or self.report.not_run)
        )
        if (self.sync_failed or finalize_failed) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _finalize(self) -> None:
        """Merge this run's deliveries; advance the baseline iff the change set is delivered."""
        assert self.plan is not None and self.opts is not None
        self.report = ReleaseReport(self.plan, self.outcomes, dry_run=self.writes_nothing)
        self.report.notes.extend(self.scale_out_notes)
        if self.opts.finalize:
            self.report.not_run_reason = "no fragment reports it (shard failed or fragment missing)"
        if self.opts.shard is not None:
            self.report.shard = str(self.opts.shard)
        if self.outage is not None and (down := self.outage.known()):
            self.report.notes.append(
                f"HUB UNREACHABLE: {down}; the versions not attempted are "
                "retried by the next release"
            )
        if self.writes_nothing or self.state is None:
            return
        if self.opts.shard is not None:
            self._write_fragment()
            return
        try:
            self._record_state(self.state, self.report)
        except (OSError, StateError) as exc:
            self._state_write_failed(exc)
            return
        if self.opts.commit_state:
            try:
                notes = commit_and_push(self.root, self.state, self.plan, push=self.opts.push)
            except (StateSyncError, GitError) as exc:
                self.sync_failed = True
                notes = [f"ERROR: state not committed/pushed: {exc}"]
            self.report.notes.extend(notes)

    def _record_state(self, state: StateDir, report: ReleaseReport) -> None:
        """Merge this run's deliveries into delivered.json; advance the baseline by the rule."""
        assert self.plan is not None
        current = state.read_delivered()
        merged = DeliveredIndex(current)
        for out in self.outcomes.values():
            if out.delivery is not None:
                merged.add(out.delivery)
        if len(merged) != len(current):
            state.write_delivered(merged)
            report.state_written = True
        # With a valid baseline and no policy change since, the baseline stays: it is as good
        # as the release commit, and rewriting it would make every run a new state commit.
        unchanged = self.plan.baseline_sha is not None and not self.plan.change_set
        recorded = parse_baseline(state.read_baseline_text() or "")
        if not gitrepo.moves_forward(self.root, recorded, self.plan.release_sha):
            report.notes.append(
                f"baseline stays at {recorded[:12] if recorded else '?'}: the release commit is "
                "older than it, and the baseline only moves forward"
            )
        elif plan_is_complete(self.plan, merged) and not unchanged:
            if recorded != self.plan.release_sha:
                state.write_baseline(self.plan.release_sha)
                report.state_written = True
            report.baseline_advanced = True

    def _state_write_failed(self, exc: OSError | StateError) -> None:
        """A state write failed after publishing: say what the hub got that the state lacks."""
        assert self.report is not None and self.state is not None
        self.sync_failed = True
        why = os_reason(exc) if isinstance(exc, OSError) else str(exc)
        made = sorted(
            f"{o.name}@{o.version}" for o in self.outcomes.values() if o.delivery is not None
        )
        self.report.notes.append(
            f"ERROR: the state in {self.state.display} could not be written ({why}); "
            "the baseline stays"
        )
        if made and not self.report.state_written:
            self.report.notes.append(
                f"DELIVERED BUT NOT RECORDED ({len(made)}): {', '.join(made)}; they are in the "
                "hub, and the next release finds them there and records them"
            )

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
