"""The cost of one trusted-publishing exchange (docs/contract.md section 9): the JWT checks alone
in-process (`policy_hub.oidc.verify_jwt`, RS256 and ES256), `POST /auth/oidc` against a real hub
process on loopback (SQLite or a PostgreSQL URL: verify, jti insert, mint), and the harness's
whole exchange (`publisher.hub.oidc.OidcExchange`: the runner's ID token, then the hub).

    python bench/oidc_exchange.py [--n 200] [--db postgresql://...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from common import machine_facts, print_table  # noqa: E402

from policy_hub.oidc import IssuerKeys, verify_jwt  # noqa: E402
from policy_hub.publishers import load_publishers  # noqa: E402
from publisher.hub.oidc import OidcExchange  # noqa: E402
from tests.hubprocess import HubProcess  # noqa: E402
from tests.oidcissuer import RunnerTokenEndpoint, TestIssuer  # noqa: E402


def timed(n: int, step: Callable[[int], None]) -> list[float]:
    """Milliseconds of each of n calls (after one warm-up call)."""
    step(-1)
    times = []
    for i in range(n):
        started = time.perf_counter()
        step(i)
        times.append((time.perf_counter() - started) * 1000)
    return times


def row(what: str, times: list[float]) -> tuple[str, ...]:
    ordered = sorted(times)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return (what, str(len(times)), f"{statistics.median(times):.2f}", f"{p95:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--db", help="a postgresql:// URL (default: a SQLite file)")
    args = parser.parse_args()
    print(machine_facts())
    rows = []
    with tempfile.TemporaryDirectory() as tmp, TestIssuer() as issuer:
        folder = Path(tmp)
        file = issuer.publishers_file(folder / "publishers.yaml")
        trust = load_publishers(file)
        keys = {name: IssuerKeys(config) for name, config in trust.issuers.items()}
        for alg in ("RS256", "ES256"):
            tokens = [issuer.token(alg=alg) for _ in range(args.n + 1)]
            rows.append(
                row(
                    f"verify_jwt, {alg} (in-process)",
                    timed(args.n, lambda i, t=tokens: verify_jwt(t[i], trust, keys)),
                )
            )
        hub_args = ("--publishers", str(file), "--no-access-log")
        with HubProcess(folder / "hub", db=args.db, extra_args=hub_args) as hub:
            session = requests.Session()
            engine = "PostgreSQL" if args.db else "SQLite"
            for alg in ("RS256", "ES256"):
                tokens = [issuer.token(alg=alg) for _ in range(args.n + 1)]

                def post(i: int, tokens: list[str] = tokens) -> None:
                    answer = session.post(f"{hub.url}/auth/oidc", json={"token": tokens[i]})
                    if answer.status_code != 200:
                        raise SystemExit(f"exchange refused: {answer.text}")

                rows.append(row(f"POST /auth/oidc, {alg}, {engine}", timed(args.n, post)))
            with RunnerTokenEndpoint(lambda aud: issuer.token(aud=aud)) as runner:
                exchange = OidcExchange(hub.url, "policy-hub", runner.env)
                rows.append(
                    row(
                        f"the harness's exchange (runner + hub), {engine}",
                        timed(args.n, lambda i: exchange.exchange()),
                    )
                )
    print_table(("what", "n", "median ms", "p95 ms"), rows)


if __name__ == "__main__":
    main()
