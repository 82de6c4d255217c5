"""A run of the harness without pytest: chosen once from the options (`build_run`), as pytest-xdist
chooses a scheduler, then driven by the plugin's controller (`publisher/plugin/controller.py`):

    run = build_run(opts, root, ...)    # the mode: AuthorRun, ReleaseRun, ShardRun, FinalizeRun
    spec = run.prepare()                # what every process runs (the RunSpec); Refused: exit 4
    run.take(outcome)                   # each item's ItemOutcome, as its report arrives
    end = run.end()                     # the summary, the state (or a fragment), commit and push
    run.close()                         # the lock, the embedded hub, the hub checks sent ahead

Each mode says what it does at each step, so no step branches on the flags of another mode:

- `AuthorRun`: validation only (`pytest`, `pytest -k`), with the release preview when
  `--changed-since` names the change set; it reads `delivered.json` for the immutability guard.
- `ReleaseRun`: `--release` (and `--dry-run`, and `--collect-only`, which write nothing): the
  lock, the plan, the embedded hub or the configured one, the preflight, the state at the end.
- `ShardRun`: `--release --shard K/N`: its share of the plan, no lock, a fragment at the end.
- `FinalizeRun`: `--release --finalize FRAGMENT...`: no item; the fragments become the outcomes.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from policy_checks import (
    CheckSettings,
    PolicyChecker,
    ResourceSchemaError,
    ResourceSchemas,
    RulesError,
)
from publisher.hub.client import (
    TLS_UNTRUSTED,
    HubAnswer,
    HubClient,
    HubConfigError,
    RetryPolicy,
    TokenSource,
    check_hub_url,
)
from publisher.hub.embedded import LOCAL_DIR, LOCAL_HUB, start_local_hub
from publisher.hub.oidc import ExchangeRefused, OidcExchange
from publisher.printable import printable
from publisher.refused import Refused
from publisher.release.baseline import finalize_release
from publisher.release.changes import compare_with_delivered
from publisher.release.hubchecks import (
    BOARD_FILE,
    HubCheckBoard,
    HubChecksAhead,
    HubOutage,
    TokenRefused,
    unreachable_reason,
)
from publisher.release.outcome import ItemOutcome
from publisher.release.plan import ReleasePlan, make_plan
from publisher.release.runspec import RunSpec
from publisher.release.settings import HarnessOptions
from publisher.release.shard import (
    Fragment,
    FragmentError,
    merge_fragments,
    restrict_plan,
    write_fragment,
)
from publisher.release.summary import ReleasePreview, ReleaseReport
from publisher.repo import git as gitrepo
from publisher.repo.git import ConfigurationError, GitError
from publisher.repo.layout import (
    CommitSource,
    WorkingTreeSource,
    changed_version_folders,
    discover_version_folders,
    folder_identity,
    uncommitted_version_folders,
    version_folder,
)
from publisher.state.folder import (
    DeliveredIndex,
    StateDir,
    StateError,
    os_reason,
    parse_baseline,
    release_lock_path,
)
from publisher.state.push import StateSyncError, commit_and_push

WriteLine = Callable[[str], None]
UNCOMMITTED_NAMED = 10  # version folders named by the line about uncommitted work; then a count


def load_checker(
    rules_dir: str | None,
    settings: CheckSettings | None = None,
    resource_schemas: ResourceSchemas | None = None,
) -> PolicyChecker:
    """The checks with a repository's own rules; a broken rules file refuses the run."""
    try:
        rules = Path(rules_dir) if rules_dir else None
        return PolicyChecker.load(rules, settings, resource_schemas)
    except RulesError as exc:
        raise Refused(str(exc)) from None


def load_resource_schemas(
    source: WorkingTreeSource | CommitSource, *, checked: bool = False
) -> ResourceSchemas:
    """resource-schemas/ read from where the run reads its policies (the working tree, or the
    release commit); a file that is no usable schema refuses the run, as a broken rules file
    does."""
    try:
        return ResourceSchemas.load(source.resource_schema_files(), checked=checked)
    except ResourceSchemaError as exc:
        raise Refused(str(exc)) from None


