"""Evaluating compiled rules against a resource, bounded (CONTRACT section 8): a condition is
code, and a hostile one must end as an `error` result within the budget, never as a hang or a
process that eats the machine's memory.

The engine's own limits stop most of that (100 000 characters, nesting 32, 10 000 comprehension
iterations per evaluation), but not a loop that builds huge strings, and C++ cannot be
interrupted from Python. So rules are evaluated in a child process of this one (started on first
use, one per pytest process, fed a version's test cases at a time as one JSON line, one version
ahead of the one whose results are read): each rule's answer must come within `timeout` seconds
of being waited for, the child's address space is capped (`memory`, Linux and other systems with
RLIMIT_AS), and a child that overruns is killed and replaced.

The child also reads YAML for this process (`read_ahead`): in one process, the plugin sends a
version's tests.yaml two items before its checks need it, and the value comes back as JSON. So
composing it (most of what a version with tests costs beyond its other files) takes the child's
core, which is idle most of the time, not this one's (docs/benchmarks.md). A read ahead never
waits: it is not sent when it might not fit in the pipe beside the requests the child has not
read yet. Only a file that reads without a finding comes back; any other is read again here, to
word its findings with their lines. The JSON round trip keeps every value YAML gives here
(strings, 64-bit integers, finite floats, booleans, null, lists, mappings with string keys).
"""

from __future__ import annotations

import atexit
import base64
import collections
import contextlib
import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

from policy_checks.cel.environment import ENVIRONMENTS
from policy_checks.words import evaluation_error_words

DEFAULT_TIMEOUT = 1.0  # seconds for one rule's evaluation (ini policy_eval_timeout)
DEFAULT_MEMORY = 1 << 30  # bytes of address space of the evaluating process

PASS, FAIL, ERROR, SKIP = "pass", "fail", "error", "skip"
RESULTS = (PASS, FAIL, ERROR, SKIP)


class CompiledRule(Protocol):
    """A rule as the evaluator needs it (`checks.conditions.CompiledRule` is one): the checks
    sit above this module, which knows only this much of them."""

    @property
    def id(self) -> str: ...

    @property
    def program(self) -> bytes: ...


class CompiledPolicy(Protocol):
    """A version's rules as the evaluator needs them (`checks.conditions.CompiledPolicy`)."""

    @property
    def rules(self) -> Sequence[CompiledRule]: ...

    @property
    def signature(self) -> tuple[tuple[str, str], ...]: ...

    def applies_to(self, resource: Any) -> bool: ...


@dataclass(frozen=True)
class RuleResult:
    rule: str
    result: str  # one of RESULTS
    message: str | None = None  # why, for an error


# -- the child's side ------------------------------------------------------------------------------


def _limit_memory(limit: int) -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # Windows, or a system that refuses: time only
        pass


# The answer lines of most runs, written as they are (json.dumps gives the same text).
_LINES = {PASS: json.dumps([PASS, None]) + "\n", FAIL: json.dumps([FAIL, None]) + "\n"}


def _answer(expression: Any, activation: Any) -> list[str | None]:
    try:
        value = expression.eval(activation)
        kind = value.type().name()
        if kind == "BOOL":
            return [PASS if value.value() else FAIL, None]
        if kind == "ERROR":
            return [ERROR, evaluation_error_words(str(value.value()))]
        return [ERROR, f"the condition gave a {kind.lower()}, not a bool"]
    except MemoryError:
        return [ERROR, "evaluation ran out of memory"]
    except Exception as exc:
        return [ERROR, evaluation_error_words(str(exc))]


def _evaluate(request: dict[str, Any], programs: dict[bytes, Any], out: IO[str]) -> None:
    """One request: a version's programs and its cases, each naming the programs it runs; one
    answer line per program run, flushed at once (the parent times each one)."""
    signature = tuple((str(n), str(t)) for n, t in request["signature"])
    env = ENVIRONMENTS.running(signature)
    expressions: list[Any] = []
    for encoded in request["programs"]:
        raw = base64.b64decode(encoded)
        try:
            expression = programs.get(raw)
            if expression is None:
                expression = programs[raw] = env.deserialize(raw)
        except Exception as exc:  # a program this engine cannot read: every run is an error
            expression = _Broken(evaluation_error_words(str(exc)))
        expressions.append(expression)
    for case in request["cases"]:
        params = ENVIRONMENTS.params_value(signature, case["params"])
        activation = env.Activation({"resource": case["resource"], "params": params})
        for index in case["run"]:
            result, message = _answer(expressions[index], activation)
            line = _LINES[result] if message is None and result in _LINES else None
            out.write(line or json.dumps([result, message]) + "\n")
            out.flush()


