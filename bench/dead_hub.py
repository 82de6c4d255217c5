"""Scenario: a release against a hub that is not there, with the DEFAULT limits (the README's
table), to measure what a dead hub costs: N new versions, `-n W`, against (a) a socket that accepts
connections and never answers, (b) a port where nothing listens. The issue's figures: (a) within
4 minutes, (b) within 2 minutes, whatever N; exit 1, nothing recorded, baseline held.

    python bench/dead_hub.py                  # N = 40, -n 4
    python bench/dead_hub.py --n 1000
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import add_common_args, cached_repo, env_from, machine_facts, print_table, run_measured


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
        for kind, url, bound in (
            ("never answers", silent_url, 240),
            ("nothing listens", closed_port(), 120),
        ):
            repo = cached_repo(workdir, n)
            cmd = env.pytest_cmd("--release", "-n", str(args.workers), "--hub-url", url)
            m = run_measured(cmd, repo, env=env.environ({"POLICY_HUB_TOKEN": "bench"}))
            baseline_held = not (repo / ".state" / "baseline.sha").exists()
            ok = m.returncode == 1 and "did not answer" in m.output and baseline_held
            failed |= not ok
            rows.append(
                [
                    n,
                    args.workers,
                    kind,
                    f"{m.wall:.1f}",
                    bound,
                    "ok" if ok else f"FAILED (exit {m.returncode}): {m.last_line()}",
                ]
            )
        silent.close()
    print(machine_facts())
    print_table(["N", "-n", "hub", "wall s", "bound s", "check"], rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