@dataclass(frozen=True)
class RunEnd:
    """What the end of a run means for its exit status."""

    nothing_to_do: bool = False  # "no tests collected" is a success: nothing was there to run
    failed: bool = False  # a failure no item shows (the state not written, a shard missing)


class Run:
    """What every mode shares: the options, the checks, the outcomes as they arrive."""

    annotates = True  # `::error` annotations for the failures (a finalize run's shards did)

    def __init__(
        self,
        opts: HarnessOptions,
        root: Path,
        write_line: WriteLine,
        *,
        collect_only: bool = False,
        selects_every_version: bool = True,
    ) -> None:
        self.opts = opts
        self.root = root
        self.write_line = write_line
        self.collect_only = collect_only
        # No -k, -m, --lf, paths... that pick a subset: hub checks sent for all are all used.
        self.selects_every_version = selects_every_version
        # For this process's runner; never on the RunSpec. A TokenSource with trusted publishing.
        self.token: str | TokenSource | None = None
        self.checker: PolicyChecker | None = None
        self.resource_schemas: ResourceSchemas | None = None  # read by the mode, in `_decide`
        self.spec = RunSpec()
        self.plan: ReleasePlan | None = None
        self.outcomes: dict[str, ItemOutcome] = {}
        self.report: ReleaseReport | None = None
        self.preview: ReleasePreview | None = None
        self.delivered = DeliveredIndex()  # the state's delivered.json, read once per run
        self._stack = ExitStack()
        self._begin()

    def _begin(self) -> None:
        """What a mode keeps beyond these, set up as the run is made."""

    @property
    def rules_dir(self) -> str | None:
        return str(self.opts.rules_dir) if self.opts.rules_dir.is_dir() else None

    def prepare(self) -> RunSpec:
        """Refuse what cannot run (`Refused`), then decide what this run collects and how."""
        # A broken rules file is refused now, before any item.
        self.checker = load_checker(self.rules_dir, self.opts.checks)
        self.spec = self._decide()
        if self.resource_schemas is not None:
            self.checker = PolicyChecker(
                self.checker.rule_set, self.opts.checks, self.resource_schemas
            )
        return self.spec

    def _decide(self) -> RunSpec:
        raise NotImplementedError

    def count(self) -> int | None:
        """How many items this run will have, for `-n auto`, without writing or locking
        anything; None when unknown."""
        raise NotImplementedError

    def take(self, outcome: ItemOutcome) -> None:
        self.outcomes[outcome.folder] = outcome

    def end(self) -> RunEnd:
        return RunEnd()

    def close(self) -> None:
        self._stack.close()

    def display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


class AuthorRun(Run):
    """Validation only; with `--changed-since`, the preview of what a release would do."""

    def _decide(self) -> RunSpec:
        opts = self.opts
        # The immutability guard reads delivered.json here once, so a corrupt file is one
        # refusal, not a failure per item.
        try:
            self.delivered = StateDir(opts.state_dir, self.display(opts.state_dir)).read_delivered()
        except StateError as exc:
            raise Refused(str(exc)) from None
        self.resource_schemas = load_resource_schemas(WorkingTreeSource(self.root))
        return RunSpec(
            rules_dir=self.rules_dir,
            checks=opts.checks,
            state_dir=str(opts.state_dir),
            folders=self._changed_since(opts.changed_since) if opts.changed_since else None,
        )

    def _changed_since(self, ref: str) -> list[str]:
        try:
            return changed_version_folders(self.root, ref)
        except GitError as exc:
            raise Refused(f"--changed-since {ref}: {exc}") from None

    def count(self) -> int | None:
        if self.opts.changed_since:
            return len(self._changed_since(self.opts.changed_since))
        return len(discover_version_folders(self.root))

    def end(self) -> RunEnd:
        if not self.opts.changed_since:
            return RunEnd()
        self.preview = ReleasePreview.of(self.outcomes.values(), self.delivered)
        self.preview.changes = compare_with_delivered(
            self.root, self.preview.publish, self.delivered
        )
        return RunEnd(nothing_to_do=self.spec.folders == [])


