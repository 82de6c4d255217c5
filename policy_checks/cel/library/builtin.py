"""What cel-expr-python's own libraries leave out of Kubernetes' environment, made good here:
comparisons across `int`, `uint` and `double` (cel-go's CrossTypeNumericComparisons: the runtime
compares them, only the checker lacks the overloads), and the runtime half of the two-variable
comprehensions' `transformMap` (`cel.@mapInsert`, which the checker declares but the runtime
does not register).
"""

from __future__ import annotations

from typing import Any

from policy_checks.cel.library import Function, Library, Overload

_NUMBERS = {"int": "int64", "uint": "uint64", "double": "double"}
_COMPARISONS = {
    "_<_": "less",
    "_<=_": "less_equals",
    "_>_": "greater",
    "_>=_": "greater_equals",
    # Heterogeneous equality: cel-go's checker accepts `1.0 == 1` (Kubernetes' quantity tests
    # rely on it); the runtime compares across numeric types already.
    "_==_": "equals",
    "_!=_": "not_equals",
}

CROSS_TYPE_NUMERIC = Library(
    "cross-type-numeric-comparisons",
    tuple(
        Function(
            operator,
            tuple(
                Overload(f"{word}_{_NUMBERS[a]}_{_NUMBERS[b]}", (a, b), "bool")
                for a in _NUMBERS
                for b in _NUMBERS
                if a != b
            ),
        )
        for operator, word in _COMPARISONS.items()
    ),
    where="check",
)


def _map_insert(accumulator: dict[Any, Any], key: Any, value: Any = None) -> dict[Any, Any]:
    merged = dict(accumulator)
    if isinstance(key, dict) and value is None:
        merged.update(key)  # cel.@mapInsert(map, map)
    else:
        merged[key] = value
    return merged


MAP_INSERT = Library(
    "two-var-comprehensions-runtime",
    (
        Function(
            "cel.@mapInsert",
            (
                Overload(
                    "@mapInsert_map_key_value",
                    ("map(dyn, dyn)", "dyn", "dyn"),
                    "map(dyn, dyn)",
                    _map_insert,
                ),
                Overload(
                    "@mapInsert_map_map",
                    ("map(dyn, dyn)", "map(dyn, dyn)"),
                    "map(dyn, dyn)",
                    _map_insert,
                ),
            ),
        ),
    ),
    where="run",
)


def _engine_refuses(expression: str, meaning: str = "") -> Any:
    """A constant check that asks the engine itself: `expression` over the variable `s` (the
    literal), run; its error text, or None. The engine's own parser (RE2, its duration and
    timestamp grammar) decides, so the check cannot disagree with evaluation."""
    compiled: list[Any] = []

    def check(text: str) -> str | None:
        if not compiled:
            from cel_expr_python import cel

            env = cel.NewEnv(variables={"s": cel.Type.STRING})
            compiled.append(env.compile(expression))
        try:
            value = compiled[0].eval(data={"s": text})
        except Exception as exc:
            return _plain(str(exc)) + meaning
        if value.type().name() == "ERROR":
            return _plain(str(value.value())) + meaning
        return None

    return check


def _plain(message: str) -> str:
    for status in ("INVALID_ARGUMENT", "OUT_OF_RANGE", "UNKNOWN", "INTERNAL"):
        message = message.removeprefix(f"{status}: ").removesuffix(f" [{status}]")
    return message.strip()


# cel-go's ValidateRegexLiterals, ValidateDurationLiterals and ValidateTimestampLiterals, which
# Kubernetes' base environment enables.
STANDARD_CONSTANTS = Library(
    "standard-literals",
    (),
    constants={
        "matches": (1, _engine_refuses("''.matches(s)")),
        "duration": (
            0,
            _engine_refuses(
                "duration(s)",
                ' (a duration is written like "30s", "1m30s" or "1.5h": units h, m, s, ms, us, ns)',
            ),
        ),
        "timestamp": (
            0,
            _engine_refuses(
                "timestamp(s)", ' (a timestamp is RFC 3339, like "2026-01-31T00:00:00Z")'
            ),
        ),
    },
)

LIBRARIES = (CROSS_TYPE_NUMERIC, MAP_INSERT, STANDARD_CONSTANTS)
