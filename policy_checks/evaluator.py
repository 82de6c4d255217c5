"""Evaluating compiled rules against a resource, bounded (CONTRACT section 8): a condition is
code, and a hostile one must end as an `error` result within the budget, never as a hang or a
process that eats the machine's memory.

The engine's own limits stop most of that (100 000 characters, nesting 32, 10 000 comprehension
iterations per evaluation), but not a loop that builds huge strings, and C++ cannot be
interrupted from Python. So rules are evaluated in a child process of this one (started on first
use, one per pytest process, fed one test case at a time as a JSON line): each rule's answer
must come within `timeout` seconds, the child's address space is capped (`memory`, Linux and
other systems with RLIMIT_AS), and a child that overruns is killed and replaced.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import IO, Any

from policy_checks.conditions import ENVIRONMENTS, CompiledPolicy

DEFAULT_TIMEOUT = 1.0  # seconds for one rule's evaluation (ini policy_eval_timeout)
DEFAULT_MEMORY = 1 << 30  # bytes of address space of the evaluating process
ITERATION_BUDGET = "10 000"  # the engine's comprehension iterations per evaluation

PASS, FAIL, ERROR, SKIP = "pass", "fail", "error", "skip"
RESULTS = (PASS, FAIL, ERROR, SKIP)


@dataclass(frozen=True)
class RuleResult:
    rule: str
    result: str  # one of RESULTS
    message: str | None = None  # why, for an error


def _reword(message: str) -> str:
    text = message.strip()
    for status in ("INVALID_ARGUMENT", "NOT_FOUND", "OUT_OF_RANGE", "INTERNAL", "UNKNOWN"):
        text = text.removeprefix(f"{status}: ").removesuffix(f" [{status}]")
    if "Iteration budget exceeded" in text:
        return (
            f"evaluation exceeded the budget of {ITERATION_BUDGET} comprehension iterations "
            "(all, exists, map, filter and the like, nested ones multiplied)"
        )
    if text.startswith("Key not found in map"):
        return "no such key: " + text.split(":", 1)[1].strip()
    return text


# -- the child's side ------------------------------------------------------------------------------


def _limit_memory(limit: int) -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # Windows, or a system that refuses: time only
        pass


def _evaluate_case(request: dict[str, Any], programs: dict[bytes, Any], out: IO[str]) -> None:
    signature = tuple((str(n), str(t)) for n, t in request["signature"])
    env = ENVIRONMENTS.environment(signature)
    params = ENVIRONMENTS.params_value(signature, request["params"])
    activation = env.Activation({"resource": request["resource"], "params": params})
    for encoded in request["programs"]:
        raw = base64.b64decode(encoded)
        try:
            expression = programs.get(raw)
            if expression is None:
                expression = programs[raw] = env.deserialize(raw)
            value = expression.eval(activation)
            kind = value.type().name()
            if kind == "BOOL":
                answer = [PASS if value.value() else FAIL, None]
            elif kind == "ERROR":
                answer = [ERROR, _reword(str(value.value()))]
            else:
                answer = [ERROR, f"the condition gave a {kind.lower()}, not a bool"]
        except MemoryError:
            answer = [ERROR, "evaluation ran out of memory"]
        except Exception as exc:
            answer = [ERROR, _reword(str(exc))]
        out.write(json.dumps(answer) + "\n")
        out.flush()


def serve(memory: int) -> None:
    """The child: one JSON request a line on stdin, one JSON answer a rule on stdout."""
    ENVIRONMENTS.environment(())  # the engine imported before the parent counts time
    _limit_memory(memory)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    programs: dict[bytes, Any] = {}
    for line in sys.stdin:
        _evaluate_case(json.loads(line), programs, sys.stdout)
        if len(programs) > 10_000:
            programs.clear()


# -- the parent's side -----------------------------------------------------------------------------


STARTUP_TIMEOUT = 60.0  # seconds for the child to import the engine, on the slowest runner


class EvaluatorUnavailable(Exception):
    """The child process could not be started; every rule of the case is an error saying so."""


class _Child:
    def __init__(self, memory: int) -> None:
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        code = (
            f"import sys; sys.path.insert(0, {package_parent!r}); "
            f"from policy_checks.evaluator import serve; serve({memory})"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self.answers: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            ready = self.answers.get(timeout=STARTUP_TIMEOUT)
        except queue.Empty:
            ready = None
        if ready != "ready\n":
            self.kill()
            raise EvaluatorUnavailable(
                "the evaluating process did not start (is cel-expr-python installed?)"
            )

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.answers.put(line)
        self.answers.put(None)

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass


class Evaluator:
    """Evaluates a version's rules for one test case at a time; one per process (`shared`)."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, memory: int = DEFAULT_MEMORY) -> None:
        self.timeout = timeout
        self.memory = memory
        self._child: _Child | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._child is not None:
                self._child.kill()
                self._child = None

    def evaluate(
        self,
        policy: CompiledPolicy,
        params: dict[str, Any],
        resource: Any,
        overran: set[str] | None = None,
    ) -> list[RuleResult]:
        """Each rule's result for one resource (all `skip` when the policy does not target its
        kind). A rule named in `overran` (one that ran past the budget in an earlier case of the
        version) is not run again; one that does now is added."""
        if not policy.applies_to(resource):
            return [RuleResult(rule.id, SKIP) for rule in policy.rules]
        overran = set() if overran is None else overran
        results: dict[str, RuleResult] = {}
        pending = list(policy.rules)
        with self._lock:
            while pending:
                for rule in [r for r in pending if r.id in overran]:
                    results[rule.id] = RuleResult(rule.id, ERROR, self._overrun_text(earlier=True))
                pending = [r for r in pending if r.id not in overran]
                if not pending:
                    break
                pending = self._run(policy, params, resource, pending, results, overran)
        return [results[rule.id] for rule in policy.rules]

    def _overrun_text(self, earlier: bool = False) -> str:
        text = f"evaluation exceeded the budget of {self.timeout:g} s"
        return text + (" in an earlier case (not run again)" if earlier else "")

    def _run(
        self,
        policy: CompiledPolicy,
        params: dict[str, Any],
        resource: Any,
        rules: list[Any],
        results: dict[str, RuleResult],
        overran: set[str],
    ) -> list[Any]:
        """Sends one case; returns the rules left to run when the child had to be replaced."""
        if self._child is None or self._child.process.poll() is not None:
            try:
                self._child = _Child(self.memory)
            except (EvaluatorUnavailable, OSError) as exc:
                for rule in rules:
                    results[rule.id] = RuleResult(rule.id, ERROR, str(exc))
                return []
        child = self._child
        request = {
            "signature": [list(pair) for pair in policy.signature],
            "programs": [base64.b64encode(rule.program).decode() for rule in rules],
            "params": params,
            "resource": resource,
        }
        try:
            assert child.process.stdin is not None
            child.process.stdin.write(json.dumps(request) + "\n")
            child.process.stdin.flush()
        except OSError:
            child.kill()
            self._child = None
            for rule in rules:
                results[rule.id] = RuleResult(rule.id, ERROR, "the evaluating process failed")
            return []
        for index, rule in enumerate(rules):
            try:
                line = child.answers.get(timeout=self.timeout)
            except queue.Empty:
                line = ""
            if not line:
                child.kill()
                self._child = None
                if line is None:  # the child died: memory, or a crash of the engine
                    message = "evaluation ran out of memory or crashed the evaluating process"
                else:
                    message = self._overrun_text()
                overran.add(rule.id)
                results[rule.id] = RuleResult(rule.id, ERROR, message)
                return rules[index + 1 :]
            result, message = json.loads(line)
            results[rule.id] = RuleResult(rule.id, result, message)
        return []


_SHARED: dict[tuple[float, int], Evaluator] = {}


def shared(timeout: float = DEFAULT_TIMEOUT, memory: int = DEFAULT_MEMORY) -> Evaluator:
    """This process's evaluator for these limits, closed when the process exits."""
    key = (timeout, memory)
    evaluator = _SHARED.get(key)
    if evaluator is None:
        evaluator = _SHARED[key] = Evaluator(timeout, memory)
        atexit.register(evaluator.close)
    return evaluator
