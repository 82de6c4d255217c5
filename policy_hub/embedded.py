"""The hub inside the calling process (`--hub-url local`): uvicorn in a daemon thread on a
free loopback port, quiet, with one write token, stopped gracefully by `stop()`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

START_TIMEOUT_SECONDS = 15.0
INSTALL_HINT = "pip install 'policy-release-harness[hub]'"


class HubUnavailable(RuntimeError):
    """What the hub runs on cannot be imported (a broken or partial environment): one line
    naming the missing module and the install that brings it. A caller reports it as a
    configuration error, never as a traceback."""


def missing_module_message(exc: ImportError) -> str:
    """One line for an import of the hub that failed (shared with `policy-hub serve`)."""
    what = f"module {exc.name!r}" if exc.name else "a module"
    return f"the reference policy hub cannot start: {what} is missing; install: {INSTALL_HINT}"


class EmbeddedHub:
    """A running in-process hub: `url` to talk to, `stop()` to end it."""

    def __init__(self, url: str, server: Any, thread: threading.Thread) -> None:
        self.url = url
        self._server = server
        self._thread = thread

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> EmbeddedHub:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# The embedded hub's signing key, in the folder of its database (`.policyhub-local/`).
SIGNING_KEY_FILE = "signing-key.pem"
EMBEDDED_LABEL = "local"


def start_embedded_hub(db_path: Path, token: str, host: str = "127.0.0.1") -> EmbeddedHub:
    """Start a hub on `db_path` that accepts `token` for read and write, signing attestations
    with the key in SIGNING_KEY_FILE beside the database (made, mode 0600, when missing).

    Raises HubUnavailable (FastAPI, uvicorn or what they need cannot be imported), StoreError
    (unusable database), SigningKeyError (an unusable key file), TokenConfigError (token not
    token68) or RuntimeError (the server did not come up).
    """
    # Imported here: the harness pays for FastAPI and uvicorn only when it asks for a hub.
    try:
        from policy_hub.app import create_app
        from policy_hub.server import listen_socket, make_server, url_of
    except ImportError as exc:
        raise HubUnavailable(missing_module_message(exc)) from exc
    from policy_hub.attest import load_signing_key
    from policy_hub.auth import WRITE, TokenEntry, Tokens, parse_token_env
    from policy_hub.sqlite_store import SqliteStore

    (checked,) = parse_token_env(f"write:{token}")  # TokenConfigError unless token68
    # Its records say they came from the embedded hub: {"kind": "token", "label": "local"}.
    tokens = Tokens(entries=(TokenEntry(WRITE, checked.token, None, EMBEDDED_LABEL),))
    signer = load_signing_key(Path(db_path).parent / SIGNING_KEY_FILE)
    store = SqliteStore(Path(db_path))
    store.initialize()
    store.add_key(signer.jwk)
    sock = listen_socket(host, 0)
    url = url_of(sock)
    # log_config=None leaves the host process's logging setup alone.
    server = make_server(
        create_app(store, tokens, signer=signer),
        log_level="warning",
        access_log=False,
        log_config=None,
    )
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # SystemExit included: uvicorn exits on start-up failure
            failure.append(exc)
        finally:
            sock.close()

    thread = threading.Thread(target=run, name="policy-hub-embedded", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(5)
            reason = repr(failure[0]) if failure else "did not start in time"
            raise RuntimeError(f"embedded policy hub failed to start: {reason}")
        time.sleep(0.01)
    return EmbeddedHub(url, server, thread)
