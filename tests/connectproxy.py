"""A small forward proxy on loopback for tests of `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`: CONNECT
tunnels (HTTPS) and absolute-URI requests (plain HTTP), each recorded so a test can prove the
harness's traffic went through it.

    with ConnectProxy() as proxy:
        env = {"HTTPS_PROXY": proxy.url}
        ...
        assert proxy.tunnels == ["127.0.0.1:43121"]
"""

from __future__ import annotations

import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class ConnectProxy:
    def __init__(self) -> None:
        self.tunnels: list[str] = []  # host:port of every CONNECT
        self.forwarded: list[str] = []  # absolute URIs of every plain request
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_CONNECT(self) -> None:
                proxy.tunnels.append(self.path)
                host, _, port = self.path.rpartition(":")
                try:
                    upstream = socket.create_connection((host, int(port)), timeout=10)
                except OSError:
                    self.send_error(502)
                    return
                self.send_response(200, "Connection established")
                self.end_headers()
                _pipe(self.connection, upstream)

            def _plain(self) -> None:
                proxy.forwarded.append(self.path)
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with socket.create_connection((parts.hostname, parts.port or 80), 10) as up:
                    path = parts.path + (f"?{parts.query}" if parts.query else "")
                    head = f"{self.command} {path} HTTP/1.0\r\n"
                    for key, value in self.headers.items():
                        if key.lower() not in ("proxy-connection", "connection"):
                            head += f"{key}: {value}\r\n"
                    up.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)
                    while chunk := up.recv(65536):
                        self.wfile.write(chunk)
                self.close_connection = True

            do_GET = _plain
            do_POST = _plain

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ConnectProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pipe(client: socket.socket, upstream: socket.socket) -> None:
    sockets = [client, upstream]
    try:
        while True:
            readable, _, broken = select.select(sockets, [], sockets, 30)
            if broken or not readable:
                return
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (upstream if sock is client else client).sendall(data)
    finally:
        upstream.close()
