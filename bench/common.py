"""Shared machinery of the benchmark scripts: policy repositories of N versions made fast (files
written directly, one git commit), the reference hub as a real process with injected latency, and
`python -m pytest` runs measured for wall time and peak memory (controller and whole tree).
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests
import yaml

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = Path(os.environ.get("POLICYHUB_BENCH_DIR", "/tmp/policyhub-bench"))
# The hub's SQLite file lives in RAM: with it on disk every POST also waits for two fsyncs, a
# cost of the disk and the hub, not of the harness (the injected latency models the hub).
HUB_DIR = Path("/dev/shm/policyhub-bench-hub") if Path("/dev/shm").is_dir() else None
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}
PYPROJECT = '[tool.pytest.ini_options]\ntestpaths = ["policies"]\njunit_family = "xunit1"\n'
GITIGNORE = ".policyhub-local/\n__pycache__/\n.pytest_cache/\n"
LISTENING_PREFIX = "policy-hub listening on "
RELEASE_SHA_STAMP = "2026-01-01T00:00:00Z"


def policy_name(index: int) -> str:
    return f"bench-policy-{index:05d}"


# Conditions of the `behaviour` repositories (docs/contract.md section 8): policies of one
# organisation share most rule texts, as their versions do, so a text recurs (the compile cache's
# case).
CONDITIONS = (
    "params.tag in resource.tags",
    "has(resource.encryption) && resource.encryption.enabled == true",
    "resource.acl.all(g, g.grantee != 'allUsers')",
    "size(resource.name) <= 63 && resource.name.matches('^[a-z0-9-]+$')",
    "!has(resource.labels) || !('public' in resource.labels)",
    "resource.versioning == true || params.tag == 'scratch'",
)
# The `kubernetes` variant (issue 25's speed target): half the rules use Kubernetes' libraries
# (quantity, url, cidr, semver, optional types, two-variable comprehensions), half are the
# CONDITIONS above, and every target kind has a schema in resource-schemas/ (typed resources).
KUBERNETES_CONDITIONS = (
    "quantity(resource.size).isLessThan(quantity('2Ti'))",
    "url(resource.endpoint).getScheme() == 'https'",
    "resource.?labels[?'public'].orValue('0') == '0'",
    "cidr('10.0.0.0/8').containsIP(resource.address) || params.tag == 'scratch'",
    "semver(resource.engine).isGreaterThan(semver('1.2.0'))",
    "resource.tags.all(k, v, k.size() < 64 && v.size() < 256)",
)
KUBERNETES_SCHEMAS = {
    "storage.bucket": {
        "type": "object",
        "required": ["kind"],
        "additionalProperties": False,
        "properties": {
            "kind": {"type": "string"},
            "name": {"type": "string"},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "versioning": {"type": "boolean"},
            "encryption": {"type": "object", "properties": {"enabled": {"type": "boolean"}}},
            "acl": {
                "type": "array",
                "items": {"type": "object", "properties": {"grantee": {"type": "string"}}},
            },
            "size": {"type": "string"},
            "endpoint": {"type": "string"},
            "address": {"type": "string"},
            "engine": {"type": "string"},
        },
    },
    "compute.instance": {"type": "object", "properties": {"kind": {"type": "string"}}},
}
KUBERNETES_TESTS = """\
cases:
  - name: compliant bucket
    resource: {kind: storage.bucket, name: b-%(i)d, tags: {t%(i)d: x}, versioning: true,
               encryption: {enabled: true}, acl: [{grantee: team}], size: 1Gi,
               endpoint: "https://b.example", address: 10.1.2.3, engine: 1.3.0}
    expect: pass
  - name: a bucket without anything
    resource: {kind: storage.bucket, name: "B %(i)d", tags: {%(long)s: x}, versioning: false,
               encryption: {enabled: false}, acl: [{grantee: allUsers}], labels: {public: "1"},
               size: 3Ti, endpoint: "http://b.example", address: 192.168.0.1, engine: 1.0.0}
    expect: {%(fails)s}
  - name: another kind is skipped
    resource: {kind: compute.instance}
    expect: {%(skips)s}
"""
BEHAVIOUR_TESTS = """\
cases:
  - name: compliant bucket
    resource: {kind: storage.bucket, name: b-%(i)d, tags: {t%(i)d: x}, versioning: true,
               encryption: {enabled: true}, acl: [{grantee: team}]}
    expect: pass
  - name: a bucket without anything
    resource: {kind: storage.bucket, name: "B %(i)d", tags: {}, versioning: false,
               encryption: {enabled: false}, acl: [{grantee: allUsers}], labels: {public: "1"}}
    expect: {%(fails)s}
  - name: another kind is skipped
    resource: {kind: compute.instance}
    expect: {%(skips)s}