class _Broken:
    def __init__(self, why: str) -> None:
        self.why = why

    def eval(self, activation: Any) -> Any:
        raise RuntimeError(self.why)


def _read_yaml(request: dict[str, Any], out: IO[str]) -> None:
    """One YAML file's value as one answer line, `{"value": ...}`; `{}` when it does not read
    without a finding (the parent reads it again, to word the findings)."""
    from policy_checks.loading.yaml import load_yaml  # only once a file is asked for

    try:
        document = load_yaml(base64.b64decode(request["read"]), "tests.yaml")
        answer = json.dumps({"value": document.value} if document.ok else {})
    except Exception:  # whatever it is, the parent's own reading says it properly
        answer = "{}"
    out.write(answer + "\n")
    out.flush()


def serve(memory: int) -> None:
    """The child: one JSON request a line on stdin; one JSON answer a rule and case, or one
    for a file to read, on stdout."""
    ENVIRONMENTS.running(())  # the engine imported before the parent counts time
    _limit_memory(memory)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    programs: dict[bytes, Any] = {}
    for line in sys.stdin.buffer:  # bytes: json.loads decodes them, no text layer between
        request = json.loads(line)
        if "read" in request:
            _read_yaml(request, sys.stdout)
            continue
        _evaluate(request, programs, sys.stdout)
        if len(programs) > 10_000:
            programs.clear()


# -- the parent's side -----------------------------------------------------------------------------


NOT_STARTED = "the evaluating process did not start (is cel-expr-python installed?)"
STARTUP_TIMEOUT = 60.0  # seconds for the child to import the engine, on the slowest runner
# Seconds for the child to read a YAML file sent ahead, counted once every earlier answer has
# been read (so only the reading itself): 1 MiB composes in well under a second. Past this, the
# child is replaced and the file read here.
READ_TIMEOUT = 10.0


class EvaluatorUnavailable(Exception):
    """The child process could not be started; every rule of the case is an error saying so."""


def _pipe_capacity(fd: int) -> int:
    """What a pipe holds: Linux says (64 KiB by default); elsewhere the 4 KiB every system's
    pipe holds at least."""
    try:
        import fcntl

        return int(fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ))
    except (ImportError, AttributeError, OSError):  # no fcntl, or no F_GETPIPE_SZ (macOS)
        return 4096


