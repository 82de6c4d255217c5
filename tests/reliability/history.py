"""Seeded random release histories: commits of every kind (new versions, edits, invalid policies,
fixes, deletions, rewritten history under the baseline) interleaved with releases against a real
hub with random faults and random SIGKILLs, the invariants checked after every release.

One seed gives one history, step for step: a failure message names the seed and the steps.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

import yaml

from policy_checks import policy_digest
from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo, definition, metadata
from tests.reliability.invariants import (
    StateSnapshot,
    Violations,
    baseline_covers,
    check_step,
    creation_count,
    creations,
    hub_records,
    injected_refusals,
    replays,
    version_folders_at,
)
from tests.reliability.runs import ReleaseRun, install_conftest, start_release

NAMES = ("alpha", "beta", "gamma", "delta", "epsilon")
# Injected slow answers sleep past this read timeout, so the client gives up and retries.
READ_TIMEOUT = 1.0
SLOW_MS = 1500
STEP_WEIGHTS = {
    "new": 5,
    "edit": 2,
    "invalid": 2,
    "fix": 2,
    "delete": 1,
    "rewrite": 1,
    "release": 6,
}
BREAKAGES = ("name-mismatch", "yaml-syntax", "missing-file", "unquoted-version")


class HistoryFailure(AssertionError):
    """An invariant broke; the message carries the seed and the steps so far."""


class History:
    """One repository, one hub database, one seeded sequence of steps."""

    def __init__(self, seed: int, workdir: Path) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.repo = PolicyRepo(workdir / "repo")
        install_conftest(self.repo)
        with open(self.repo.path / ".gitignore", "a") as ignore:
            ignore.write(".state/.*.tmp\n")  # a run killed mid-write may leave its temp file
        # Keeps policies/ present when a history deletes every version.
        self.repo.write("policies/README.md", "Policies of a randomised history.\n")
        self.repo.commit("empty policy repository")
        self.hub = HubProcess(workdir / "hub")
        self.valid: dict[tuple[str, str], tuple[str, ...]] = {}
        # Every content a version had, so an edit in place can be undone (section 3, step 3).
        self.written: dict[tuple[str, str], list[tuple[str, ...]]] = {}
        self.invalid: set[tuple[str, str]] = set()
        self.next_minor: Counter[str] = Counter()
        self.steps: list[str] = []
        self.counts: Counter[str] = Counter()
        self.state = StateSnapshot.read(self.repo)

    # -- running -------------------------------------------------------------------------

    def run(self, steps: int) -> Counter[str]:
        try:
            for _ in range(steps):
                kind = self.rng.choices(list(STEP_WEIGHTS), list(STEP_WEIGHTS.values()))[0]
                getattr(self, f"step_{kind.replace('-', '_')}")()
            self.final_release()
        finally:
            self.hub.stop()
        self.counts["histories"] = 1
        self.counts["creations"] = creation_count(self.hub.db_path)
        self.counts["replayed_posts"] = replays(self.hub.db_path)
        for status, count in injected_refusals(self.hub.workdir).items():
            self.counts[f"injected_{status}"] = count
        return self.counts

    def fail(self, problem: str) -> HistoryFailure:
        steps = "\n  ".join(self.steps)
        return HistoryFailure(f"seed {self.seed}: {problem}\nsteps:\n  {steps}")

    def note(self, text: str) -> None:
        self.steps.append(text)
        self.counts[f"step_{text.split()[0]}"] += 1

    # -- commits -------------------------------------------------------------------------

    def _new_key(self) -> tuple[str, str]:
        name = self.rng.choice(NAMES)
        self.next_minor[name] += 1
        return name, f"1.{self.next_minor[name]}.0"

    def _write_valid(self, key: tuple[str, str]) -> None:
        rules = tuple(f"rule-{self.rng.randrange(1000)}" for _ in range(self.rng.randint(1, 3)))
        rules = tuple(dict.fromkeys(rules))
        self.repo.add_policy(*key, rule_ids=rules)
        self.valid[key] = rules
        self.written.setdefault(key, []).append(rules)
        self.invalid.discard(key)

    def step_new(self) -> None:
        keys = [self._new_key() for _ in range(self.rng.randint(1, 3))]
        for key in keys:
            self._write_valid(key)
        self.repo.commit(f"add {keys}")
        self.note("new " + " ".join(f"{n}@{v}" for n, v in keys))

    def step_edit(self) -> None:
        if not self.valid:
            return self.step_new()
        key = self.rng.choice(sorted(self.valid))
        self._write_valid(key)  # in place: a delivered version must never be republished
        self.repo.commit(f"edit {key}")
        self.note(f"edit {key[0]}@{key[1]}")
        return None

    def step_invalid(self) -> None:
        key = self._new_key()
        breakage = self.rng.choice(BREAKAGES)
        name, version = key
        folder = self.repo.add_policy(name, version)
        if breakage == "name-mismatch":
            self.repo.add_policy(name, version, meta=metadata(f"{name}-x", version))
        elif breakage == "yaml-syntax":
            (folder / "policy-definition.yaml").write_text("spec: [unclosed\n")
        elif breakage == "missing-file":
            (folder / "metadata.json").unlink()
        else:
            text = yaml.safe_dump(definition(), sort_keys=False)
            (folder / "policy-definition.yaml").write_text(text)
            (folder / "metadata.json").write_text(
                f'{{"name": "{name}", "version": 1.1, "description": "d", "owner": "o"}}'
            )
        self.invalid.add(key)
        self.repo.commit(f"add broken {key}")
        self.note(f"invalid {name}@{version} ({breakage})")

    def step_fix(self) -> None:
        if not self.invalid:
            return self.step_invalid()
        key = self.rng.choice(sorted(self.invalid))
        self._write_valid(key)
        self.repo.commit(f"fix {key}")
        self.note(f"fix {key[0]}@{key[1]}")
        return None

    def step_delete(self) -> None:
        present = sorted(set(self.valid) | self.invalid)
        if not present:
            return self.step_new()
        name, version = self.rng.choice(present)
        self.repo.git("rm", "-r", "-q", f"policies/{name}/v{version}")
        self.valid.pop((name, version), None)
        self.invalid.discard((name, version))
        self.repo.commit(f"delete {name}@{version}")
        self.note(f"delete {name}@{version}")
        return None

    def step_rewrite(self) -> None:
        """A force-push: the last commit is replaced, so a baseline pointing at it is orphaned."""
        if not self.repo.git("rev-parse", "--verify", "--quiet", "HEAD~1", check=False):
            return self.step_new()
        self.repo.git("reset", "--soft", "HEAD~1")
        self.repo.commit(f"rewritten {self.rng.random()}")
        self.note("rewrite HEAD (force-push)")
        return None

    # -- releases ------------------------------------------------------------------------

    def _faults(self) -> str:
        rng = self.rng
        return (
            f"rate_503={rng.choice((0.0, 0.1, 0.2, 0.3))},"
            f"rate_429={rng.choice((0.0, 0.1, 0.2))},retry_after={rng.choice((0, 1))},"
            f"drop_after_commit={rng.choice((0.0, 0.2, 0.4))},"
            f"latency_ms={rng.choice((0, 5, 50, 150))},"
            f"slow_rate={rng.choice((0.0, 0.0, 0.1))},slow_ms={SLOW_MS},"
            f"seed={rng.randrange(10**6)}"
        )

    def step_release(self, faults: str | None = "random", kill: bool | None = None) -> int:
        spec = self._faults() if faults == "random" else faults
        self.hub.restart(spec)
        xdist = ["-n", "2"] if self.rng.random() < 0.5 else []
        kill = self.rng.random() < 0.35 if kill is None else kill
        head = self.repo.head()
        env = {"RELIABILITY_READ_TIMEOUT": str(READ_TIMEOUT)}
        run = start_release(self.repo, self.hub, *xdist, extra_env=env)
        killed_at = ""
        if kill:
            killed_at = self._kill(run)
        result = run.wait(300)
        self.counts["releases"] += 1
        self.counts["kills"] += bool(killed_at)
        self.note(
            f"release {'-n 2 ' if xdist else ''}faults=[{spec or 'none'}]"
            + (f" KILLED {killed_at}" if killed_at else f" exit {result.returncode}")
        )
        crashed = "INTERNALERROR" in result.output or result.returncode not in (0, 1)
        if not killed_at and crashed:
            raise self.fail(f"release crashed (exit {result.returncode}):\n{result.output}")
        after, bad = check_step(self.repo, self.hub.db_path, self.state, head, self.steps[-1])
        if not killed_at and result.returncode == 0:
            bad.check(
                baseline_covers(self.repo, after.baseline, head),
                f"exit 0 but the baseline {after.baseline} does not cover {head}",
            )
        self._raise(bad, result.output)
        self.state = after
        # The run's state files become part of history, as --commit-state would make them.
        self.repo.commit("record release state")
        return result.returncode

    def _kill(self, run: ReleaseRun) -> str:
        """SIGKILL the run after a random delay or once the hub has created 1-3 versions."""
        if self.rng.random() < 0.5:
            delay = self.rng.uniform(0.5, 5.0)
            hit = run.kill_when(lambda: time.monotonic() - run.started >= delay, timeout=300)
            return f"after {delay:.1f}s" if hit else ""
        db = self.hub.db_path
        base = creation_count(db)
        wanted = self.rng.randint(1, 3)
        hit = run.kill_when(lambda: creation_count(db) >= base + wanted, timeout=300)
        return f"after {wanted} creation(s)" if hit else ""

    def _raise(self, bad: Violations, output: str) -> None:
        if bad:
            tail = output[-3000:]
            raise self.fail("\n".join(bad.found) + f"\n--- run output (tail) ---\n{tail}")

    def _undo_edits_of_delivered(self) -> None:
        """Restore each delivered version edited in place since to the content delivered: until
        then every release fails on it and the baseline stays (section 3, step 3)."""
        for key, entry in sorted(self.state.delivered.items()):
            if key not in self.valid:
                continue  # deleted since
            delivered = (entry["digest"], entry.get("hub_digest"))
            if _digest(key, self.valid[key]) in delivered:
                continue
            for rules in self.written.get(key, []):
                if _digest(key, rules) in delivered:
                    self.repo.add_policy(*key, rule_ids=rules)
                    self.valid[key] = rules
                    self.note(f"undo {key[0]}@{key[1]}")
                    break

    def final_release(self) -> None:
        """Fix everything, then one fault-free release must deliver everything outstanding."""
        for key in sorted(self.invalid):
            self._write_valid(key)
        self._undo_edits_of_delivered()
        self.repo.commit("fix everything")
        self.note("fix-all")
        head = self.repo.head()
        code = self.step_release(faults=None, kill=False)
        after = self.state
        outstanding = version_folders_at(self.repo, head) - set(after.delivered)
        records = hub_records(self.hub.db_path)
        lost = len(outstanding) + sum(1 for key in after.delivered if key not in records)
        duplicated = sum(count - 1 for count in creations(self.hub.db_path).values() if count > 1)
        self.counts["lost"] += lost
        self.counts["duplicated"] += duplicated
        self.counts["versions_delivered"] = len(after.delivered)
        problems = []
        if code != 0:
            problems.append(f"the fault-free release exited {code}")
        if not baseline_covers(self.repo, after.baseline, head):
            problems.append(f"the fault-free release left the baseline at {after.baseline}")
        if outstanding:
            problems.append(f"never delivered: {sorted(outstanding)}")
        if lost or duplicated:
            problems.append(f"lost {lost}, duplicated {duplicated}")
        if problems:
            raise self.fail("; ".join(problems))


def _digest(key: tuple[str, str], rules: tuple[str, ...]) -> str:
    """The content digest of a version as `_write_valid` writes it."""
    return policy_digest(metadata(*key), definition(rules))