class ReleaseRun(Run):
    """`--release`: plan, deliver each version of the plan, record, advance the baseline."""

    def _begin(self) -> None:
        self.state: StateDir | None = None
        self.outage: HubOutage | None = None
        self.token_refused: TokenRefused | None = None
        self.ahead: HubChecksAhead | None = None  # the hub checks sent while workers start
        self.notes: list[str] = []  # lines for the summary (what --finalize merged...)
        self.failed = False  # something no item shows failed (the state, a fragment, a push)
        self.recorded_baseline: str | None = None  # baseline.sha as the run found it
        self.baseline_after: str | None = None  # baseline.sha as the run leaves it
        self.hub_url: str | None = None  # the hub as the reports name it (`local`, or its URL)

    @property
    def writes_nothing(self) -> bool:
        return self.opts.dry_run or self.collect_only

    @property
    def locks(self) -> bool:
        """Whether this run takes the release lock and probes the state before planning."""
        return not self.writes_nothing

    @property
    def local(self) -> bool:
        return self.opts.hub_url in (None, LOCAL_HUB)

    # -- deciding the run --------------------------------------------------------------------

    def _decide(self) -> RunSpec:
        hub_url = self._choose_hub()
        plan = self.plan = self._share(self._plan())
        self.notes.extend(self._uncommitted_work())
        # Before the hub is started or asked anything: a bad schema file refuses the run.
        self.resource_schemas = load_resource_schemas(CommitSource(self.root, plan.release_sha, []))
        spec = RunSpec(
            release=True,
            dry_run=self.opts.dry_run,
            folders=list(plan.to_deliver),
            rules_dir=self.rules_dir,
            checks=self.opts.checks,
            plan=plan,
            ca_bundle=None if self.local else self.opts.ca_bundle,
            limits=dict(self.opts.limits),
        )
        if self.collect_only:
            return spec
        return self._start(spec, hub_url)

    def _choose_hub(self) -> str | None:
        """The hub's URL (None: the embedded hub, started later), refused where it may not be
        used; the embedded hub is announced."""
        opts = self.opts
        if self.local and opts.commit_state:
            raise Refused(
                "--commit-state/--push commit the tracked state; the embedded local hub keeps its "
                f"own state in {LOCAL_DIR}/ (git-ignored): name a real hub with --hub-url"
            )
        if self.local:
            why = "no hub URL configured" if opts.hub_url is None else "--hub-url local"
            self.write_line(
                f"policy-hub: {why}: releasing to the embedded local hub "
                f"({LOCAL_DIR}/hub.sqlite3, state in {self.display(opts.state_dir)})"
            )
            self.hub_url = LOCAL_HUB
            return None
        try:
            url = check_hub_url(opts.hub_url or "", opts.allow_insecure_hub)
        except HubConfigError as exc:
            raise Refused(str(exc)) from None
        self.token = opts.token
        self.hub_url = url  # never holds a credential: check_hub_url refuses one in the URL
        return url

    def _uncommitted_work(self, limit: int = UNCOMMITTED_NAMED) -> list[str]:
        """The summary's line about version folders of the working tree that differ from HEAD
        (new or changed, untracked or modified): only the release commit is published."""
        try:
            folders = uncommitted_version_folders(self.root)
        except GitError:
            return []  # git answered the plan; a status it cannot give is no reason to stop
        if not folders:
            return []
        named = ", ".join(folders[:limit])
        more = f" and {len(folders) - limit} more" if len(folders) > limit else ""
        return [
            f"NOT IN THIS RELEASE: {len(folders)} version folder(s) of the working tree are not "
            f"committed (new or changed): {printable(named, 2000)}{more}; only the release "
            "commit is published: commit them for the next release"
        ]

    def _trusted_publishing(self, hub_url: str, spec: RunSpec) -> RunSpec:
        """Without POLICY_HUB_TOKEN in a GitHub Actions job that may ask for an ID token: the
        exchange at the hub, up front, so that a refusal is one line and exit 4 before any
        version is asked for; every other process of the run makes its own (`oidc_audience`
        on the spec, no secret)."""
        audience = self.opts.oidc_audience
        if self.token is not None or audience is None:
            return spec
        exchange = OidcExchange(
            hub_url, audience, os.environ, RetryPolicy().with_limits(spec.limits), spec.ca_bundle
        )
        try:
            exchange.exchange()
        except ExchangeRefused as exc:
            raise Refused(f"trusted publishing: {exc}") from None
        self.token = exchange
        globs = ", ".join(exchange.policies) or "no names"
        self.write_line(
            f"policy-hub: trusted publishing: this workflow may publish {globs} "
            f"(hub token until {exchange.expires_at}, renewed as needed)"
        )
        return dataclasses.replace(spec, oidc_audience=audience)

    def _plan(self, *, lock: bool = True) -> ReleasePlan:
        """Lock and probe the state (when this run writes it), read it, make the plan. Without
        `lock`, the count's plan: nothing locked, said or read beyond what it needs."""
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
            state = self.state = StateDir(opts.state_dir, self.display(opts.state_dir))
            if lock and self.locks:
                path = release_lock_path(gitrepo.git_dir(self.root), opts.state_dir)
                self._stack.enter_context(state.locked(path))
                state.check_writable()
            delivered = self.delivered = state.read_delivered()
            baseline_text = state.read_baseline_text()
            baseline = parse_baseline(baseline_text) if baseline_text is not None else None
            self.recorded_baseline = self.baseline_after = baseline
            plan = make_plan(
                self.root,
                release_sha,
                baseline_text,
                baseline,
                delivered,
                read_delivered_content=lock,
            )
        except (StateError, ConfigurationError, GitError) as exc:
            raise Refused(str(exc)) from None
        if plan.baseline_warning and lock:
            self.write_line(f"policy-hub: warning: {plan.baseline_warning}")
        return plan

    def _share(self, plan: ReleasePlan) -> ReleasePlan:
        """The part of the plan this run delivers: all of it."""
        return plan

    def count(self) -> int | None:
        return len(self._share(self._plan(lock=False)).to_deliver)

    def _start(self, spec: RunSpec, hub_url: str | None) -> RunSpec:
        """The embedded hub, the run's shared files, the preflight and the hub checks ahead."""
        local_token = None
        if hub_url is None:
            hub = start_local_hub(self.root)
            self._stack.callback(hub.stop)
            hub_url, local_token = hub.url, hub.token
            self.token = local_token
        run_dir = Path(tempfile.mkdtemp(prefix="policyhub-run-"))
        self._stack.callback(shutil.rmtree, run_dir, ignore_errors=True)
        outage = self.outage = HubOutage(run_dir / "hub-unreachable")
        self.token_refused = TokenRefused(run_dir / "token-refused")
        board = HubCheckBoard(run_dir / BOARD_FILE)
        spec = dataclasses.replace(
            spec,
            hub_url=hub_url,
            outage_file=str(outage.path),
            token_refused_file=str(self.token_refused.path),
            hub_checks_file=str(board.path),
            local_token=local_token,
        )
        assert self.plan is not None
        if local_token is None and self.plan.to_deliver:
            spec = self._trusted_publishing(hub_url, spec)
        # Only a well-formed name and version may reach a URL path, even for this probe.
        sendable = [f for f in self.plan.to_deliver if self.plan.sendable(f)]
        if not sendable:
            return spec
        client = HubClient(
            hub_url, self.token, RetryPolicy().with_limits(spec.limits), spec.ca_bundle
        )
        self._stack.callback(client.close)
        probe, *rest = sendable
        answer = client.get_policy(*folder_identity(probe))
        auth_problem = self._preflight(hub_url, answer)
        if auth_problem:
            return dataclasses.replace(spec, auth_problem=auth_problem)
        if not outage.known():
            # The probe was the hub check of its version; the others are sent while the
            # workers start (a subset run asks only for what its items need, by itself).
            board.post(probe, answer)
            if rest and self.selects_every_version:
                self.ahead = HubChecksAhead(board, client, outage)
                self._stack.callback(self.ahead.close)
                self.ahead.send(rest)
        return spec

    def _preflight(self, hub_url: str, answer: HubAnswer) -> str | None:
        """The first hub check, sent up front: a refused token, an untrusted certificate or a
        dead hub is one clear line, not N failures. Returns the token problem, if any."""
        assert self.outage is not None
        if answer.unreachable:
            why = unreachable_reason(hub_url, answer)
            if answer.error and answer.error.startswith(TLS_UNTRUSTED):
                why += (
                    "; pass the CA certificates that signed it with --hub-ca-bundle PATH "
                    "(or ini policy_hub_ca_bundle, REQUESTS_CA_BUNDLE, SSL_CERT_FILE)"
                )
            self.outage.mark(why)
            self.write_line(f"policy-hub: ERROR: {why}; no version is attempted")
            return None
        if answer.status in (401, 403) and not self.token:
            problem = (
                f"not attempted: POLICY_HUB_TOKEN is not set, and the hub at {hub_url} "
                f"asks for one (HTTP {answer.status}); set it (in GitHub Actions: a repository "
                "secret passed as env POLICY_HUB_TOKEN, or trusted publishing: the job's "
                "`permissions: id-token: write` and the hub's --publishers)"
            )
            self.write_line(f"policy-hub: ERROR: {problem}")
            return problem
        if answer.status in (401, 403):
            check = (
                "the token trusted publishing just obtained; check the hub's logs"
                if isinstance(self.token, OidcExchange)
                else "POLICY_HUB_TOKEN and that it has read and write access"
            )
            problem = (
                f"not attempted: the hub at {hub_url} refused the token "
                f"(HTTP {answer.status}); check {check}"
            )
            self.write_line(f"policy-hub: ERROR: {problem}")
            return problem
        return None

    # -- ending the run ------------------------------------------------------------------------

    def take(self, outcome: ItemOutcome) -> None:
        super().take(outcome)
        if self.ahead is not None:
            self.ahead.reported(outcome.folder)

    def end(self) -> RunEnd:
        if self.ahead is not None:
            self.ahead.close()  # every item has run: no hub check is needed any more
        if self.plan is None:
            return RunEnd()
        report = self.report = ReleaseReport(self.plan, self.outcomes, dry_run=self.writes_nothing)
        report.notes.extend(self.notes)
        self._describe(report)
        # What stopped the run's later items, said once here (each item only says it was not
        # attempted).
        stops = (("HUB UNREACHABLE", self.outage), ("TOKEN REFUSED", self.token_refused))
        for label, flag in stops:
            if flag is not None and (why := flag.known()):
                report.notes.append(
                    f"{label}: {why}; the versions not attempted are retried by the next release"
                )
        if not self.writes_nothing and self.state is not None:
            self._record(self.plan, self.state, report)
        # A version changed after delivery fails the release (and its dry run) without an item.
        changed = bool(self.plan.changed_after_delivery) and not self.collect_only
        return RunEnd(nothing_to_do=self.spec.folders == [], failed=self.failed or changed)

    def _describe(self, report: ReleaseReport) -> None:
        """What this mode adds to the summary's report."""

    def _record(self, plan: ReleasePlan, state: StateDir, report: ReleaseReport) -> None:
        """The state written, then committed and pushed when asked."""
        try:
            self._write_state(plan, state, report)
        except (OSError, StateError) as exc:
            self._state_write_failed(exc, state, report)
            return
        if self.opts.commit_state:
            try:
                notes = commit_and_push(self.root, state, plan.release_sha, push=self.opts.push)
            except (StateSyncError, GitError) as exc:
                self.failed = True
                notes = [f"ERROR: state not committed/pushed: {exc}"]
            report.notes.extend(notes)

    def _write_state(self, plan: ReleasePlan, state: StateDir, report: ReleaseReport) -> None:
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
        self.baseline_after = plan.release_sha if done.baseline.advance else recorded_baseline

    def _state_write_failed(
        self, exc: OSError | StateError, state: StateDir, report: ReleaseReport
    ) -> None:
        """A state write failed after publishing: say what the hub got that the state lacks."""
        self.failed = True
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