class _Child:
    def __init__(self, memory: int) -> None:
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        code = (
            f"import sys; sys.path.insert(0, {package_parent!r}); "
            f"from policy_checks.evaluator import serve; serve({memory})"
        )
        # The hub token has no business in a process that runs conditions.
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_HUB")}
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._pending = b""
        self._fd = self.process.stdout.fileno()
        # Where select() works on pipes, the answers are read in the caller's thread: a reader
        # thread costs a thread switch per answer, most of a case's time (docs/benchmarks.md).
        self._queue: queue.Queue[bytes] | None = None
        if os.name == "nt":
            self._queue = queue.Queue()
            threading.Thread(target=self._pump, daemon=True).start()
        # Not waited for here: the child imports the engine while this process goes on, and
        # requests wait in the pipe meanwhile. Its "ready" is read before its first answer.
        self.ready = False
        # Bytes of requests its stdin pipe holds, so a write of that many the child has not
        # read yet never blocks (`Evaluator.read_ahead`); none where answers need a thread.
        self.pipe_room = (
            0 if self._queue is not None else _pipe_capacity(self.process.stdin.fileno())
        )

    def _pump(self) -> None:
        assert self._queue is not None
        while chunk := os.read(self._fd, 1 << 16):
            self._queue.put(chunk)
        self._queue.put(b"")

    def _chunk(self, timeout: float) -> bytes | None:
        """The next bytes from the child, b"" at its end, None when none came in time."""
        if self._queue is not None:
            try:
                return self._queue.get(timeout=timeout)
            except queue.Empty:
                return None
        ready, _, _ = select.select([self._fd], [], [], timeout)
        return os.read(self._fd, 1 << 16) if ready else None

    def line(self, timeout: float) -> str | None:
        """The child's next line; "" when it sent none within `timeout` seconds, None when
        it ended (killed by the address-space cap, or a crash of the engine). Raises
        EvaluatorUnavailable when it never said it was ready."""
        if not self.ready:
            if self._line(STARTUP_TIMEOUT) != "ready":
                self.kill()
                raise EvaluatorUnavailable(NOT_STARTED)
            self.ready = True
        return self._line(timeout)

    def _line(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        try:  # a request held back (`Evaluator.together`) is sent before its answer is awaited
            self._flush()
        except OSError:
            return None  # it ended
        while b"\n" not in self._pending:
            chunk = self._chunk(max(0.0, deadline - time.monotonic()))
            if chunk is None:
                return ""
            if not chunk:
                return None
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode("utf-8")

    def send(self, request: dict[str, Any], hold: bool = False) -> int:
        """Writes one request (`hold`: left in this process's buffer, for the next `_flush`
        or the next wait for an answer); returns its size in bytes."""
        assert self.process.stdin is not None
        line = json.dumps(request).encode() + b"\n"
        self.process.stdin.write(line)
        if not hold:
            self._flush()
        return len(line)

    def _flush(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.flush()  # no system call when nothing is held

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass


Work = list[tuple[int, list[CompiledRule]]]  # (case index, the rules still to run for it)


class Submitted:
    """One version's cases sent to the evaluating process; `Evaluator.collect` gives the
    results. Sent ahead, the child evaluates them while this process does other work."""

    def __init__(self, policy: CompiledPolicy, cases: list[tuple[dict[str, Any], Any]]) -> None:
        self.policy = policy
        self.cases = cases
        self.results: list[dict[str, RuleResult]] = [{} for _ in cases]
        self.overran: set[str] = set()  # rules past the time budget: not run again
        self.work: Work = []
        self.child: _Child | None = None  # the process the work was sent to
        self.size = 0  # bytes of its request, once sent
        for index, (_, resource) in enumerate(cases):
            if policy.applies_to(resource):
                self.work.append((index, list(policy.rules)))
            else:
                self.results[index] = {r.id: RuleResult(r.id, SKIP) for r in policy.rules}

    def drop_overran(self, text: str) -> None:
        kept: Work = []
        for index, rules in self.work:
            for rule in rules:
                if rule.id in self.overran:
                    self.results[index][rule.id] = RuleResult(rule.id, ERROR, text)
            rules = [rule for rule in rules if rule.id not in self.overran]
            if rules:
                kept.append((index, rules))
        self.work = kept

    @property
    def finished(self) -> bool:
        return not self.work

    def fail(self, message: str) -> None:
        for index, rules in self.work:
            for rule in rules:
                self.results[index][rule.id] = RuleResult(rule.id, ERROR, message)
        self.work = []

    def request(self) -> dict[str, Any]:
        position = {rule.id: number for number, rule in enumerate(self.policy.rules)}
        return {
            "signature": [list(pair) for pair in self.policy.signature],
            "programs": [base64.b64encode(rule.program).decode() for rule in self.policy.rules],
            "cases": [
                {
                    "params": self.cases[index][0],
                    "resource": self.cases[index][1],
                    "run": [position[rule.id] for rule in rules],
                }
                for index, rules in self.work
            ],
        }

    def final(self) -> list[list[RuleResult]]:
        return [[found[rule.id] for rule in self.policy.rules] for found in self.results]


class ReadAhead:
    """A YAML file sent to the evaluating process to be read while this one does other
    work; `Evaluator.value_of` gives its value."""

    def __init__(self, data: bytes) -> None:
        self.encoded = base64.b64encode(data).decode()
        self.size = len(self.encoded) + len('{"read": ""}\n')  # of its request line
        self.child: _Child | None = None  # the process it was sent to
        self.finished = False  # answered, or given up on (then `read` stays False)
        self.read = False  # the child read it without a finding: `value` is its value
        self.value: Any = None

    def request(self) -> dict[str, Any]:
        return {"read": self.encoded}

    def fail(self, message: str) -> None:
        """No value from the child (`message`, why, is not needed: the caller reads the file
        itself, which says all there is to say about it)."""
        self.finished = True


class Evaluator:
    """Evaluates versions' rules against their test cases in one child process, in the order
    they are submitted; one per process (`shared`)."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, memory: int = DEFAULT_MEMORY) -> None:
        self.timeout = timeout
        self.memory = memory
        self._child: _Child | None = None
        self._lock = threading.RLock()
        self._outstanding: collections.deque[Submitted | ReadAhead] = collections.deque()
        self._broken: str | None = None  # why no child can be started, once that is known
        self._holding = False  # inside `together`

    def close(self) -> None:
        with self._lock:
            if self._child is not None:
                self._child.kill()
                self._child = None
            self._outstanding.clear()

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """What is sent inside goes to the child in one write at the end: waking a sleeping
        process is most of what a write costs (~40 µs on a VM), and the plugin sends a
        version's cases and the next one's tests.yaml one after the other. A wait for an answer
        inside sends what was held first."""
        with self._lock:
            self._holding = True
            try:
                yield
            finally:
                self._holding = False
                # A child that ended: reading its next answer finds that out.
                with contextlib.suppress(OSError):
                    if self._child is not None:
                        self._child._flush()

    def start(self) -> None:
        """Starts the child now, if none runs: it imports the engine while the caller goes on,
        instead of while the first version with test cases waits for it."""
        with self._lock:
            if self._broken is None and not self._child_alive():
                self._restart()

    def _child_alive(self) -> bool:
        return self._child is not None and self._child.process.poll() is None

    def evaluate(
        self, policy: CompiledPolicy, params: dict[str, Any], resource: Any
    ) -> list[RuleResult]:
        """Each rule's result for one resource (all `skip` when the policy does not target its
        kind)."""
        return self.evaluate_cases(policy, [(params, resource)])[0]

    def evaluate_cases(
        self, policy: CompiledPolicy, cases: list[tuple[dict[str, Any], Any]]
    ) -> list[list[RuleResult]]:
        return self.collect(self.submit(policy, cases))

    def submit(self, policy: CompiledPolicy, cases: list[tuple[dict[str, Any], Any]]) -> Submitted:
        """Sends each (params, resource) case of a version to the child at once."""
        submitted = Submitted(policy, cases)
        with self._lock:
            # Whatever is still unanswered is read first: a child blocked writing answers no one
            # reads would never read this request (both pipes full, a hang with no timeout).
            self._read_until(lambda: not self._outstanding)
            if submitted.work:
                self._send(submitted)
                if submitted.work:
                    self._outstanding.append(submitted)
        return submitted

    def collect(self, submitted: Submitted) -> list[list[RuleResult]]:
        """The results of a submitted version: each rule's answer must come within `timeout`
        seconds of being waited for. A rule that runs past it is an error there and is not run
        again in the version's later cases: a hostile rule costs one budget per version."""
        with self._lock:
            self._read_until(lambda: not submitted.work)
        return submitted.final()

    def read_ahead(self, data: bytes) -> ReadAhead | None:
        """Sends a YAML file for the child to read while the caller goes on (`value_of` gives
        its value). Never waits: None, the file left to the caller to read, when no child runs,
        or when the request might not fit in the pipe beside those the child has not read yet
        (`submit` reads every answer first, so that a child blocked on answers no one reads
        always reads its next request; this sends without reading, so its write must never
        block)."""
        ahead = ReadAhead(data)
        with self._lock:
            child = self._child
            if child is None or not self._child_alive():
                return None
            # What is finished has nothing left in this child's pipes (answered, or failed
            # with a child replaced since): only the rest is unread.
            self._outstanding = collections.deque(w for w in self._outstanding if not w.finished)
            # One file ahead at a time: with at most two requests unread (a version's cases,
            # then this), their bytes say how full the pipe is (Linux fills it a page a write).
            if any(isinstance(waiting, ReadAhead) for waiting in self._outstanding):
                return None
            unread = sum(waiting.size for waiting in self._outstanding)
            if unread + ahead.size > child.pipe_room:
                return None
            self._send_to(child, ahead)
            if ahead.finished:
                return None
            self._outstanding.append(ahead)
        return ahead

    def value_of(self, ahead: ReadAhead) -> tuple[bool, Any]:
        """(True, the value) of a file the child read without a finding; (False, None) when
        the caller must read it itself: a finding to word, or no child to read it."""
        with self._lock:
            self._read_until(lambda: ahead.finished)
        return ahead.read, ahead.value

    def _read_until(self, done: Callable[[], bool]) -> None:
        """Reads answers, oldest submission first, until `done()` or nothing is outstanding."""
        while self._outstanding and not done():
            head = self._outstanding[0]
            if isinstance(head, ReadAhead):
                self._drain_read(head)
            else:
                self._drain(head)
            if head.finished:
                self._outstanding.popleft()

    def _overrun_text(self, earlier: bool = False) -> str:
        text = f"evaluation exceeded the budget of {self.timeout:g} s"
        return text + (" in an earlier case (not run again)" if earlier else "")

    def _send(self, submitted: Submitted | ReadAhead) -> None:
        """Sends a new submission, after every outstanding one."""
        if self._broken is not None:  # a child that cannot start is not tried per version
            submitted.fail(self._broken)
            return
        if not self._child_alive():
            self._restart()
        if self._child is None:
            submitted.fail(self._broken or "the evaluating process could not be started")
            return
        self._send_to(self._child, submitted)

    def _send_to(self, child: _Child, submitted: Submitted | ReadAhead) -> None:
        if isinstance(submitted, ReadAhead):
            if submitted.child is not None:  # its child was replaced: read by the caller
                submitted.fail("replaced")
                return
        else:
            submitted.drop_overran(self._overrun_text(earlier=True))
            if not submitted.work:
                return
        try:
            submitted.size = child.send(submitted.request(), hold=self._holding)
        except OSError:
            if not child.ready:  # it died before its first word: it cannot start here
                self._broken = NOT_STARTED
            submitted.fail(self._broken or "the evaluating process failed")
            return
        submitted.child = child

    def _restart(self) -> None:
        """A new child, with what every outstanding version has left sent to it, in order."""
        if self._child is not None:
            self._child.kill()
        self._child = None
        try:
            self._child = _Child(self.memory)
        except OSError as exc:
            self._broken = f"the evaluating process could not be started: {exc}"
            for waiting in self._outstanding:
                waiting.fail(self._broken)
            return
        for waiting in self._outstanding:
            self._send_to(self._child, waiting)

    def _drain(self, submitted: Submitted) -> None:
        """Reads the answers of the oldest outstanding version; when the child has to be
        replaced, what it had not answered yet (this version's and the later ones') is sent
        again to the new one."""
        child = submitted.child
        if child is None or child is not self._child:
            self._restart()
            return
        for step, (index, rules) in enumerate(submitted.work):
            for number, rule in enumerate(rules):
                try:
                    line = self._next_line(child, self.timeout)
                except EvaluatorUnavailable:
                    return
                if line:
                    known = _ANSWERS.get(line)
                    result, message = known if known else json.loads(line)
                    submitted.results[index][rule.id] = RuleResult(rule.id, result, message)
                    continue
                if line is None:  # the child died: memory, or a crash of the engine
                    message = "evaluation ran out of memory or crashed the evaluating process"
                else:
                    message = self._overrun_text()
                submitted.overran.add(rule.id)
                submitted.results[index][rule.id] = RuleResult(rule.id, ERROR, message)
                rest = rules[number + 1 :]
                submitted.work = ([(index, rest)] if rest else []) + submitted.work[step + 1 :]
                self._restart()
                return
        submitted.work = []

    def _next_line(self, child: _Child, timeout: float) -> str | None:
        """`child.line(timeout)`; when the child never started, every outstanding request
        fails saying so, no child is tried again, and EvaluatorUnavailable is raised."""
        try:
            return child.line(timeout)
        except EvaluatorUnavailable as exc:
            self._child = None
            self._broken = str(exc)
            for waiting in self._outstanding:
                waiting.fail(self._broken)
            raise

    def _drain_read(self, ahead: ReadAhead) -> None:
        """Reads the answer to a file sent ahead. A child that died or overran is replaced
        (what was sent after the file goes to the new one) and the file is the caller's to
        read."""
        child = ahead.child
        if child is None or child is not self._child:
            ahead.fail("replaced")
            return
        try:
            line = self._next_line(child, max(self.timeout, READ_TIMEOUT))
        except EvaluatorUnavailable:
            return
        ahead.finished = True
        if not line:  # it ended, or did not answer in time
            self._restart()
            return
        answer = json.loads(line)
        if "value" in answer:
            ahead.read, ahead.value = True, answer["value"]


# The answer lines of most runs, read without the JSON decoder.
_ANSWERS = {line.rstrip("\n"): (result, None) for result, line in _LINES.items()}

_SHARED: dict[tuple[float, int], Evaluator] = {}


def shared(timeout: float = DEFAULT_TIMEOUT, memory: int = DEFAULT_MEMORY) -> Evaluator:
    """This process's evaluator for these limits, closed when the process exits."""
    key = (timeout, memory)
    evaluator = _SHARED.get(key)
    if evaluator is None:
        evaluator = _SHARED[key] = Evaluator(timeout, memory)
        atexit.register(evaluator.close)
    return evaluator
