"""`Controller`: the xdist controller, or the only process without xdist. It decides the run once
(options, the plan, the state lock, the embedded hub, the preflight) as a `RunSpec`, collects every
item's outcome from the reports, and ends the run: the state written by `finalize.finalize_release`,
a shard's fragment, the state commit and push, the exit status. It never runs an item itself;
`publisher/plugin/worker.py` does, here and on every worker.
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

import pytest

from policy_checks import PolicyChecker
from publisher.hub.client import (
    TLS_UNTRUSTED,
    HubAnswer,
    HubClient,
    HubConfigError,
    RetryPolicy,
    check_hub_url,
)
from publisher.plugin.options import LOCAL_DIR, LOCAL_HUB, HarnessOptions, UsageError
from publisher.plugin.worker import REPORT_ATTR, load_checker
from publisher.release.baseline import finalize_release
from publisher.release.hubchecks import (
    BOARD_FILE,
    HubCheckBoard,
    HubChecksAhead,
    HubOutage,
    unreachable_reason,
)
from publisher.release.outcome import ItemOutcome
from publisher.release.plan import ReleasePlan, make_plan
from publisher.release.runspec import RunSpec
from publisher.release.shard import (
    Fragment,
    FragmentError,
    FragmentOutcome,
    merge_fragments,
    restrict_plan,
    write_fragment,
)
from publisher.release.summary import ReleasePreview, ReleaseReport
from publisher.repo import git as gitrepo
from publisher.repo.git import POLICIES_DIR, ConfigurationError, GitError
from publisher.repo.layout import changed_version_folders, folder_identity
from publisher.state.folder import (
    DeliveredIndex,
    StateDir,
    StateError,
    os_reason,
    parse_baseline,
    release_lock_path,
)
from publisher.state.push import StateSyncError, commit_and_push

CONTROLLER_PLUGIN = "policyhub-controller"


class Controller:
    """Registered as a plugin object on the controller only."""

    def __init__(self, config: pytest.Config, root: Path, opts: HarnessOptions) -> None:
        self.config = config
        self.root = root
        self.opts = opts
        self.collect_only = bool(config.option.collectonly)
        self.token: str | None = None  # for this process's runner; never on the RunSpec
        self.checker: PolicyChecker | None = None
        self.plan: ReleasePlan | None = None
        self.spec = RunSpec()
        self.state: StateDir | None = None
        self.outage: HubOutage | None = None
        self.outcomes: dict[str, ItemOutcome] = {}
        self.report: ReleaseReport | None = None
        self.preview: ReleasePreview | None = None  # author mode with --changed-since
        self.delivered = DeliveredIndex()  # the state's delivered.json, read once per run
        self.scale_out_notes: list[str] = []  # what --finalize merged, or what is missing
        self.sync_failed = False
        self.ahead: HubChecksAhead | None = None  # the hub checks sent while workers start
        self._stack = ExitStack()

    @property
    def writes_nothing(self) -> bool:
        return self.opts.dry_run or self.collect_only

    def close(self) -> None:
        self._stack.close()

    # -- deciding the run --------------------------------------------------------------------

    def prepare(self) -> RunSpec:
        """Refuse bad options (exit 4), then decide what this run collects and how."""
        opts = self.opts
        if opts.release and opts.hub_url is None and opts.in_ci:
            # Before anything is read: no state, no rules, no git.
            raise UsageError(
                "--release needs a Policy Hub: set POLICY_HUB_URL "
                "(or --hub-url / ini policy_hub_url); "
                "with CI set, the embedded local hub is never used implicitly"
            )
        rules_dir = str(opts.rules_dir) if opts.rules_dir.is_dir() else None
        # A broken rules file is a usage error, now.
        self.checker = load_checker(rules_dir, opts.checks)
        if opts.release:
            self._prepare_release(rules_dir)
            return self.spec
        # Author mode guards immutability offline, from delivered.json (read here once, so a
        # corrupt file is one usage error, not a failure per item).
        try:
            self.delivered = StateDir(
                opts.state_dir, self._display(opts.state_dir)
            ).read_delivered()
        except StateError as exc:
            raise UsageError(str(exc)) from None
        folders = self._changed_since(opts.changed_since) if opts.changed_since else None
        self.spec = RunSpec(
            rules_dir=rules_dir,
            checks=opts.checks,
            state_dir=str(opts.state_dir),
            folders=folders,
        )
        return self.spec

    def _prepare_release(self, rules_dir: str | None) -> None:
        opts = self.opts
        local = opts.hub_url in (None, LOCAL_HUB)
        if local and opts.commit_state:
            raise UsageError(
                "--commit-state/--push commit the tracked state; the embedded local hub keeps its "
                f"own state in {LOCAL_DIR}/ (git-ignored): name a real hub with --hub-url"
            )
        hub_url = None
        if not local:
            try:
                hub_url = check_hub_url(opts.hub_url or "", opts.allow_insecure_hub)
            except HubConfigError as exc:
                raise UsageError(str(exc)) from None
            self.token = opts.token
        else:
            why = "no hub URL configured" if opts.hub_url is None else "--hub-url local"
            self._write_line(
                f"policy-hub: {why}: releasing to the embedded local hub "
                f"({LOCAL_DIR}/hub.sqlite3, state in {self._display(opts.state_dir)})"
            )
        self.plan = self._plan()
        if self.plan.baseline_warning:
            self._write_line(f"policy-hub: warning: {self.plan.baseline_warning}")
        if opts.finalize:
            self._merge_fragments()
            self.spec = RunSpec(
                release=True, folders=[], rules_dir=rules_dir, checks=opts.checks, plan=self.plan
            )
            return
        if opts.shard is not None:
            self.plan = restrict_plan(self.plan, opts.shard)
        spec = RunSpec(
            release=True,
            dry_run=opts.dry_run,
            folders=list(self.plan.to_deliver),
            rules_dir=rules_dir,
            checks=opts.checks,
            plan=self.plan,
            ca_bundle=None if local else opts.ca_bundle,
            limits=dict(opts.limits),
        )
        if self.collect_only:
            self.spec = spec
            return
        local_token = None
        if local:
            hub_url, local_token = self._start_local_hub()
            self.token = local_token
        run_dir = Path(tempfile.mkdtemp(prefix="policyhub-run-"))
        self._stack.callback(shutil.rmtree, run_dir, ignore_errors=True)
        self.outage = HubOutage(run_dir / "hub-unreachable")
        board = HubCheckBoard(run_dir / BOARD_FILE)
        self.spec = spec = dataclasses.replace(
            spec,
            hub_url=hub_url,
            outage_file=str(self.outage.path),
            hub_checks_file=str(board.path),
            local_token=local_token,
        )
        # Only a well-formed name and version may reach a URL path, even for this probe.
        sendable = [f for f in self.plan.to_deliver if self.plan.sendable(f)]
        if not sendable or hub_url is None:
            return
        client = HubClient(
            hub_url, self.token, RetryPolicy().with_limits(spec.limits), spec.ca_bundle
        )
        self._stack.callback(client.close)
        probe, *rest = sendable
        answer = client.get_policy(*folder_identity(probe))
        auth_problem = self._preflight(spec, answer)
        if auth_problem:
            self.spec = dataclasses.replace(spec, auth_problem=auth_problem)
        elif not self.outage.known():
            # The probe was the hub check of its version; the others are sent while the
            # workers start (a subset run asks only for what its items need, by itself).
            board.post(probe, answer)
            if rest and self._selects_every_version():
                self.ahead = HubChecksAhead(board, client, self.outage)
                self._stack.callback(self.ahead.close)
                self.ahead.send(rest)

    def _plan(self) -> ReleasePlan:
        """Lock and probe the state (unless nothing is written), read it, make the plan."""
        opts = self.opts
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
                lock = release_lock_path(gitrepo.git_dir(self.root), opts.state_dir)
                self._stack.enter_context(self.state.locked(lock))
                self.state.check_writable()
            delivered = self.delivered = self.state.read_delivered()
            baseline_text = self.state.read_baseline_text()
            baseline = parse_baseline(baseline_text) if baseline_text is not None else None
            return make_plan(self.root, release_sha, baseline_text, baseline, delivered)
        except (StateError, ConfigurationError, GitError) as exc:
            raise UsageError(str(exc)) from None

    def _merge_fragments(self) -> None:
        """--finalize: the shards' outcomes become this run's; no item is collected."""
        assert self.plan is not None
        paths = [(path, self._display(path)) for path in self.opts.finalize]
        try:
            merged = merge_fragments(paths, self.plan)
        except FragmentError as exc:
            raise UsageError(str(exc)) from None
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

    def _start_local_hub(self) -> tuple[str, str]:
        try:
            from policy_hub.embedded import start_embedded_hub
        except ImportError as exc:
            raise UsageError(
                f"the embedded local hub needs the hub extra: "
                f"pip install 'policy-release-harness[hub]' ({exc})"
            ) from None
        token = secrets.token_urlsafe(32)
        db = self.root / LOCAL_DIR / "hub.sqlite3"
        db.parent.mkdir(parents=True, exist_ok=True)
        hub = start_embedded_hub(db, token)
        self._stack.callback(hub.stop)
        return hub.url, token

    def _preflight(self, spec: RunSpec, answer: HubAnswer) -> str | None:
        """The first hub check, sent up front: a refused token, an untrusted certificate or a
        dead hub is one clear line, not N failures. Returns the token problem, if any."""
        assert spec.hub_url is not None and self.outage is not None
        if answer.unreachable:
            why = unreachable_reason(spec.hub_url, answer)
            if answer.error and answer.error.startswith(TLS_UNTRUSTED):
                why += (
                    "; pass the CA certificates that signed it with --hub-ca-bundle PATH "
                    "(or ini policy_hub_ca_bundle, REQUESTS_CA_BUNDLE, SSL_CERT_FILE)"
                )
            self.outage.mark(why)
            self._write_line(f"policy-hub: ERROR: {why}; no version is attempted")
            return None
        if answer.status in (401, 403) and not self.token:
            problem = (
                f"not attempted: POLICY_HUB_TOKEN is not set, and the hub at {spec.hub_url} "
                f"asks for one (HTTP {answer.status}); set it (in GitHub Actions: a repository "
                "secret passed as env POLICY_HUB_TOKEN)"
            )
            self._write_line(f"policy-hub: ERROR: {problem}")
            return problem
        if answer.status in (401, 403):
            problem = (
                f"not attempted: the hub at {spec.hub_url} refused the token "
                f"(HTTP {answer.status}); "
                "check POLICY_HUB_TOKEN and that it has read and write access"
            )
            self._write_line(f"policy-hub: ERROR: {problem}")
            return problem
        return None

    def _selects_every_version(self) -> bool:
        """Whether this run's items are all the versions to deliver (no `-k`, `-m`, `--lf`,
        `--sw`, `--deselect`, `--ignore` or paths that pick a subset), so hub checks sent for
        all of them are all used."""
        option = self.config.option
        narrowed = (
            option.keyword
            or option.markexpr
            or getattr(option, "lf", False)
            or getattr(option, "stepwise", False)
            or getattr(option, "deselect", None)
            or getattr(option, "ignore", None)
            or getattr(option, "ignore_glob", None)
        )
        given_paths = self.config.args_source == pytest.Config.ArgsSource.ARGS
        return not narrowed and not given_paths

    def _changed_since(self, ref: str) -> list[str]:
        try:
            return changed_version_folders(self.root, ref)
        except GitError as exc:
            raise UsageError(f"--changed-since {ref}: {exc}") from None

    # -- outcomes ------------------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, REPORT_ATTR, None)
        if data is not None:
            out = ItemOutcome.from_json(data)
            self.outcomes[out.folder] = out
            if self.ahead is not None:
                self.ahead.reported(out.folder)

    # -- ending the run ------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        opts = self.opts
        if self.ahead is not None:
            self.ahead.close()  # every item has run: no hub check is needed any more
        if opts.release and self.plan is not None:
            self._finalize(self.plan)
        elif opts.changed_since:
            self.preview = ReleasePreview.of(self.outcomes.values(), self.delivered)
        nothing_to_do = self.spec.folders == []
        if (
            exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED
            and nothing_to_do
            and (opts.release or opts.changed_since)
        ):
            session.exitstatus = pytest.ExitCode.OK
        # After the "nothing collected" rule: a --finalize run collects nothing by design, and
        # its failures are the shards' versions that no fragment reports as delivered.
        report = self.report
        finalize_failed = bool(opts.finalize and report and (report.failed or report.not_run))
        if (self.sync_failed or finalize_failed) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _finalize(self, plan: ReleasePlan) -> None:
        """The summary's report; the state (or a shard's fragment) when anything is written."""
        opts = self.opts
        report = self.report = ReleaseReport(plan, self.outcomes, dry_run=self.writes_nothing)
        report.notes.extend(self.scale_out_notes)
        if opts.finalize:
            report.not_run_reason = "no fragment reports it (shard failed or fragment missing)"
        if opts.shard is not None:
            report.shard = str(opts.shard)
        if self.outage is not None and (down := self.outage.known()):
            report.notes.append(
                f"HUB UNREACHABLE: {down}; the versions not attempted are retried by the "
                "next release"
            )
        if self.writes_nothing or self.state is None:
            return
        if opts.shard is not None:
            self._write_fragment(plan, report)
            return
        try:
            self._record_state(plan, self.state, report)
        except (OSError, StateError) as exc:
            self._state_write_failed(exc, self.state, report)
            return
        if opts.commit_state:
            try:
                notes = commit_and_push(self.root, self.state, plan.release_sha, push=opts.push)
            except (StateSyncError, GitError) as exc:
                self.sync_failed = True
                notes = [f"ERROR: state not committed/pushed: {exc}"]
            report.notes.extend(notes)

    def _record_state(self, plan: ReleasePlan, state: StateDir, report: ReleaseReport) -> None:
        """Read the state, let `finalize_release` decide, write what it decided."""
        recorded_baseline = parse_baseline(state.read_baseline_text() or "")
        done = finalize_release(
            plan,
            # As read for the plan: the release lock kept every other run from writing since.
            self.delivered,
            (out.delivery for out in self.outcomes.values() if out.delivery is not None),
            release_is_older=not gitrepo.moves_forward(
                self.root, recorded_baseline, plan.release_sha
            ),
        )
        if done.added:
            state.write_delivered(done.delivered)
            report.state_written = True
        if done.baseline.advance and recorded_baseline != plan.release_sha:
            state.write_baseline(plan.release_sha)
        report.baseline = done.baseline

    def _state_write_failed(
        self, exc: OSError | StateError, state: StateDir, report: ReleaseReport
    ) -> None:
        """A state write failed after publishing: say what the hub got that the state lacks."""
        self.sync_failed = True
        why = os_reason(exc) if isinstance(exc, OSError) else str(exc)
        report.notes.append(
            f"ERROR: the state in {state.display} could not be written ({why}); the baseline stays"
        )
        made = sorted(
            f"{o.name}@{o.version}" for o in self.outcomes.values() if o.delivery is not None
        )
        if made and not report.state_written:
            report.notes.append(
                f"DELIVERED BUT NOT RECORDED ({len(made)}): {', '.join(made)}; they are in the "
                "hub, and the next release finds them there and records them"
            )

    def _write_fragment(self, plan: ReleasePlan, report: ReleaseReport) -> None:
        """--shard: this run's deliveries go to a fragment; the state is the finalize run's."""
        opts = self.opts
        assert opts.shard is not None and opts.fragment_out is not None
        ran = [self.outcomes[f] for f in plan.to_deliver if f in self.outcomes]
        fragment = Fragment(
            release_sha=plan.release_sha,
            shard=opts.shard,
            change_set=list(plan.change_set),
            share=list(plan.to_deliver),
            deliveries=DeliveredIndex(o.delivery for o in ran if o.delivery is not None),
            outcomes=[
                FragmentOutcome(o.folder, o.name, o.version, o.outcome, o.reason, o.digest)
                for o in ran
            ],
        )
        shown = self._display(opts.fragment_out)
        try:
            write_fragment(opts.fragment_out, fragment)
        except OSError as exc:
            self.sync_failed = True
            report.notes.append(f"ERROR: fragment not written to {shown}: {exc}")
            return
        report.fragment = shown

    # -- helpers -------------------------------------------------------------------------------

    def _display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def _write_line(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.close()
