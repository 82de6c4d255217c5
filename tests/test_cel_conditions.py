"""CEL conditions (docs/contract.md section 8) below the plugin: where a compile error is placed in
the YAML, the semantics the engine gives conditions (cel-spec's: macros, error absorption,
strings), and the bounds of evaluation (iteration budget, time, a child that dies). Messages an
author sees are pinned by tests/example-files; this file pins the parts those cannot reach."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from policy_checks import CheckSettings, start_evaluating
from policy_checks import evaluator as evaluator_module
from policy_checks.cel.environment import ENVIRONMENTS
from policy_checks.checks.conditions import (
    CompiledPolicy,
    CompiledRule,
    compile_conditions,
)
from policy_checks.evaluator import ERROR, FAIL, PASS, SKIP, Evaluator
from policy_checks.loading import load_yaml, read_yaml, scalar_offset_position

pytestmark = pytest.mark.fast


# Where answers are read in a thread (Windows), nothing is read ahead (Evaluator.read_ahead).
READS_AHEAD = pytest.mark.skipif(os.name == "nt", reason="no read ahead where pipes need a thread")


def compiled(conditions: dict[str, str], params: str = "", targets: str = "") -> CompiledPolicy:
    rules = "".join(
        f"    - id: {rid}\n      description: d\n      condition: {text!r}\n"
        for rid, text in conditions.items()
    )
    text = (
        "apiVersion: policyhub/v1\nkind: PolicyDefinition\nspec:\n  severity: low\n"
        + (f"  targets: [{targets}]\n" if targets else "")
        + (f"  parameters:\n{params}" if params else "")
        + f"  rules:\n{rules}"
    )
    document = load_yaml(text.encode(), "p.yaml")
    assert document.ok, document.findings
    policy, findings = compile_conditions(document.value, "p.yaml", document.source, lambda: text)
    assert policy is not None and not findings, [f.render() for f in findings]
    return policy


@pytest.fixture(scope="module")
def evaluator() -> Any:
    evaluator = Evaluator(timeout=2.0)
    yield evaluator
    evaluator.close()


def results(evaluator: Evaluator, policy: CompiledPolicy, resource: Any, **params: Any) -> dict:
    values = {**policy.defaults(), **params}
    return {r.rule: (r.result, r.message) for r in evaluator.evaluate(policy, values, resource)}


# -- where an error is shown ------------------------------------------------------------------

POSITIONS = [
    ('c: "ab.x"\n', 3, (1, 8)),  # double-quoted: the quote is skipped
    ("c: 'ab.x'\n", 3, (1, 8)),
    ("c: ab.x\n", 2, (1, 6)),  # plain
    ("c: |\n  first\n  ab.x\n", 8, (3, 5)),  # literal block, second line
    ("c: >-\n  first &&\n  ab.x\n", 11, (3, 5)),  # folded: the line break became a space
    ('c: "first\n  ab.x"\n', 6, (2, 3)),  # a double-quoted scalar over two lines
    ('c: "it\\"s .x"\n', 5, (1, 11)),  # an escape is two characters in the source
]


@pytest.mark.parametrize(("document", "offset", "expected"), POSITIONS)
def test_an_offset_in_a_condition_maps_to_its_line_and_column(
    document: str, offset: int, expected: tuple[int, int]
) -> None:
    line, column = scalar_offset_position(document, ("c",), offset)  # type: ignore[misc]
    assert (line, column) == expected
    # The character there is the one the offset names in the value.
    value = load_yaml(document.encode(), "x").value["c"]
    assert document.split("\n")[line - 1][column - 1] == value[offset]


def test_an_identical_condition_compiles_once_for_the_same_parameters() -> None:
    signature = (("limit", "integer"),)
    first = ENVIRONMENTS.compile(signature, "resource.count <= params.limit")
    again = ENVIRONMENTS.compile(signature, "resource.count <= params.limit")
    assert first is again  # the cached answer, not a second compile
    other = ENVIRONMENTS.compile((("limit", "number"),), "resource.count <= params.limit")
    assert other is not first  # another parameter type is another environment


# -- what conditions mean (cel-spec semantics) ---------------------------------------------------


def test_macros_and_string_functions_follow_cel_spec(evaluator: Evaluator) -> None:
    policy = compiled(
        {
            "exists": "resource.l.exists(e, e == 2)",
            "all-empty": "[].all(e, e > 0)",
            "exists-one": "resource.l.exists_one(n, n % 2 == 1) == false",
            "map-filter": "resource.l.map(n, n * 2).filter(n, n > 2) == [4, 6]",
            "has": "has(resource.m.key) && !has(resource.m.other)",
            "strings": "'foobar'.startsWith('foo') && 'forté'.endsWith('té') && size('πέντε') == 5",
            "matches": "'grey'.matches('gr(a|e)y') && 'Straße'.contains('aß')",
            "ext": "'a,b'.split(',').size() == 2 && 'ABC'.lowerAscii() == 'abc'",
            # An error is absorbed by a true `||` and a false `&&`, whatever its side.
            "absorbed": "(resource.missing == 1 || true) && !(resource.missing == 1 && false)",
        }
    )
    outcome = results(evaluator, policy, {"l": [1, 2, 3], "m": {"key": 1}})
    assert outcome == {rule: (PASS, None) for rule in outcome}


def test_an_evaluation_error_is_kept_with_its_message(evaluator: Evaluator) -> None:
    policy = compiled(
        {
            "missing": "resource.tags.size() > 0",
            "divide": "resource.n / 0 == 1",
            "exists-one": "[3, 2, 1, 0].exists_one(n, 12 / n > 1)",  # no short circuit
            # A pattern from the resource: a constant one is refused when compiling.
            "regex": "resource.s.matches(resource.p)",
        }
    )
    outcome = results(evaluator, policy, {"n": 1, "s": "x", "p": "("})
    assert outcome["missing"] == (ERROR, 'no such key: "tags"')
    assert outcome["divide"] == (ERROR, "divide by zero")
    assert outcome["exists-one"] == (ERROR, "divide by zero")
    assert outcome["regex"][0] == ERROR and "regular expression" in outcome["regex"][1]


def test_params_have_their_declared_types_and_defaults(evaluator: Evaluator) -> None:
    params = (
        "    tag: {type: string, default: cc}\n"
        "    limit: {type: integer, default: 2}\n"
        "    ratio: {type: number, default: 1}\n"
        "    strict: {type: boolean, default: true}\n"
        "    kinds: {type: list, default: [a, b]}\n"
        "    extra: {type: object, default: {cpu: 2, name: x}}\n"
    )
    policy = compiled(
        {
            "types": "type(params.tag) == string && type(params.limit) == int && "
            "type(params.ratio) == double && params.strict && 'b' in params.kinds && "
            "params.extra.name == 'x' && params.extra.cpu == 2",
            "limit": "size(resource.items) <= params.limit",
        },
        params,
    )
    assert results(evaluator, policy, {"items": [1, 2]}) == {
        "types": (PASS, None),
        "limit": (PASS, None),
    }
    assert results(evaluator, policy, {"items": [1, 2]}, limit=1)["limit"] == (FAIL, None)


def test_a_resource_of_another_kind_is_skipped(evaluator: Evaluator) -> None:
    policy = compiled({"r": "resource.x == 1"}, targets="{kind: storage.bucket}")
    assert results(evaluator, policy, {"kind": "compute.instance"}) == {"r": (SKIP, None)}
    assert results(evaluator, policy, ["not", "an", "object"]) == {"r": (SKIP, None)}
    assert results(evaluator, policy, {"kind": "storage.bucket", "x": 1}) == {"r": (PASS, None)}


# -- bounds ------------------------------------------------------------------------------------


def test_a_comprehension_past_the_iteration_budget_is_an_error(evaluator: Evaluator) -> None:
    policy = compiled({"nested": "resource.l.all(a, resource.l.all(b, true))", "ok": "true"})
    outcome = results(evaluator, policy, {"l": list(range(200))})
    assert outcome["nested"][0] == ERROR
    assert "budget of 10 000 comprehension iterations" in outcome["nested"][1]
    assert outcome["ok"] == (PASS, None)


def test_a_rule_past_the_time_budget_ends_as_an_error_and_the_rest_still_run() -> None:
    evaluator = Evaluator(timeout=0.3)
    try:
        policy = compiled(
            {
                "before": "true",
                "slow": "resource.l.map(i, resource.s + resource.s + resource.s).size() > 0",
                "after": "resource.s.size() > 0",
            }
        )
        resource = {"l": list(range(5000)), "s": "a" * 300_000}
        first, second = evaluator.evaluate_cases(policy, [({}, resource), ({}, resource)])
    finally:
        evaluator.close()
    assert [(r.rule, r.result) for r in first] == [
        ("before", PASS),
        ("slow", ERROR),
        ("after", PASS),
    ]
    assert first[1].message == "evaluation exceeded the budget of 0.3 s"
    assert second[1].message == (
        "evaluation exceeded the budget of 0.3 s in an earlier case (not run again)"
    )
    assert second[0].result == PASS and second[2].result == PASS


def test_a_dead_evaluating_process_is_an_error_and_is_replaced(evaluator: Evaluator) -> None:
    policy = compiled({"r": "resource.x == 1"})
    assert results(evaluator, policy, {"x": 1}) == {"r": (PASS, None)}
    child = evaluator._child
    assert child is not None
    child.process.kill()
    child.process.wait()
    # The next case starts a new child; the killed one is not reused.
    assert results(evaluator, policy, {"x": 2}) == {"r": (FAIL, None)}
    assert evaluator._child is not child


def test_versions_submitted_ahead_are_answered_in_order_across_a_replaced_child() -> None:
    evaluator = Evaluator(timeout=0.3)
    try:
        fast = compiled({"r": "resource.x == 1"})
        slow = compiled({"slow": "resource.l.map(i, resource.s + resource.s).size() > 0"})
        big = {"l": list(range(5000)), "s": "a" * 300_000}
        first = evaluator.submit(fast, [({}, {"x": 1}), ({}, {"x": 2})])
        hostile = evaluator.submit(slow, [({}, big)])
        third = evaluator.submit(fast, [({}, {"x": 2})])
        # Collected out of order: the child answers in order, and what it had not answered
        # when it was replaced (the third version) is sent again to the new one.
        assert [[r.result for r in case] for case in evaluator.collect(third)] == [[FAIL]]
        assert [[r.result for r in case] for case in evaluator.collect(first)] == [[PASS], [FAIL]]
        [[overrun]] = evaluator.collect(hostile)
        assert overrun.message == "evaluation exceeded the budget of 0.3 s"
    finally:
        evaluator.close()


def test_a_program_that_does_not_deserialise_is_an_error(evaluator: Evaluator) -> None:
    policy = CompiledPolicy((), (CompiledRule("bad", b"not a program"),), None)
    [result] = evaluator.evaluate(policy, {}, {})
    assert result.result == ERROR and result.message


@pytest.mark.parametrize(
    "definition",
    [
        {},
        {"spec": []},
        {"spec": {"rules": {"a": "b"}, "parameters": ["x"]}},
        {"spec": {"rules": ["text"], "parameters": {"p": "string"}, "targets": ["kind"]}},
    ],
)
def test_shapes_a_repository_schema_may_allow_are_not_compiled_and_never_crash(
    definition: dict[str, Any],
) -> None:
    source = load_yaml(b"a: 1\n", "p.yaml").source
    policy, findings = compile_conditions(definition, "p.yaml", source, lambda: None)
    assert findings == [] or all(f.rule and f.rule.startswith("parameter") for f in findings)
    assert policy is None or policy.rules == ()


def test_an_evaluating_process_that_cannot_start_is_an_error_once_not_a_wait_per_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.executable", "/bin/false")  # starts, and exits at once
    started: list[object] = []
    popen = subprocess.Popen

    def counting(*args: Any, **kwargs: Any) -> Any:
        started.append(args)
        return popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", counting)
    evaluator = Evaluator(timeout=5.0)
    try:
        policy = compiled({"r": "true"})
        [[first]] = evaluator.evaluate_cases(policy, [({}, {})])
        [[second]] = evaluator.evaluate_cases(policy, [({}, {})])
    finally:
        evaluator.close()
    assert first.result == ERROR and "did not start" in (first.message or "")
    assert second == first
    assert len(started) == 1  # not one start-up (and its wait) per version


@READS_AHEAD
def test_a_file_sent_to_a_child_that_never_starts_is_left_to_the_caller(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    silent = tmp_path / "silent-python"
    silent.write_text("#!/bin/sh\nexec sleep 30\n")  # runs, and never says it is ready
    silent.chmod(0o755)
    monkeypatch.setattr("sys.executable", str(silent))
    monkeypatch.setattr(evaluator_module, "STARTUP_TIMEOUT", 0.5)
    evaluator = Evaluator(timeout=5.0)
    try:
        evaluator.start()
        ahead = evaluator.read_ahead(b"a: 1\n")
        assert ahead is not None
        assert evaluator.value_of(ahead) == (False, None)
        [[result]] = evaluator.evaluate_cases(compiled({"r": "true"}), [({}, {})])
        assert result.result == ERROR and "did not start" in (result.message or "")
        assert evaluator.read_ahead(b"a: 1\n") is None  # not tried again
    finally:
        evaluator.close()


def test_a_child_started_ahead_serves_the_first_version() -> None:
    # The harness starts it while it collects (start_evaluating): the first version with test
    # cases then finds the engine imported, and no second process is made for it.
    evaluator = Evaluator(timeout=5.0)
    try:
        evaluator.start()
        child = evaluator._child
        assert child is not None and child.process.poll() is None
        [[result]] = evaluator.evaluate_cases(compiled({"r": "true"}), [({}, {})])
        assert result.result == PASS
        assert evaluator._child is child
    finally:
        evaluator.close()


# -- YAML read by the evaluating process (Evaluator.read_ahead) --------------------------------

TRICKY_YAML = """\
cases:
  - name: "\\u00e9t\\u00e9 \\U0001F600, a tab:\\t, a break:\\n"
    resource: {n: -0.0, big: 9223372036854775807, small: -9223372036854775808, f: 1.5e-300,
               words: [yes, on, ~, "yes"], octal: 0o17, hex: 0x1F, sexagesimal: 1:30,
               nested: [[{}], [], {a: [1, 2.0, "3"]}], long: "%s"}
    expect: pass
