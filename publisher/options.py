"""Command-line options and their resolution (CLI > environment > ini > default) in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from publisher.shard import Shard, ShardError, parse_shard

LOCAL_HUB = "local"
LOCAL_DIR = ".policyhub-local"


class UsageError(pytest.UsageError):
    """A bad flag or configuration: pytest exits 4 before anything is read or sent."""


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("policyhub", "policy release harness")
    group.addoption(
        "--release",
        action="store_true",
        help="run the release flow (hub check, validate, publish, state)",
    )
    group.addoption(
        "--hub-url",
        metavar="URL",
        help="Policy Hub API base URL, or `local` for the embedded hub "
        "[env POLICY_HUB_URL, ini policy_hub_url]",
    )
    group.addoption(
        "--release-sha",
        metavar="SHA",
        help="the commit being released [env GITHUB_SHA; default HEAD]",
    )
    group.addoption(
        "--state-dir", metavar="DIR", help="state directory [ini policy_state_dir; default .state]"
    )
    group.addoption(
        "--dry-run",
        action="store_true",
        help="show the plan and the hub check; no POST, no state write",
    )
    group.addoption(
        "--commit-state", action="store_true", help="commit the changed state files after the run"
    )
    group.addoption(
        "--push",
        action="store_true",
        help="push the state commit (implies --commit-state); on rejection fetch, merge, retry",
    )
    group.addoption(
        "--changed-since",
        metavar="REF",
        help="author mode limited to versions changed in REF..HEAD",
    )
    group.addoption(
        "--allow-insecure-hub",
        action="store_true",
        help="allow plain http:// to a non-loopback hub",
    )
    group.addoption(
        "--shard",
        metavar="K/N",
        help="with --release: deliver only shard K of N of the change set (by a stable hash) and "
        "write a fragment instead of the state; merge with --finalize",
    )
    group.addoption(
        "--fragment-out",
        metavar="PATH",
        help="with --shard: where to write the fragment "
        "[default policyhub-fragment-K-of-N.json in the rootdir]",
    )
    group.addoption(
        "--finalize",
        metavar="FRAGMENT",
        nargs="+",
        help="with --release: collect nothing; merge the shards' fragments into the state and "
        "advance the baseline iff the change set is delivered",
    )
    parser.addini("policy_hub_url", "Policy Hub API base URL, or `local`", default="")
    parser.addini("policy_state_dir", "state directory (default .state)", default="")
    parser.addini(
        "policy_rules_dir",
        "a folder of repository rules for policy_checks (default .policy-rules)",
        default="",
    )


@dataclass(frozen=True)
class HarnessOptions:
    """Every setting the harness reads, resolved once on the controller."""

    release: bool
    hub_url: str | None  # None = not configured
    hub_url_source: str  # "flag", "env", "ini" or "default" for messages
    token: str | None
    release_ref: str
    state_dir: Path
    rules_dir: Path
    dry_run: bool
    commit_state: bool
    push: bool
    changed_since: str | None
    allow_insecure_hub: bool
    in_ci: bool
    shard: Shard | None = None
    fragment_out: Path | None = None  # set whenever shard is
    finalize: tuple[Path, ...] = ()  # the fragments to merge; empty = not a finalize run

    def __repr__(self) -> str:
        # The token must never appear in a traceback's locals or a debug print.
        return f"HarnessOptions(release={self.release}, hub_url={self.hub_url!r}, token=<hidden>)"


def _first(*candidates: tuple[str, Any]) -> tuple[str, Any]:
    for source, value in candidates:
        if value not in (None, ""):
            return source, value
    return "default", None


def resolve_options(
    config: pytest.Config, root: Path, env: dict[str, str] | None = None
) -> HarnessOptions:
    env = dict(os.environ) if env is None else env
    opt = config.option
    hub_source, hub_url = _first(
        ("flag", opt.hub_url),
        ("env", env.get("POLICY_HUB_URL")),
        ("ini", config.getini("policy_hub_url")),
    )
    in_ci = bool(env.get("CI"))
    local = hub_url == LOCAL_HUB
    _, state = _first(("flag", opt.state_dir), ("ini", config.getini("policy_state_dir")))
    if state is None:
        state = (
            f"{LOCAL_DIR}/state"
            if local or (opt.release and hub_url is None and not in_ci)
            else ".state"
        )
    _, rules = _first(("ini", config.getini("policy_rules_dir")))
    _, ref = _first(("flag", opt.release_sha), ("env", env.get("GITHUB_SHA")))
    if (opt.dry_run or opt.commit_state or opt.push) and not opt.release:
        raise UsageError("--dry-run, --commit-state and --push only make sense with --release")
    if opt.changed_since and opt.release:
        raise UsageError(
            "--changed-since is for author mode; --release computes its own change set"
        )
    if opt.dry_run and (opt.commit_state or opt.push):
        raise UsageError(
            "--dry-run writes no state, so it cannot be combined with --commit-state/--push"
        )
    shard, fragment_out, finalize = _scale_out(opt, root)
    return HarnessOptions(
        release=opt.release,
        hub_url=hub_url,
        hub_url_source=hub_source,
        token=env.get("POLICY_HUB_TOKEN") or None,
        release_ref=ref or "HEAD",
        state_dir=(root / state).resolve(),
        rules_dir=(root / (rules or ".policy-rules")),
        dry_run=opt.dry_run,
        commit_state=opt.commit_state or opt.push,
        push=opt.push,
        changed_since=opt.changed_since,
        allow_insecure_hub=opt.allow_insecure_hub,
        in_ci=in_ci,
        shard=shard,
        fragment_out=fragment_out,
        finalize=finalize,
    )


def _scale_out(opt: Any, root: Path) -> tuple[Shard | None, Path | None, tuple[Path, ...]]:
    """`--shard`, `--fragment-out` and `--finalize`, refused where they make no sense."""
    shard_text = getattr(opt, "shard", None)
    fragment_out = getattr(opt, "fragment_out", None)
    finalize = tuple(root / p for p in (getattr(opt, "finalize", None) or ()))
    if (shard_text or finalize) and not opt.release:
        raise UsageError("--shard and --finalize are steps of a release: add --release")
    if shard_text and finalize:
        raise UsageError(
            "--shard runs one part of a release, --finalize merges the parts: use one per run"
        )
    if fragment_out and not shard_text:
        raise UsageError("--fragment-out names the fragment of a --shard run")
    if shard_text and (opt.commit_state or opt.push):
        raise UsageError(
            "a --shard run writes a fragment, never the state: "
            "commit and push from the --finalize run"
        )
    if finalize and opt.dry_run:
        raise UsageError("--finalize writes the state from the fragments; it has no --dry-run")
    if not shard_text:
        return None, None, finalize
    try:
        shard = parse_shard(shard_text)
    except ShardError as exc:
        raise UsageError(str(exc)) from None
    out = root / (fragment_out or shard.default_fragment_name())
    return shard, out, finalize
