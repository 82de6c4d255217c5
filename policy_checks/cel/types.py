"""The type words that library declarations are written in, and what each side of the engine
takes: the checking environment's YAML configuration (which knows type parameters) and the
running environment's `cel.Type` (which does not: a type parameter runs as `dyn`).

A word is a CEL primitive (`bool`, `int`, `uint`, `double`, `string`, `bytes`, `null`, `dyn`,
`timestamp`, `duration`), `list(T)`, `map(K, V)`, `optional_type(T)`, a type parameter (one
capital letter, `A`) or a message's full name (`net.IP`, made by the environment for the
library's opaque types).

The engine's Python binding can neither make nor take an optional value: an implementation whose
result is `optional_type(T)` returns a `T`, its zero value for none, and the compiled program
wraps the call in `optional.ofNonZeroValue` (`policy_checks.cel.checkedast.wrap_calls`).
"""

from __future__ import annotations

from typing import Any


def parse(word: str) -> tuple[str, tuple[Any, ...]]:
    """`map(string, list(A))` -> ("map", (("string", ()), ("list", (("A", ()),))))."""
    word = word.strip()
    head, paren, rest = word.partition("(")
    if not paren:
        return head, ()
    if not rest.endswith(")"):
        raise ValueError(f"unbalanced type word {word!r}")
    inner, depth, start, params = rest[:-1], 0, 0, []
    for index, char in enumerate(inner):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            params.append(parse(inner[start:index]))
            start = index + 1
    params.append(parse(inner[start:]))
    return head.strip(), tuple(params)


def is_type_param(name: str) -> bool:
    return len(name) == 1 and name.isupper()


def is_optional(word: str) -> bool:
    """Whether a word is `optional_type(T)`."""
    return parse(word)[0] == "optional_type"


def mentions_optional(words: tuple[str, ...]) -> bool:
    """Whether any of the words has an optional type in it (the binding's `cel.Type` cannot say
    `optional_type(T)`: such a declaration goes through the configuration)."""
    return any("optional_type" in word for word in words)


def type_info(word: str) -> dict[str, Any]:
    """The YAML configuration's TypeInfo of a word."""
    return _info(parse(word))


def _info(parsed: tuple[str, tuple[Any, ...]]) -> dict[str, Any]:
    name, params = parsed
    info: dict[str, Any] = {"type_name": name}
    if is_type_param(name):
        info["is_type_param"] = True
    if params:
        info["params"] = [_info(p) for p in params]
    return info


def runtime_type(word: str) -> Any:
    """The `cel.Type` of a word in the running environment (type parameters are `dyn`)."""
    return _runtime(parse(word))


def _runtime(parsed: tuple[str, tuple[Any, ...]]) -> Any:
    from cel_expr_python import cel

    name, params = parsed
    if name == "optional_type":
        return _runtime(params[0])  # the value, or its zero value for none (see above)
    if name == "list":
        return cel.Type.List(_runtime(params[0]))
    if name == "map":
        return cel.Type.Map(_runtime(params[0]), _runtime(params[1]))
    if is_type_param(name):
        return cel.Type.DYN
    simple = {
        "bool": cel.Type.BOOL,
        "int": cel.Type.INT,
        "uint": cel.Type.UINT,
        "double": cel.Type.DOUBLE,
        "string": cel.Type.STRING,
        "bytes": cel.Type.BYTES,
        "null": cel.Type.NULL,
        "dyn": cel.Type.DYN,
        "timestamp": cel.Type.TIMESTAMP,
        "duration": cel.Type.DURATION,
    }
    return simple.get(name) or cel.Type(name)