class ShardRun(ReleaseRun):
    """`--shard K/N`: one part of a release. It only reads the state (written atomically) and
    writes its own fragment, so shards may run side by side in one checkout."""

    @property
    def locks(self) -> bool:
        return False

    def _share(self, plan: ReleasePlan) -> ReleasePlan:
        assert self.opts.shard is not None
        return restrict_plan(plan, self.opts.shard)

    def _describe(self, report: ReleaseReport) -> None:
        report.shard = str(self.opts.shard)

    def _record(self, plan: ReleasePlan, state: StateDir, report: ReleaseReport) -> None:
        """This run's deliveries go to a fragment; the state is the finalize run's."""
        opts = self.opts
        assert opts.shard is not None and opts.fragment_out is not None
        ran = [self.outcomes[f] for f in plan.to_deliver if f in self.outcomes]
        fragment = Fragment(
            release_sha=plan.release_sha,
            shard=opts.shard,
            change_set=list(plan.change_set),
            share=list(plan.to_deliver),
            deliveries=DeliveredIndex(o.delivery for o in ran if o.delivery is not None),
            outcomes=ran,
        )
        shown = self.display(opts.fragment_out)
        try:
            write_fragment(opts.fragment_out, fragment)
        except OSError as exc:
            self.failed = True
            report.notes.append(f"ERROR: fragment not written to {shown}: {exc}")
            return
        report.fragment = shown


