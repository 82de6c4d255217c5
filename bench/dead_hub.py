"""Scenario: a release against a hub that is not there, with the DEFAULT limits (the README's
table), to measure what a dead hub costs: N new versions, `-n W`, against (a) a socket that accepts
connections and never answers, (b) a port where nothing listens, (c) a hub in an outage that still
answers (every request `503`, as the reference hub does while its database is down; docs/contract.md
section 3, "Every wait is bounded": once one request got only 5xx/429 on every try, the hub is
down). The bounds: (a) within 4 minutes, (b) and (c) within 2 minutes (one request deadline),
whatever N; exit 1, nothing recorded, baseline held. The requests column counts what (c) received.

    python bench/dead_hub.py                  # N = 40, -n 4
    python bench/dead_hub.py --n 40 200
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import add_common_args, cached_repo, env_from, machine_facts, print_table, run_measured

BODY = b'{"detail": "database unavailable"}'


class AlwaysUnavailable(ThreadingHTTPServer):
    """Answers every request `503` with a JSON detail, and counts them."""

    daemon_threads = True

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self) -> None:
                with server.lock:
                    server.count += 1
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                self.wfile.write(BODY)

            do_GET = do_POST = _answer

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


def silent_socket() -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)  # the kernel completes handshakes; nobody ever reads or answers
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def closed_port() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, nargs="+", default=[40])
    parser.add_argument("--workers", type=int, default=4)
    add_common_args(parser)
    args = parser.parse_args()
    env = env_from(args)
    workdir = Path(args.workdir)
    rows, failed = [], False
    for n in args.n:
        silent, silent_url = silent_socket()
        failing = AlwaysUnavailable()
        for kind, url, bound in (
            ("never answers", silent_url, 240),
            ("nothing listens", closed_port(), 120),
            ("answers 503", failing.url, 120),
        ):
            repo = cached_repo(workdir, n)
            cmd = env.pytest_cmd("--release", "-n", str(args.workers), "--hub-url", url)
            m = run_measured(cmd, repo, env=env.environ({"POLICY_HUB_TOKEN": "bench"}))
            baseline_held = not (repo / ".state" / "baseline.sha").exists()
            said = "did not answer" in m.output or kind == "answers 503"
            ok = m.returncode == 1 and said and baseline_held
            failed |= not ok
            rows.append(
                [
                    n,
                    args.workers,
                    kind,
                    f"{m.wall:.1f}",
                    bound,
                    failing.count if kind == "answers 503" else "",
                    "ok" if ok else f"FAILED (exit {m.returncode}): {m.last_line()}",
                ]
            )
        silent.close()
        failing.shutdown()
    print(machine_facts())
    print_table(["N", "-n", "hub", "wall s", "bound s", "requests", "check"], rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