"""


def policy_files(index: int, behaviour: bool = False, kubernetes: bool = False) -> tuple[str, str]:
    """metadata.json and policy-definition.yaml of a realistic, valid policy (distinct content);
    with `behaviour`, 1-3 CEL rules of the shared CONDITIONS instead of three alike; with
    `kubernetes`, every other rule one of KUBERNETES_CONDITIONS."""
    name = policy_name(index)
    meta = {
        "name": name,
        "version": "1.0.0",
        "title": f"Benchmark policy {index}",
        "description": f"Resources of kind {index % 17} carry the tag t{index}.",
        "owner": "platform-security",
        "tags": ["bench", f"group-{index % 10}"],
    }
    definition = {
        "apiVersion": "policyhub/v1",
        "kind": "PolicyDefinition",
        "spec": {
            "severity": ("low", "medium", "high", "critical")[index % 4],
            "enforcement": "deny",
            "targets": [{"kind": "storage.bucket"}],
            "parameters": {
                "tag": {"type": "string", "default": f"t{index}", "description": "the tag"}
            },
            "rules": [
                {
                    "id": f"rule-{r}",
                    "description": f"Rule {r} of policy {index}",
                    "condition": "params.tag in resource.tags",
                }
                for r in range(3)
            ],
        },
    }
    if behaviour:
        definition["spec"]["rules"] = [
            {
                "id": f"rule-{r}",
                "description": f"Rule {r} of policy {index}",
                "condition": _condition(index, r, kubernetes),
            }
            for r in range(index % 3 + 1)
        ]
    return json.dumps(meta, indent=2) + "\n", yaml.safe_dump(definition, sort_keys=False)


def _condition(index: int, rule: int, kubernetes: bool) -> str:
    if kubernetes and (index + rule) % 2:
        return KUBERNETES_CONDITIONS[(index + rule) // 2 % len(KUBERNETES_CONDITIONS)]
    return CONDITIONS[(index + rule) % len(CONDITIONS)]


def behaviour_tests(index: int, kubernetes: bool = False) -> str:
    """The tests.yaml of a `behaviour` version: every rule passes, fails and is skipped."""
    rules = [f"rule-{r}" for r in range(index % 3 + 1)]
    return (KUBERNETES_TESTS if kubernetes else BEHAVIOUR_TESTS) % {
        "i": index,
        "long": "k" * 70,
        "fails": ", ".join(f"{r}: fail" for r in rules),
        "skips": ", ".join(f"{r}: skip" for r in rules),
    }


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def _digest(meta_text: str, definition_text: str) -> str:
    from policy_checks import policy_digest

    return policy_digest(json.loads(meta_text), yaml.load(definition_text, Loader=yaml.CSafeLoader))


def make_repo(
    path: Path,
    n: int,
    *,
    delivered: bool = False,
    behaviour: bool = False,
    kubernetes: bool = False,
) -> Path:
    """A git repository with `n` policy versions in one commit.

    `behaviour=True` gives them 1-3 CEL rules each and a 3-case tests.yaml on every other one;
    `kubernetes=True` (with it) half of those rules Kubernetes' libraries, and resource-schemas/.

    `delivered=True` also records all of them in `.state/delivered.json` and sets
    `.state/baseline.sha` to HEAD (in a second commit), so a release has nothing to do.
    """
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    # A background `gc --auto` after the big commit would move objects under a running `cp`.
    git(path, "config", "gc.auto", "0")
    (path / "pyproject.toml").write_text(PYPROJECT)
    (path / ".gitignore").write_text(GITIGNORE)
    state = path / ".state"
    state.mkdir()
    records: dict[str, dict[str, dict[str, str]]] = {}
    for index in range(n):
        folder = path / "policies" / policy_name(index) / "v1.0.0"
        folder.mkdir(parents=True)
        meta_text, definition_text = policy_files(index, behaviour, kubernetes)
        (folder / "metadata.json").write_text(meta_text)
        (folder / "policy-definition.yaml").write_text(definition_text)
        if behaviour and index % 2 == 0:
            (folder / "tests.yaml").write_text(behaviour_tests(index, kubernetes))
    if kubernetes:
        schemas = path / "resource-schemas"
        schemas.mkdir()
        for kind, schema in KUBERNETES_SCHEMAS.items():
            (schemas / f"{kind}.json").write_text(json.dumps(schema, indent=2) + "\n")
        if delivered:
            records[policy_name(index)] = {
                "1.0.0": {
                    "delivered_at": RELEASE_SHA_STAMP,
                    "release_sha": "0" * 40,
                    "digest": _digest(meta_text, definition_text),
                    "outcome": "published",
                }
            }
    text = json.dumps({"version": 1, "policies": records}, sort_keys=True, indent=2) + "\n"
    (state / "delivered.json").write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", f"{n} policies")
    if delivered:
        (state / "baseline.sha").write_text(git(path, "rev-parse", "HEAD") + "\n")
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "state")
    # Packed, as a clone is (actions/checkout): in loose objects `git ls-tree -l` and
    # `cat-file --batch` of 1000 versions cost ~10x more, which no policy repository's CI pays.
    git(path, "repack", "-adq")
    (path / TEMPLATE_MARK).write_text("packed\n")
    return path


def cached_repo(
    workdir: Path,
    n: int,
    *,
    delivered: bool = False,
    behaviour: bool = False,
    kubernetes: bool = False,
) -> Path:
    """A fresh copy of a generated repository (generated once per N and kind, then copied)."""
    kind = "behaviour" if behaviour else ("delivered" if delivered else "new")
    kind = "kubernetes" if kubernetes else kind
    template = workdir / "templates" / f"{kind}-{n}"
    if not (template / TEMPLATE_MARK).is_file():
        make_repo(template, n, delivered=delivered, behaviour=behaviour, kubernetes=kubernetes)
    copy = workdir / "runs" / f"{kind}-{n}-{secrets.token_hex(3)}"
    copy.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(template), str(copy)], check=True)
    _COPIES.append(copy)
    return copy


# A template made by this version of make_repo (an older one has loose objects); ignored by git.
TEMPLATE_MARK = ".git/policyhub-bench-template"
_COPIES: list[Path] = []  # the run copies of this script, removed when it exits


@atexit.register
def _remove_copies() -> None:
    for copy in _COPIES:
        shutil.rmtree(copy, ignore_errors=True)


class Hub:
    """`python -m policy_hub serve` on port 0 with a fresh database and injected latency; `db`
    (a PostgreSQL URL) instead of the SQLite file, `token` to share one with another process;
    `source` a folder holding an earlier commit's packages to run instead (hub_engines.py
    --baseline; a hub from before attestations takes no --signing-key)."""

    def __init__(
        self,
        workdir: Path,
        latency_ms: int,
        db: str | None = None,
        token: str | None = None,
        source: Path | None = None,
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        for old in workdir.glob("hub.sqlite3*"):
            old.unlink()
        self.token = token or "w-" + secrets.token_urlsafe(24)
        (workdir / "tokens").write_text(f"write {self.token}\n")
        database = db or str(workdir / "hub.sqlite3")
        cmd = [sys.executable, "-m", "policy_hub", "serve", "--db", database]
        cmd += ["--port", "0", "--token-file", str(workdir / "tokens"), "--no-access-log"]
        if source is None:
            cmd += ["--signing-key", str(workdir / "signing-key.pem")]
        cmd += ["--log-level", "warning"]
        env = dict(os.environ)
        if source is not None:
            env["PYTHONPATH"] = str(source)
        if latency_ms:
            cmd += ["--inject-faults", f"latency_ms={latency_ms}"]
        self.stdout = workdir / "hub.stdout"
        with open(self.stdout, "wb") as out, open(workdir / "hub.stderr", "wb") as err:
            self.process = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
                # `-m` puts the working directory first on sys.path: the baseline's, not ours.
                cwd=source,
            )
        self.url = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            for line in self.stdout.read_text().splitlines():
                if line.startswith(LISTENING_PREFIX):
                    self.url = line[len(LISTENING_PREFIX) :].strip()
                    self._warm_up()
                    return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"hub did not start: {(workdir / 'hub.stderr').read_text()}")

    def _warm_up(self) -> None:
        """A hub is a long-running service: its first requests after start pay lazy set-up
        (~20 ms) that no release meets. One GET and one refused POST (nothing is stored)."""
        auth = {"Authorization": f"Bearer {self.token}"}
        requests.get(f"{self.url}/policies/warm-up/1.0.0", headers=auth, timeout=10)
        requests.post(
            f"{self.url}/policies",
            json={"name": "warm-up"},
            headers={**auth, "Idempotency-Key": "warm-up"},
            timeout=10,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def count(self) -> int:
        import sqlite3

        conn = sqlite3.connect(self.workdir / "hub.sqlite3")
        try:
            return int(conn.execute("SELECT COUNT(*) FROM policies").fetchone()[0])
        finally:
            conn.close()


@contextmanager
def running_hub(workdir: Path, latency_ms: int) -> Iterator[Hub]:
    hub = Hub(HUB_DIR or workdir, latency_ms)
    try:
        yield hub
    finally:
        hub.stop()


@dataclass
class Measurement:
    wall: float
    returncode: int
    controller_peak_mb: float  # VmHWM of the pytest process itself
    tree_peak_mb: float  # largest sum of RSS over the pytest process and its descendants
    output: str

    def last_line(self) -> str:
        lines = [line for line in self.output.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.extend(int(c) for c in handle.read().split())
    except OSError:
        pass
    return found


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(
    args: Sequence[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 1800
) -> Measurement:
    """Run a command, sampling /proc every 20 ms for peak memory; returns the figures."""
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICY_HUB", "GITHUB_"))}
    run_env.pop("CI", None)
    run_env.update(GIT_ENV)
    run_env.update(env or {})
    if not run_env.get("PYTHONDONTWRITEBYTECODE"):
        run_env.pop("PYTHONDONTWRITEBYTECODE", None)
    out_path = cwd.parent / f".{cwd.name}.out"
    with open(out_path, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(args), cwd=cwd, env=run_env, stdout=out, stderr=subprocess.STDOUT
        )
        peaks = {"controller": 0, "tree": 0}
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peaks["controller"] = max(peaks["controller"], _status_kb(proc.pid, "VmHWM"))
                pids, stack = [], [proc.pid]
                while stack:
                    pid = stack.pop()
                    pids.append(pid)
                    stack.extend(_children(pid))
                tree = sum(_status_kb(pid, "VmRSS") for pid in pids)
                peaks["tree"] = max(peaks["tree"], tree)
                done.wait(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            returncode = proc.wait(timeout)
        finally:
            wall = time.perf_counter() - start
            done.set()
            sampler.join()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = out_path.read_text(errors="replace")
    out_path.unlink()
    return Measurement(wall, returncode, peaks["controller"] / 1024, peaks["tree"] / 1024, output)


@dataclass(frozen=True)
class Env:
    """Which interpreter runs the harness, and whether it may cache bytecode."""

    python: str = sys.executable
    bytecode: bool = True  # False: PYTHONDONTWRITEBYTECODE=1 (every process re-compiles)

    def pytest_cmd(self, *args: str) -> list[str]:
        return [self.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {"PYTHONDONTWRITEBYTECODE": "" if self.bytecode else "1"}
        return {**env, **(extra or {})}


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="the smallest useful variant")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument(
        "--python",
        default=None,
        help="interpreter that runs the harness; default: a venv with only the runtime "
        "dependencies (what a policy repository's CI installs), made once under --workdir; "
        "`--python current` runs it with this interpreter",
    )
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="run with PYTHONDONTWRITEBYTECODE=1 (no .pyc cache, as in the dev container)",
    )


def env_from(args: argparse.Namespace) -> Env:
    if args.python == "current":
        python = sys.executable
    else:
        python = args.python or runtime_venv(args.workdir)
    print(f"harness interpreter: {python}")
    return Env(python=python, bytecode=not args.no_bytecode)


def runtime_venv(workdir: Path) -> str:
    """The python of a venv holding the harness and its runtime dependencies only, made once per
    pyproject.toml (the dev venv also loads hypothesis', schemathesis' and anyio's pytest plugins
    into every xdist worker, which a policy repository's CI does not). The hub keeps running
    from this interpreter, which has the hub extra."""
    stamp = hashlib.sha256((PROJECT / "pyproject.toml").read_bytes()).hexdigest()[:12]
    venv = workdir / f"runtime-venv-{stamp}"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"making {venv} (pip install -e {PROJECT}, runtime dependencies only)...")
        subprocess.run([sys.executable, "-m", "venv", str(venv) + ".tmp"], check=True)
        pip = [str(venv) + ".tmp/bin/python", "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "-e", str(PROJECT)], check=True)
        os.replace(str(venv) + ".tmp", venv)
    return str(python)


def machine_facts() -> str:
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.system()} {platform.release()} · "
        f"{cpu} · nproc {nproc} · {mem_gib:.0f} GiB · Python {platform.python_version()}"
    )


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A Markdown table, so results paste straight into docs/benchmarks.md."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    sys.stdout.flush()
