"""How a call of a library's function reaches its implementation in the running environment.

The engine registers a runtime overload by the kinds of its arguments: `isGreaterThan` of two
quantities and of two versions are both (message, message), `sum` of a list(int) and of a
list(double) both (list), and the engine refuses the second of each. So the running environment
declares each overload under a name of its own (`runtime_name`), and the program it runs calls
the overload the checker resolved (`policy_checks.cel.checkedast.rewrite_calls`). A call the
checker resolved to several overloads (a `dyn` argument) calls the function's dispatcher, which
picks the first overload, in declaration order, whose argument types the values have, as cel-go
does (a list by its first element, an empty list matching any), or fails with cel-go's
`no such overload`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import Any

from policy_checks.cel import types
from policy_checks.cel.library import Overload

NO_SUCH_OVERLOAD = "no such overload"


def runtime_name(overload: Overload) -> str:
    """The running environment's name of one overload (an id is unique across libraries)."""
    return f"@{overload.id}"


def dispatcher_name(function: str) -> str:
    return f"@dispatch.{function}"


def dispatcher(overloads: Sequence[Overload]) -> Callable[..., Any]:
    """One implementation for overloads of one function, style and arity: the first whose
    argument types the values have runs."""

    def dispatch(*values: Any) -> Any:
        for overload in overloads:
            if overload.impl is not None and all(
                _has_type(types.parse(word), value)
                for word, value in zip(overload.args, values, strict=True)
            ):
                return overload.impl(*values)
        raise ValueError(NO_SUCH_OVERLOAD)

    return dispatch


def same_kinds(one: Overload, other: Overload) -> bool:
    """Whether the engine's runtime would take the two for one overload: the same call style
    and arity, and at each argument the same kind (a message of any type is one kind, a list of
    any element another; dyn is every kind)."""
    if one.member != other.member or len(one.args) != len(other.args):
        return False
    return all(
        "dyn" in (a, b) or a == b
        for a, b in zip(map(_kind, one.args), map(_kind, other.args), strict=True)
    )


def _kind(word: str) -> str:
    name, _params = types.parse(word)
    if name == "dyn" or types.is_type_param(name):
        return "dyn"
    if name in _SCALARS or name in ("list", "map"):
        return name
    return "message"


_SCALARS: dict[str, Callable[[Any], bool]] = {
    # Python has one int for CEL's int and uint: either matches either.
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "uint": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, float),
    "bool": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "bytes": lambda v: isinstance(v, bytes | bytearray),
    "null": lambda v: v is None,
    "duration": lambda v: isinstance(v, datetime.timedelta),
    "timestamp": lambda v: isinstance(v, datetime.datetime),
}


def _has_type(word: tuple[str, tuple[Any, ...]], value: Any) -> bool:
    """cel-go's Type.IsAssignableRuntimeType, over the values the binding hands Python."""
    name, params = word
    if name == "dyn" or types.is_type_param(name):
        return True
    if name in _SCALARS:
        return _SCALARS[name](value)
    if name == "list":
        if not isinstance(value, list):
            return False
        return not value or _has_type(params[0], value[0])
    if name == "map":
        if not isinstance(value, dict):
            return False
        if not value:
            return True
        key, item = next(iter(value.items()))
        return _has_type(params[0], key) and _has_type(params[1], item)
    descriptor = getattr(value, "DESCRIPTOR", None)
    return descriptor is not None and descriptor.full_name == name