class FinalizeRun(ReleaseRun):
    """`--finalize FRAGMENT...`: the shards' outcomes become this run's; no item is collected,
    no request is sent; the state is written as a release's."""

    annotates = False

    def _decide(self) -> RunSpec:
        self._choose_hub()
        plan = self.plan = self._plan()
        self._merge_fragments(plan)
        return RunSpec(
            release=True, folders=[], rules_dir=self.rules_dir, checks=self.opts.checks, plan=plan
        )

    def count(self) -> int | None:
        return 0

    def _merge_fragments(self, plan: ReleasePlan) -> None:
        paths = [(path, self.display(path)) for path in self.opts.finalize]
        try:
            merged = merge_fragments(paths, plan)
        except FragmentError as exc:
            raise Refused(str(exc)) from None
        self.notes = merged.notes()
        for line in self.notes:
            self.write_line(f"policy-hub: {line}")
        for outcome in merged.outcomes:
            self.outcomes[outcome.folder] = outcome
        for record in merged.deliveries:
            folder = version_folder(record.name, record.version)
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

    def _describe(self, report: ReleaseReport) -> None:
        report.not_run_reason = "no fragment reports it (shard failed or fragment missing)"

    def end(self) -> RunEnd:
        end = super().end()
        report = self.report
        # Its failures are the shards' versions that no fragment reports as delivered.
        failed = bool(report and (report.failed or report.not_run))
        return dataclasses.replace(end, failed=end.failed or failed)


def build_run(
    opts: HarnessOptions,
    root: Path,
    write_line: WriteLine,
    *,
    collect_only: bool = False,
    selects_every_version: bool = True,
) -> Run:
    """The run these options ask for, chosen once."""
    if opts.release and opts.hub_url is None and opts.in_ci:
        # Before anything is read: no state, no rules, no git.
        raise Refused(
            "--release needs a Policy Hub: set POLICY_HUB_URL "
            "(or --hub-url / ini policy_hub_url); "
            "with CI set, the embedded local hub is never used implicitly"
        )
    mode: type[Run]
    if not opts.release:
        mode = AuthorRun
    elif opts.finalize:
        mode = FinalizeRun
    elif opts.shard is not None:
        mode = ShardRun
    else:
        mode = ReleaseRun
    return mode(
        opts,
        root,
        write_line,
        collect_only=collect_only,
        selects_every_version=selects_every_version,
    )
