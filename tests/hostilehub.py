"""A hostile or broken Policy Hub on loopback, for black-box tests of the harness's distrust.

Each request is matched against scripted `Rule`s (method and path pattern); the first match
decides the answer: a status and body of any kind (HTML, a list, a record with a poisoned digest),
the request's own `Authorization` header echoed back, an answer dripped a byte at a time, or a
connection accepted and never answered. A request no rule matches is forwarded to `upstream` (a
real `policy-hub serve`, whose SQLite file stays the truth) or answered 404.

    with HostileHub([Rule("GET", "/policies/", 200, b"<html>login</html>")], upstream=hub.url) as h:
        repo.pytest("--release", env={"POLICY_HUB_URL": h.url, ...})
        h.requests  # [(method, path), ...] as received
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import requests

ECHO_AUTH = object()  # as a body: the request's Authorization header, echoed in a JSON detail


@dataclass
class Rule:
    method: str
    path: str  # a regular expression searched in the request path
    status: int = 200
    body: Any = b""  # bytes as they are; anything else as JSON; ECHO_AUTH echoes the token
    headers: tuple[tuple[str, str], ...] = ()
    drip_seconds: float = 0.0  # > 0: send the answer one byte per this many seconds
    silent: bool = False  # accept the request and never answer (until the hub stops)
    times: int | None = None  # match at most this many times (None: always)

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        return self.method == method and re.search(self.path, path) is not None


class HostileHub:
    """A ThreadingHTTPServer on 127.0.0.1, port 0, in a daemon thread of the test process."""

    def __init__(self, rules: list[Rule], upstream: str | None = None) -> None:
        self.rules = rules
        self.upstream = upstream
        self.requests: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                hub._answer(self)

            def do_POST(self) -> None:
                hub._answer(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _rule_for(self, method: str, path: str) -> Rule | None:
        with self._lock:
            self.requests.append((method, path))
            for rule in self.rules:
                if rule.matches(method, path):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule
        return None

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        data = handler.rfile.read(length) if length else b""
        rule = self._rule_for(handler.command, handler.path)
        if rule is None:
            status, body, headers = self._forward(handler, data)
        else:
            if rule.silent:
                self._stop.wait(600)
                return
            status, headers = rule.status, list(rule.headers)
            if rule.body is ECHO_AUTH:
                echoed = handler.headers.get("Authorization", "")
                body = json.dumps({"detail": f"rejected request with {echoed}"}).encode()
            elif isinstance(rule.body, bytes):
                body = rule.body
            else:
                body = json.dumps(rule.body).encode()
            if rule.drip_seconds:
                self._drip(handler, status, headers, body, rule.drip_seconds)
                return
        handler.send_response(status)
        for key, value in headers:
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        handler.wfile.write(body)

    def _drip(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        seconds: float,
    ) -> None:
        head = f"HTTP/1.1 {status} Slow\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        try:
            for byte in head.encode() + body:
                if self._stop.wait(seconds):
                    return
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
        except OSError:
            pass  # the client gave up, as it should

    def _forward(
        self, handler: BaseHTTPRequestHandler, data: bytes
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        if self.upstream is None:
            return 404, json.dumps({"detail": "not found"}).encode(), []
        keep = ("Authorization", "Idempotency-Key", "Content-Type")
        answer = requests.request(
            handler.command,
            self.upstream + handler.path,
            data=data or None,
            headers={k: handler.headers[k] for k in keep if handler.headers.get(k)},
            timeout=30,
            allow_redirects=False,
        )
        return answer.status_code, answer.content, []

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HostileHub:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SilentListener:
    """A socket that accepts connections (the kernel's backlog does) and never reads or answers."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(512)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> SilentListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def free_port_url() -> str:
    """A loopback URL where nothing listens (a port just released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    time.sleep(0.01)
    return f"http://127.0.0.1:{port}"
