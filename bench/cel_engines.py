"""The CEL engine comparison behind the harness's choice (README "Why this CEL engine"): for each
candidate installed in this interpreter, the time to compile a condition and to evaluate a
compiled one, and what it says of four mistakes an author makes, without evaluating anything.

    python -m venv /tmp/cel && /tmp/cel/bin/pip install cel-expr-python protobuf \\
        cel-python common-expression-language
    /tmp/cel/bin/python bench/cel_engines.py

Candidates not installed are listed as such. Only cel-expr-python is a dependency of the
harness; the others are measured here, never imported by it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

CONDITION = "params.tag in resource.tags && resource.items.all(i, i.size <= params.limit)"
RESOURCE = {"tags": {"cost-center": "1"}, "items": [{"size": 1}, {"size": 2}]}
PARAMS = {"tag": "cost-center", "limit": 3}
MISTAKES = {
    "syntax": "params.tag in resource.tags ((( && ",
    "unknown name": "parms.tag in resource.tags",
    "undeclared parameter": "params.tga in resource.tags",
    "wrong types": "params.limit + 'a' > 0",
}
ROUNDS = 2000


def _timed(action: Callable[[int], Any], rounds: int = ROUNDS) -> float:
    """Microseconds per call, the best of three runs of `rounds` calls."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for index in range(rounds):
            action(index)
        best = min(best, (time.perf_counter() - start) / rounds * 1e6)
    return best


def _verdicts(compile_one: Callable[[str], Any]) -> dict[str, str]:
    said = {}
    for mistake, text in MISTAKES.items():
        try:
            compile_one(text)
            said[mistake] = "compiles (not caught)"
        except Exception as exc:
            said[mistake] = " ".join(str(exc).split())[:90]
    return said


def cel_expr_python() -> tuple[float, float, dict[str, str]]:
    from policy_checks.cel.environment import Environments

    environments = Environments()
    signature = (("tag", "string"), ("limit", "integer"))
    env = environments.checking(signature)
    params = environments.params_value(signature, PARAMS)

    def compile_one(text: str) -> Any:
        return env.compile(text)

    compile_us = _timed(lambda i: env.compile(f"{CONDITION} && {i} >= 0"))
    run = environments.running(signature)
    expression = run.deserialize(env.compile(CONDITION).serialize())
    activation = run.Activation({"resource": RESOURCE, "params": params})
    assert expression.eval(activation).value() is True
    eval_us = _timed(lambda i: expression.eval(activation))
    return compile_us, eval_us, _verdicts(compile_one)


def cel_python() -> tuple[float, float, dict[str, str]]:
    import celpy

    env = celpy.Environment()
    compile_us = _timed(lambda i: env.compile(f"{CONDITION} && {i} >= 0"), 200)
    program = env.program(env.compile(CONDITION))
    activation = {"resource": celpy.json_to_cel(RESOURCE), "params": celpy.json_to_cel(PARAMS)}
    assert bool(program.evaluate(activation)) is True
    eval_us = _timed(lambda i: program.evaluate(activation), 200)
    return compile_us, eval_us, _verdicts(lambda text: env.program(env.compile(text)))


def common_expression_language() -> tuple[float, float, dict[str, str]]:
    import cel

    compile_us = _timed(lambda i: cel.compile(f"{CONDITION} && {i} >= 0"))
    program = cel.compile(CONDITION)
    context = {"resource": RESOURCE, "params": PARAMS}
    assert program.execute(context) is True
    eval_us = _timed(lambda i: program.execute(context))
    return compile_us, eval_us, _verdicts(cel.compile)


CANDIDATES = {
    "cel-expr-python": cel_expr_python,
    "cel-python": cel_python,
    "common-expression-language": common_expression_language,
}


def main() -> int:
    print(f"condition: {CONDITION}")
    for name, measure in CANDIDATES.items():
        try:
            compile_us, eval_us, said = measure()
        except ImportError as exc:
            print(f"\n{name}: not installed ({exc.name})")
            continue
        except Exception as exc:
            print(f"\n{name}: failed: {exc!r}")
            continue
        print(f"\n{name}: compile {compile_us:.1f} µs, evaluate a compiled rule {eval_us:.1f} µs")
        for mistake, verdict in said.items():
            print(f"  {mistake:<21} {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