""" % ("x" * 2000)


@READS_AHEAD
def test_a_file_read_ahead_has_the_value_and_lines_of_one_read_here() -> None:
    evaluator = Evaluator(timeout=2.0)
    try:
        evaluator.start()
        data = TRICKY_YAML.encode()
        ahead = evaluator.read_ahead(data)
        assert ahead is not None
        read, value = evaluator.value_of(ahead)
        here = load_yaml(data, "tests.yaml")
        assert read and here.ok
        assert json.dumps(value) == json.dumps(here.value)  # types too: -0.0, bools, ints
        document = read_yaml(data, "tests.yaml", value)
        for path in [("cases", 0, "resource", "long"), ("cases", 0, "expect"), ("cases", 9)]:
            assert document.source.line(path) == here.source.line(path)
        assert document.source.span(("cases", 0, "name")) == here.source.span(("cases", 0, "name"))
    finally:
        evaluator.close()


@READS_AHEAD
@pytest.mark.parametrize(
    "text",
    ["a: 1\na: 2\n", "a: [1\n", "when: 2001-12-14\n", "", "# nothing\n", "\ufeffa: 1\n"],
    ids=["duplicate-key", "syntax", "timestamp", "empty", "only-a-comment", "bom"],
)
def test_a_file_with_a_finding_is_left_to_the_caller_to_word(text: str) -> None:
    evaluator = Evaluator(timeout=2.0)
    try:
        evaluator.start()
        ahead = evaluator.read_ahead(text.encode())
        assert ahead is not None
        assert evaluator.value_of(ahead) == (False, None)
        assert not load_yaml(text.encode(), "tests.yaml").ok
    finally:
        evaluator.close()


@READS_AHEAD
def test_a_read_ahead_never_waits_for_room_in_the_pipe() -> None:
    # It is sent without reading the answers before it, so a write that could block (the
    # child blocked on answers no one reads) is not made: the caller reads the file itself.
    evaluator = Evaluator(timeout=2.0)
    try:
        assert evaluator.read_ahead(b"a: 1\n") is None  # no child yet: nothing is started
        evaluator.start()
        child = evaluator._child
        assert child is not None and child.pipe_room >= 4096
        assert evaluator.read_ahead(b"a: '" + b"x" * child.pipe_room + b"'\n") is None
        # A version's cases not yet collected take their part of the pipe.
        policy = compiled({"r": "resource.s != ''"})
        cases = evaluator.submit(policy, [({}, {"s": "y" * (child.pipe_room // 2)})])
        half = b"a: '" + b"x" * (child.pipe_room * 3 // 8) + b"'\n"
        assert evaluator.read_ahead(half) is None
        assert [[r.result for r in case] for case in evaluator.collect(cases)] == [[PASS]]
        first = evaluator.read_ahead(half)
        assert first is not None
        assert evaluator.value_of(first) == (True, {"a": "x" * (child.pipe_room * 3 // 8)})
    finally:
        evaluator.close()


@READS_AHEAD
def test_one_file_is_read_ahead_at_a_time(evaluator: Evaluator) -> None:
    # With at most a version's cases and one file unread, their bytes say how full the pipe
    # is (Linux fills a pipe a page a write, so three small requests may take three pages).
    evaluator.evaluate(compiled({"r": "true"}), {}, {})
    first = evaluator.read_ahead(b"a: 1\n")
    assert first is not None
    assert evaluator.read_ahead(b"b: 2\n") is None
    assert evaluator.value_of(first) == (True, {"a": 1})
    second = evaluator.read_ahead(b"b: 2\n")
    assert second is not None and evaluator.value_of(second) == (True, {"b": 2})


@READS_AHEAD
def test_a_read_ahead_sent_behind_evaluations_is_answered_in_order(evaluator: Evaluator) -> None:
    policy = compiled({"r": "resource.x == 1"})
    submitted = evaluator.submit(policy, [({}, {"x": 1}), ({}, {"x": 2})])
    ahead = evaluator.read_ahead(b"cases: [{x: 1}]\n")
    later = evaluator.submit(policy, [({}, {"x": 1})])
    assert ahead is not None
    assert [[r.result for r in case] for case in evaluator.collect(later)] == [[PASS]]
    assert evaluator.value_of(ahead) == (True, {"cases": [{"x": 1}]})
    assert [[r.result for r in case] for case in evaluator.collect(submitted)] == [[PASS], [FAIL]]


@READS_AHEAD
def test_requests_sent_together_reach_the_child_in_one_write_at_the_end(
    evaluator: Evaluator,
) -> None:
    policy = compiled({"r": "resource.x == 1"})
    evaluator.evaluate(policy, {}, {"x": 1})  # a child that is ready
    child = evaluator._child
    assert child is not None
    with evaluator.together():
        submitted = evaluator.submit(policy, [({}, {"x": 1})])
        ahead = evaluator.read_ahead(b"a: 1\n")
        # Held in this process: the child has nothing to answer yet.
        assert select.select([child.process.stdout], [], [], 0.3)[0] == []
    # Written when the block ends, before anything waits for an answer.
    assert select.select([child.process.stdout], [], [], 5.0)[0] != []
    assert [[r.result for r in case] for case in evaluator.collect(submitted)] == [[PASS]]
    assert ahead is not None and evaluator.value_of(ahead) == (True, {"a": 1})


def test_a_wait_for_an_answer_inside_together_sends_what_was_held(evaluator: Evaluator) -> None:
    policy = compiled({"r": "resource.x == 1"})
    with evaluator.together():
        submitted = evaluator.submit(policy, [({}, {"x": 2})])
        assert [[r.result for r in case] for case in evaluator.collect(submitted)] == [[FAIL]]


@READS_AHEAD
def test_a_file_sent_to_a_child_replaced_meanwhile_is_left_to_the_caller() -> None:
    evaluator = Evaluator(timeout=0.3)
    try:
        # Slow on a small request (a large one leaves no room in the pipe for a read ahead).
        big = "lists.range(3000).map(i, '%s').join('')" % ("a" * 100)
        slow = compiled({"slow": f"cel.bind(s, {big}, lists.range(500).all(i, (s + s) != ''))"})
        hostile = evaluator.submit(slow, [({}, {})])
        ahead = evaluator.read_ahead(b"a: 1\n")
        assert ahead is not None
        [[overrun]] = evaluator.collect(hostile)
        assert overrun.message == "evaluation exceeded the budget of 0.3 s"
        assert evaluator.value_of(ahead) == (False, None)
        # The new child reads the next file.
        again = evaluator.read_ahead(b"a: 1\n")
        assert again is not None and evaluator.value_of(again) == (True, {"a": 1})
    finally:
        evaluator.close()


@READS_AHEAD
def test_a_child_that_dies_while_reading_leaves_the_file_to_the_caller() -> None:
    evaluator = Evaluator(timeout=2.0)
    policy = compiled({"r": "true"})
    try:
        assert [r.result for r in evaluator.evaluate(policy, {}, {})] == [PASS]
        child = evaluator._child
        assert child is not None
        child.process.kill()
        child.process.wait()
        assert evaluator.read_ahead(b"a: 1\n") is None  # a dead child is not written to
        assert [r.result for r in evaluator.evaluate(policy, {}, {})] == [PASS]
        assert evaluator._child is not None
        stopped = evaluator._child.process
        os.kill(stopped.pid, signal.SIGSTOP)  # it cannot answer before it is killed
        ahead = evaluator.read_ahead(b"a: 1\n")
        assert ahead is not None
        stopped.kill()
        assert evaluator.value_of(ahead) == (False, None)
        assert [r.result for r in evaluator.evaluate(policy, {}, {})] == [PASS]  # a new child
    finally:
        evaluator.close()


@pytest.mark.parametrize(("language", "starts"), [("cel", 1), ("none", 0)])
def test_start_evaluating_starts_a_child_only_when_conditions_run(
    monkeypatch: pytest.MonkeyPatch, language: str, starts: int
) -> None:
    started: list[float] = []
    monkeypatch.setattr(Evaluator, "start", lambda self: started.append(self.timeout))
    start_evaluating(CheckSettings(conditions=language, eval_timeout=2.5))
    assert started == [2.5] * starts


def test_kubernetes_functions_on_hostile_data_stay_within_the_budget() -> None:
    """Kubernetes' libraries run on untrusted data in the evaluating process: each of these ends
    as a result (an `error` saying why, or an answer) within the time bound, never a hang."""
    evaluator = Evaluator(timeout=2.0)
    try:
        policy = compiled(
            {
                "quantity-20-digits": "quantity(resource.q).isGreaterThan(quantity('1'))",
                "backtracking": "resource.s.find('(a+)+$') == ''",
                "range": "size(lists.range(resource.n)) > 0",
                "range-iterated": "lists.range(resource.n).all(x, x >= 0)",
                "format-1mib": "size('%s'.format([resource.big])) > 0",
                "semver-1mib": "isSemver(resource.big)",
                "url-1mib": "isURL(resource.big)",
            }
        )
        resource = {
            "q": "12345678901234567890",
            "s": "a" * 100_000 + "b",
            "n": 10_000_000,
            "big": "x" * (1 << 20),
        }
        outcome = results(evaluator, policy, resource)
    finally:
        evaluator.close()
    assert outcome["quantity-20-digits"] == (PASS, None)
    assert outcome["backtracking"] == (PASS, None)  # RE2: linear, no catastrophic backtracking
    assert outcome["range"] == (PASS, None)  # ten million elements fit the memory bound
    assert outcome["range-iterated"][0] == ERROR
    assert "budget of 10 000 comprehension iterations" in str(outcome["range-iterated"][1])
    assert outcome["format-1mib"] == (PASS, None)
    assert outcome["semver-1mib"] == (FAIL, None)
    assert outcome["url-1mib"][0] in (PASS, FAIL)


def test_no_case_passes_whole_against_a_definition_that_breaks_its_schema(tmp_path: Any) -> None:
    """Its rules that compile still run (every problem at once), but a definition that breaks
    its schema may have lost rules: its cases are not counted as passed."""
    from policy_checks import CheckSettings, PolicyChecker
    from policy_checks.worktree import read_policy_folder

    folder = tmp_path / "policies" / "example" / "v1.0.0"
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(
        '{"name": "example", "version": "1.0.0", "description": "d", "owner": "o"}'
    )
    rules = "    - {id: a, description: d, condition: 'resource.ok'}\n"
    definition = "apiVersion: policyhub/v1\nkind: PolicyDefinition\nspec:\n  severity: high\n"
    (folder / "tests.yaml").write_text(
        "cases:\n  - {name: ok, resource: {ok: true}, expect: pass}\n"
    )
    checker = PolicyChecker.load(None, CheckSettings())
    for extra, counts in (("", "1/1"), ("  colour: red\n", "0/1")):
        (folder / "policy-definition.yaml").write_text(definition + extra + "  rules:\n" + rules)
        result = checker.check(read_policy_folder(tmp_path, "policies/example/v1.0.0"))
        assert result.tests == counts, [f.render() for f in result.findings]
