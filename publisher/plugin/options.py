"""Command-line options and their resolution (CLI > environment > ini > default) in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from policy_checks import CONDITION_LANGUAGES, TEST_POLICIES, CheckSettings
from policy_checks.evaluator import DEFAULT_TIMEOUT
from publisher.hub.client import RetryPolicy
from publisher.hub.embedded import LOCAL_DIR, LOCAL_HUB
from publisher.hub.oidc import DEFAULT_AUDIENCE, actions_oidc_available
from publisher.hub.token import resolve_token
from publisher.refused import Refused
from publisher.release.settings import HarnessOptions
from publisher.release.shard import Shard, ShardError, parse_shard

# ini key -> (RetryPolicy field, meaning): every bound on waiting for the hub. The defaults are
# RetryPolicy's own.
LIMIT_KEYS: dict[str, tuple[str, str]] = {
    "policy_hub_attempts": ("attempts", "tries of one request, the first included"),
    "policy_hub_connect_timeout": ("connect_timeout", "connecting to the hub"),
    "policy_hub_answer_timeout": ("read_timeout", "one try's whole answer"),
    "policy_hub_request_deadline": ("deadline", "one request, all its tries"),
    "policy_hub_item_deadline": ("item_deadline", "one policy version's requests"),
    "policy_hub_retry_after_cap": ("retry_after_cap", "the longest Retry-After honoured"),
    "policy_hub_backoff": ("backoff", "the pause after a first failed try, doubling"),
    "policy_hub_backoff_max": ("backoff_max", "the longest pause between tries"),
}


# Options whose value is a path that often lies outside the checkout (fragments, a CA bundle).
PATH_OPTIONS = ("finalize", "fragment_out", "hub_ca_bundle")


_ROOTDIR_FIELDS = ("_rootpath", "_inipath", "_inicfg", "_ignored_config_files", "_inicache")


def repair_rootdir(config: pytest.Config, args: list[str]) -> None:
    """Choose pytest's rootdir again when it was chosen from one of our options' values.

    pytest picks its rootdir and ini file before any plugin's options are known, so the value of
    `--finalize /elsewhere/frag.json` (a separate argument, not `--finalize=...`) is taken for a
    test path and the rootdir becomes a common ancestor such as `/`. Once our options are
    parsed (this runs in `pytest_load_initial_conftests`, before any conftest or collection),
    the choice is made again from the real test paths, as pytest would have made it.
    """
    from _pytest.config.findpaths import determine_setup  # the very function pytest uses

    namespace = config.known_args_namespace
    values: set[str] = set()
    for dest in PATH_OPTIONS:
        value = getattr(namespace, dest, None)
        values.update(map(str, value) if isinstance(value, list) else [str(value)] if value else [])
    if not values.intersection(args):
        return
    rootpath, inipath, inicfg, ignored = determine_setup(
        inifile=namespace.inifilename,
        override_ini=namespace.override_ini,
        args=namespace.file_or_dir,
        rootdir_cmd_arg=namespace.rootdir or None,
        invocation_dir=config.invocation_params.dir,
    )
    if rootpath == config.rootpath and inipath == config.inipath:
        return
    # pytest has no public way to choose the rootdir again: these are the private fields that
    # pytest 8.1 to 9 keep it in (tests/test_release_config.py checks them on the installed
    # pytest). A pytest without them gets the way round instead of a wrong rootdir.
    if not all(hasattr(config, name) for name in _ROOTDIR_FIELDS):
        raise pytest.UsageError(
            f"pytest {pytest.__version__} took the value of a path option for a test path and "
            f"chose the rootdir {config.rootpath}; write the option with '=' "
            "(--finalize=PATH, --fragment-out=PATH, --hub-ca-bundle=PATH) or pass --rootdir ."
        )
    old_confcut = str(config.inipath.parent if config.inipath else config.rootpath)
    config._rootpath, config._inipath = rootpath, inipath
    config._inicfg, config._ignored_config_files = inicfg, ignored
    config._inicache.clear()
    if namespace.confcutdir == old_confcut:
        namespace.confcutdir = str(inipath.parent if inipath else rootpath)


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
        "--hub-ca-bundle",
        metavar="PATH",
        help="CA certificates to check the hub's TLS certificate against "
        "[env REQUESTS_CA_BUNDLE, SSL_CERT_FILE; ini policy_hub_ca_bundle; default certifi's]",
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
        action="extend",  # `--finalize=a --finalize=b` adds up, as `--finalize a b` does
        help="with --release: collect nothing; merge the shards' fragments into the state and "
        "advance the baseline iff the change set is delivered",
    )
    parser.addini("policy_hub_url", "Policy Hub API base URL, or `local`", default="")
    parser.addini("policy_state_dir", "state directory (default .state)", default="")
    parser.addini(
        "policy_hub_audience",
        "trusted publishing: the audience of the GitHub Actions ID token exchanged at the hub's "
        f"POST /auth/oidc when POLICY_HUB_TOKEN is not set (default {DEFAULT_AUDIENCE})",
        default="",
    )
    parser.addini(
        "policy_hub_ca_bundle", "CA certificates for the hub's TLS certificate", default=""
    )
    defaults = RetryPolicy()
    for key, (attr, meaning) in LIMIT_KEYS.items():
        unit = "" if attr == "attempts" else "seconds, "
        default = getattr(defaults, attr)
        parser.addini(key, f"{meaning} ({unit}default {default:g})", default="")
    parser.addini(
        "policy_rules_dir",
        "a folder of repository rules for policy_checks (default .policy-rules)",
        default="",
    )
    parser.addini(
        "policy_condition_language",
        "language of rule conditions: cel (compiled, type-checked, tests.yaml run) or none "
        "(opaque strings); default cel",
        default="",
    )
    parser.addini(
        "policy_tests",
        "optional, or required: every rule of every version needs a passing and a failing "
        "case in tests.yaml; default optional",
        default="",
    )
    parser.addini(
        "policy_eval_timeout",
        f"seconds one rule's evaluation in a test case may take (default {DEFAULT_TIMEOUT:g})",
        default="",
    )


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
    _, hub_url = _first(
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
        raise Refused("--dry-run, --commit-state and --push only make sense with --release")
    if opt.changed_since and opt.release:
        raise Refused("--changed-since is for author mode; --release computes its own change set")
    if opt.dry_run and (opt.commit_state or opt.push):
        raise Refused(
            "--dry-run writes no state, so it cannot be combined with --commit-state/--push"
        )
    shard, fragment_out, finalize = _scale_out(opt, root)
    ca_bundle = _ca_bundle(config, root, env) if opt.release else None
    # Author mode sends nothing, so a token it never uses cannot stop it.
    token = resolve_token(env) if opt.release else None
    return HarnessOptions(
        release=opt.release,
        hub_url=hub_url,
        token=token,
        oidc_audience=_oidc_audience(config, env) if opt.release and token is None else None,
        release_ref=ref or "HEAD",
        state_dir=(root / state).resolve(),
        rules_dir=(root / (rules or ".policy-rules")),
        dry_run=opt.dry_run,
        commit_state=opt.commit_state or opt.push,
        push=opt.push,
        changed_since=opt.changed_since,
        allow_insecure_hub=opt.allow_insecure_hub,
        in_ci=in_ci,
        ca_bundle=ca_bundle,
        limits=_limits(config),
        shard=shard,
        fragment_out=fragment_out,
        finalize=finalize,
        checks=_check_settings(config),
    )


def _oidc_audience(config: pytest.Config, env: Mapping[str, str]) -> str | None:
    """The audience of trusted publishing (ini policy_hub_audience), when this is a GitHub
    Actions job that may ask for an ID token; None otherwise."""
    if not actions_oidc_available(env):
        return None
    audience = str(config.getini("policy_hub_audience") or "").strip() or DEFAULT_AUDIENCE
    if not audience.isascii() or not audience.isprintable() or len(audience) > 256:
        raise Refused(
            f"ini policy_hub_audience = {audience[:40]!r}: expected printable ASCII, at most "
            "256 characters (the `audience` of the hub's publishers file)"
        )
    return audience


def _check_settings(config: pytest.Config) -> CheckSettings:
    """The ini keys of docs/contract.md section 8; a value outside their lists is a usage error."""
    language = str(config.getini("policy_condition_language") or "cel").strip().lower()
    if language not in CONDITION_LANGUAGES:
        raise Refused(
            f"ini policy_condition_language = {language!r}: expected "
            + " or ".join(CONDITION_LANGUAGES)
        )
    tests = str(config.getini("policy_tests") or "optional").strip().lower()
    if tests not in TEST_POLICIES:
        raise Refused(f"ini policy_tests = {tests!r}: expected " + " or ".join(TEST_POLICIES))
    if tests == "required" and language == "none":
        raise Refused(
            "ini policy_tests = required runs tests.yaml, which needs "
            "policy_condition_language = cel"
        )
    raw = str(config.getini("policy_eval_timeout") or "").strip()
    timeout = DEFAULT_TIMEOUT
    if raw:
        try:
            timeout = float(raw)
        except ValueError:
            timeout = -1
        if not 0 < timeout <= 3600:
            raise Refused(
                f"ini policy_eval_timeout = {raw!r}: expected a number of seconds above 0"
            )
    return CheckSettings(language, tests == "required", timeout)


def _ca_bundle(config: pytest.Config, root: Path, env: Mapping[str, str]) -> str | None:
    """The CA bundle (flag > ini > REQUESTS_CA_BUNDLE > SSL_CERT_FILE), checked to be a
    readable file now, so a typo is one usage error and not a TLS failure per version."""
    source, value = _first(
        ("--hub-ca-bundle", config.option.hub_ca_bundle),
        ("ini policy_hub_ca_bundle", config.getini("policy_hub_ca_bundle")),
        ("REQUESTS_CA_BUNDLE", env.get("REQUESTS_CA_BUNDLE")),
        ("SSL_CERT_FILE", env.get("SSL_CERT_FILE")),
    )
    if value is None:
        return None
    path = Path(value).expanduser()
    if source.startswith("ini") and not path.is_absolute():
        path = root / path
    try:
        with path.open("rb") as handle:
            head = handle.read(1 << 16)
    except OSError as exc:
        raise Refused(
            f"the CA bundle {value} (from {source}) cannot be read: {exc.strerror or exc}"
        ) from None
    if b"-----BEGIN CERTIFICATE-----" not in head:
        raise Refused(
            f"the CA bundle {value} (from {source}) holds no PEM certificate "
            "(-----BEGIN CERTIFICATE-----)"
        )
    return str(path.resolve())


def _limits(config: pytest.Config) -> dict[str, float]:
    """RetryPolicy overrides from the ini keys of LIMIT_KEYS; a bad value is a usage error."""
    limits: dict[str, float] = {}
    for key, (attr, _) in LIMIT_KEYS.items():
        raw = str(config.getini(key) or "").strip()
        if not raw:
            continue
        whole = attr == "attempts"
        try:
            value = int(raw) if whole else float(raw)
        except ValueError:
            value = -1
        if not 0 < value <= 86400:
            what = "a whole number of tries" if whole else "a number of seconds"
            raise Refused(f"ini {key} = {raw!r}: expected {what} above 0")
        limits[attr] = value
    return limits


def _scale_out(opt: Any, root: Path) -> tuple[Shard | None, Path | None, tuple[Path, ...]]:
    """`--shard`, `--fragment-out` and `--finalize`, refused where they make no sense."""
    shard_text = getattr(opt, "shard", None)
    fragment_out = getattr(opt, "fragment_out", None)
    finalize = tuple(root / p for p in (getattr(opt, "finalize", None) or ()))
    if (shard_text or finalize) and not opt.release:
        raise Refused("--shard and --finalize are steps of a release: add --release")
    if shard_text and finalize:
        raise Refused(
            "--shard runs one part of a release, --finalize merges the parts: use one per run"
        )
    if fragment_out and not shard_text:
        raise Refused("--fragment-out names the fragment of a --shard run")
    if shard_text and (opt.commit_state or opt.push):
        raise Refused(
            "a --shard run writes a fragment, never the state: "
            "commit and push from the --finalize run"
        )
    if finalize and opt.dry_run:
        raise Refused("--finalize writes the state from the fragments; it has no --dry-run")
    if not shard_text:
        return None, None, finalize
    try:
        shard = parse_shard(shard_text)
    except ShardError as exc:
        raise Refused(str(exc)) from None
    out = root / (fragment_out or shard.default_fragment_name())
    return shard, out, finalize
