"""`policy-hub serve`: argument parsing, start-up checks (tokens, signing key, database, port)
with one-line errors and exit 2, the "listening" line, and shutdown on SIGTERM/SIGINT. `--db` (or
POLICY_HUB_DB) is a SQLite file or a `postgresql://` URL; the URL's password is never printed.
What the server runs on (FastAPI, uvicorn) is imported only when needed; missing, it is one line,
exit 4. `policy-hub verify` and `policy-hub yank` (verify.py): exit 0, 1 (a check failed, the
hub refused), 4 (usage, a file that cannot be used, a hub that cannot be read).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from policy_hub.attest import SigningKeyError, load_signing_key
from policy_hub.auth import TOKENS_ENV, TokenConfigError, Tokens, load_tokens
from policy_hub.embedded import missing_module_message
from policy_hub.engines import is_database_url, open_store
from policy_hub.store import StoreError, StoreUnavailable

if TYPE_CHECKING:
    from policy_hub.oidc import TrustedPublishing

USAGE_ERROR = 2
MISSING_MODULE = 4  # a broken environment, as the harness's own configuration errors
CONFIG_ERROR = 4  # a --publishers file (or a jwks_file it names) that cannot be used
DEFAULT_OIDC_TOKEN_TTL = 900
CLIENT_USAGE = 4  # verify and yank: a usage error, as the harness's configuration errors
CLIENT_COMMANDS = ("verify", "yank")
DB_ENV = "POLICY_HUB_DB"
SIGNING_KEY_ENV = "POLICY_HUB_SIGNING_KEY"
# Beside a SQLite file when no --signing-key is given: `<db>.signing-key.pem`.
SIGNING_KEY_SUFFIX = ".signing-key.pem"


def build_parser() -> argparse.ArgumentParser:
    from policy_hub.faults import FAULTS_ENV

    parser = argparse.ArgumentParser(
        prog="policy-hub", description="The reference Policy Hub (docs/contract.md section 5)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve the hub API",
        description=(
            "Serve the hub. Prints 'policy-hub listening on http(s)://HOST:PORT' to stdout once it "
            f"accepts connections. Tokens come from --token-file and/or {TOKENS_ENV} "
            "('write:abc,read:def'). Several processes may serve one PostgreSQL database."
        ),
    )
    serve.add_argument(
        "--db",
        metavar="DB",
        help=(
            "a SQLite file (created if absent; one process) or a postgresql://user@host:port/dbname"
            f" URL (any number of processes); default: ${DB_ENV}"
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one")
    serve.add_argument(
        "--token-file",
        type=Path,
        help="lines '<read|write> <token>' or 'write <token> [<glob>,...] [label=NAME]' (the "
        "names it may write, fnmatch globs; the label names it in provenance); '#' starts a "
        "comment; write implies read",
    )
    serve.add_argument(
        "--signing-key",
        type=Path,
        metavar="FILE",
        help=(
            "PEM Ed25519 private key that signs each new record's attestation; made (mode 0600) "
            f"when missing; default ${SIGNING_KEY_ENV}, else <db>{SIGNING_KEY_SUFFIX} beside a "
            "SQLite file (a PostgreSQL hub needs one given: give every process the same file)"
        ),
    )
    serve.add_argument(
        "--no-auth",
        action="store_true",
        help="allow starting without any token (then every request may read and write)",
    )
    serve.add_argument(
        "--public-read",
        action="store_true",
        help=(
            "anyone may read without a token: the web pages and every GET of the API "
            "(publishing still needs a write token; with no token configured, the hub is "
            "read-only)"
        ),
    )
    serve.add_argument(
        "--inject-faults",
        metavar="SPEC",
        help=(
            "TEST ONLY: e.g. 'latency_ms=20,rate_503=0.1,rate_429=0.1,retry_after=1,"
            f"drop_after_commit=0.2,slow_rate=0.05,slow_ms=3000,seed=7' (also {FAULTS_ENV})"
        ),
    )
    serve.add_argument(
        "--tls-cert",
        type=Path,
        metavar="PEM",
        help="serve HTTPS with this certificate (chain) file; needs --tls-key",
    )
    serve.add_argument("--tls-key", type=Path, metavar="PEM", help="the private key of --tls-cert")
    serve.add_argument(
        "--publishers",
        type=Path,
        metavar="FILE",
        help=(
            "trusted publishing: a YAML file of OpenID Connect issuers and the workflows they "
            "may publish for (README, 'Trusted publishing'); enables POST /auth/oidc"
        ),
    )
    serve.add_argument(
        "--oidc-token-ttl",
        type=int,
        default=DEFAULT_OIDC_TOKEN_TTL,
        metavar="SECONDS",
        help=f"how long a token of POST /auth/oidc is valid (default {DEFAULT_OIDC_TOKEN_TTL})",
    )
    serve.add_argument("--max-body-bytes", type=int, default=None, help="default 2 MiB")
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.add_argument(
        "--no-access-log", action="store_true", help="do not log one line per request"
    )
    verify = commands.add_parser(
        "verify",
        help="prove where a published version came from",
        description=(
            "Check a version's signed attestation (docs/contract.md section 9), one line per "
            "check. Exit 0 when every check holds, 1 when any fails, 4 for a usage error or a hub "
            "that cannot be read. Reads with $POLICY_HUB_TOKEN when it is set."
        ),
    )
    verify.add_argument("ref", metavar="NAME@VERSION")
    verify.add_argument("--hub-url", required=True, metavar="URL")
    verify.add_argument(
        "--keys",
        type=Path,
        metavar="FILE",
        help="a JWKS file of the keys to trust (e.g. a saved GET /keys); default: the hub's /keys",
    )
    verify.add_argument(
        "--repository", metavar="OWNER/REPO", help="require it published by this repository"
    )
    verify.add_argument(
        "--workflow", metavar="FILE", help="require this workflow file (e.g. release.yml)"
    )
    verify.add_argument(
        "--local", type=Path, metavar="FOLDER", help="require this version folder's own digest"
    )
    verify.add_argument(
        "--allow-yanked", action="store_true", help="a yanked version may still verify"
    )
    yank = commands.add_parser(
        "yank",
        help="mark a published version as not to be used",
        description=(
            "Yank a version with $POLICY_HUB_TOKEN (a write token that may write its name): it "
            "stays readable, marked, and is never published again. Exit 0 yanked (or already), 1 "
            "refused by the hub, 4 usage error or a hub that cannot be read."
        ),
    )
    yank.add_argument("ref", metavar="NAME@VERSION")
    yank.add_argument("--reason", required=True, metavar="TEXT")
    yank.add_argument("--hub-url", required=True, metavar="URL")
    return parser


def _fail(message: str) -> int:
    print(f"policy-hub: error: {message}", file=sys.stderr, flush=True)
    return USAGE_ERROR


def _log_config(level: str = "info") -> dict[str, object]:
    from uvicorn.config import LOGGING_CONFIG

    # stdout carries only the "listening" line; every log line (access log included,
    # which holds method, path and status, never headers) goes to stderr.
    config = copy.deepcopy(LOGGING_CONFIG)
    for handler in config["handlers"].values():
        handler["stream"] = "ext://sys.stderr"
    # One line per exchange of trusted publishing: who may publish what, or which check failed
    # (never a token); the log level applies as to every other line.
    config["loggers"]["policy_hub.oidc"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def serve(args: argparse.Namespace) -> int:
    # First, so that an environment without FastAPI or uvicorn makes nothing (no database).
    from policy_hub.app import MAX_BODY_BYTES, create_app
    from policy_hub.faults import FAULTS_ENV, Faults, FaultSpec, FaultSpecError
    from policy_hub.server import listen_socket, make_server, url_of

    read_only = (
        args.public_read
        and not args.no_auth
        and args.token_file is None
        and not os.environ.get(TOKENS_ENV, "").strip()
    )
    try:
        # --public-read without any token: a hub anyone reads and no one writes.
        tokens = Tokens() if read_only else load_tokens(args.token_file, no_auth=args.no_auth)
    except TokenConfigError as exc:
        return _fail(str(exc))
    spec_text = args.inject_faults if args.inject_faults is not None else os.environ.get(FAULTS_ENV)
    faults = None
    if spec_text:
        try:
            spec = FaultSpec.parse(spec_text)
        except FaultSpecError as exc:
            return _fail(f"--inject-faults: {exc}")
        faults = Faults(spec)
    trusted: TrustedPublishing | None = None
    if not 1 <= args.oidc_token_ttl <= 86_400:
        return _fail("--oidc-token-ttl: give seconds between 1 and 86400 (default 900)")
    if args.publishers is not None:
        loaded = load_trust(args.publishers, args.oidc_token_ttl)
        if isinstance(loaded, str):
            print(f"policy-hub: error: {loaded}", file=sys.stderr, flush=True)
            return CONFIG_ERROR
        trusted = loaded
    if (args.tls_cert is None) != (args.tls_key is None):
        return _fail("--tls-cert and --tls-key go together")
    for option, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if path is not None and not os.access(path, os.R_OK):
            return _fail(f"{option} {path}: not a readable file")
    db = args.db if args.db is not None else os.environ.get(DB_ENV, "").strip()
    if not db:
        return _fail(f"no database: give --db FILE-OR-URL or set {DB_ENV}")
    try:
        store = open_store(db)
        store.initialize()
    except StoreError as exc:
        return _fail(str(exc))
    key_file = args.signing_key or os.environ.get(SIGNING_KEY_ENV, "").strip() or None
    if key_file is None and is_database_url(db):
        store.close()
        return _fail(
            f"a hub on PostgreSQL needs --signing-key FILE (or {SIGNING_KEY_ENV}): the same "
            "file for every process"
        )
    try:
        signer = load_signing_key(Path(key_file or db + SIGNING_KEY_SUFFIX))
    except SigningKeyError as exc:
        store.close()
        return _fail(str(exc))
    # Listed now, so /keys shows a new key before it signs; every create lists its key in its
    # own transaction anyway (a database down now changes nothing).
    with contextlib.suppress(StoreUnavailable):
        store.add_key(signer.jwk)

    try:
        sock = listen_socket(args.host, args.port)
    except OSError as exc:
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    url = url_of(sock, "https" if args.tls_cert else "http")
    if tokens.open_access:
        print("policy-hub: WARNING: --no-auth: anyone may publish", file=sys.stderr, flush=True)
    if read_only:
        print(
            "policy-hub: read-only: no token is configured, so nothing can be published",
            file=sys.stderr,
            flush=True,
        )
    problem = getattr(store, "startup_problem", None)
    if problem:
        print(
            f"policy-hub: WARNING: the database {store.location} does not answer ({problem});"
            " answering 503 until it does",
            file=sys.stderr,
            flush=True,
        )
    elif store.engine != "sqlite":
        print(f"policy-hub: database {store.location}", file=sys.stderr, flush=True)
    if faults is not None:
        print(
            f"policy-hub: WARNING: TEST-ONLY fault injection active: {faults.spec.describe()}",
            file=sys.stderr,
            flush=True,
        )

    if trusted is not None:
        count = len(trusted.trust.publishers)
        print(
            f"policy-hub: trusted publishing: {count} publisher(s) from {args.publishers}",
            file=sys.stderr,
            flush=True,
        )
    app = create_app(
        store,
        tokens,
        faults,
        max_body_bytes=args.max_body_bytes or MAX_BODY_BYTES,
        public_read=args.public_read,
        signer=signer,
        trusted=trusted,
    )
    server = make_server(
        app,
        log_level=args.log_level,
        access_log=not args.no_access_log,
        log_config=_log_config(args.log_level),
        on_started=lambda: print(f"policy-hub listening on {url}", flush=True),
        tls_cert=str(args.tls_cert) if args.tls_cert else None,
        tls_key=str(args.tls_key) if args.tls_key else None,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        # uvicorn installs its own handlers while serving and re-raises the signal after
        # a graceful shutdown; this handler makes that a clean exit 0 instead of a kill.
        server.should_exit = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.run(sockets=[sock])
    finally:
        store.close()
    return 0 if server.started else 1


def load_trust(path: Path, ttl: int) -> TrustedPublishing | str:
    """The trusted publishing of `--publishers`, its jwks_files read; or the one-line problem."""
    from policy_hub.oidc import JwksUnavailable, TrustedPublishing
    from policy_hub.publishers import PublishersError, load_publishers

    try:
        trusted = TrustedPublishing(load_publishers(path), ttl)
        trusted.load_files()
    except PublishersError as exc:
        return f"--publishers {exc}"
    except JwksUnavailable as exc:
        return f"--publishers {path}: {exc}"
    return trusted


def client(args: argparse.Namespace) -> int:
    """verify or yank: one line per check (stdout), one line per problem (stderr)."""
    from policy_hub.verify import Unusable, VerifyRequest, parse_ref, run_verify, run_yank

    def out(line: str) -> None:
        print(line, flush=True)

    try:
        name, version = parse_ref(args.ref)
        if args.command == "yank":
            return run_yank(args.hub_url, name, version, args.reason, out, os.environ)
        request = VerifyRequest(
            name,
            version,
            keys_file=args.keys,
            repository=args.repository,
            workflow=args.workflow,
            local=args.local,
            allow_yanked=args.allow_yanked,
        )
        return run_verify(args.hub_url, request, out, os.environ)
    except Unusable as exc:
        print(f"policy-hub {args.command}: error: {exc}", file=sys.stderr, flush=True)
        return CLIENT_USAGE


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    try:
        try:
            args = build_parser().parse_args(arguments)
        except SystemExit as exc:
            # argparse said what is wrong; verify and yank exit 4 for a usage error.
            if exc.code == USAGE_ERROR and arguments[:1] and arguments[0] in CLIENT_COMMANDS:
                return CLIENT_USAGE
            raise
        if args.command == "serve":
            return serve(args)
        if args.command in CLIENT_COMMANDS:
            return client(args)
    except ImportError as exc:
        # An environment without what the hub runs on: one line, never a traceback.
        print(f"policy-hub: error: {missing_module_message(exc)}", file=sys.stderr, flush=True)
        return MISSING_MODULE
    return USAGE_ERROR
