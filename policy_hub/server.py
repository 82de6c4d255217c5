"""Running the app under uvicorn on a socket we bind ourselves, so port 0, a taken port and
the "listening" moment are all under our control (shared by the CLI and the embedded hub).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import uvicorn


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket (port 0 = any free port); OSError when the port is taken."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        # Lets a restarted hub rebind a port in TIME_WAIT; a listening owner still blocks it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket, scheme: str = "http") -> str:
    host, port = sock.getsockname()[:2]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


class HubServer(uvicorn.Server):
    """uvicorn.Server that reports the moment it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None] | None = None):
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._on_started is not None:
            self._on_started()


def make_server(
    app: Any,
    *,
    log_level: str,
    access_log: bool,
    log_config: dict[str, Any] | None,
    on_started: Callable[[], None] | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> HubServer:
    """`tls_cert`/`tls_key` (PEM files) make it serve HTTPS instead of HTTP."""
    config = uvicorn.Config(
        app,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        log_level=log_level,
        access_log=access_log,
        log_config=log_config,
        lifespan="on",
        # A slow (fault-injected) request must not hold a SIGTERM forever.
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    return HubServer(config, on_started)
