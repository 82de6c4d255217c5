"""Kubernetes' lists library at ListsVersion(1), the base environment's since 1.37: `isSorted`,
`sum`, `min`, `max`, `indexOf`, `lastIndexOf` and `includes`, ported from k8s.io/apiserver
`pkg/cel/library/lists.go` (commit 24a394e516bf) with the cel-go semantics it relies on
(`traits.Comparer`'s Compare, `traits.Adder`'s Add, `Equal`, at cel-go v0.29.2).

Declared as Kubernetes declares them: one overload an element type (`list(int).sum()` is an int,
`list(uint).sum()` a uint) for the checker, each run by the implementation of its own type
(`policy_checks.cel.routing`); a list whose type is only known when the condition runs goes to the
overload of its first element's type, as in cel-go. Python hands an implementation int for both
int and uint, so there a uint list is summed and compared as an int list.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Sequence
from typing import Any

from policy_checks.cel import messages
from policy_checks.cel.library import Function, Library, member

NO_SUCH_OVERLOAD = "no such overload"
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1

# lists.go's comparableTypes and summableTypes, in their order (the order of the overloads, which
# is the order a dyn list is matched in).
COMPARABLE = ("int", "uint", "double", "bool", "duration", "timestamp", "string", "bytes")
SUMMABLE = ("int", "uint", "double", "duration")


def _declarations() -> tuple[Function, ...]:
    return (
        Function(
            "isSorted",
            tuple(
                member(f"list_{t}_is_sorted_bool", f"list({t})", (), "bool", _is_sorted)
                for t in COMPARABLE
            ),
        ),
        Function(
            "sum",
            tuple(member(f"list_{t}_sum_{t}", f"list({t})", (), t, _sum(t)) for t in SUMMABLE),
        ),
        Function(
            "max",
            tuple(
                member(f"list_{t}_max_{t}", f"list({t})", (), t, _extreme("max", -1))
                for t in COMPARABLE
            ),
        ),
        Function(
            "min",
            tuple(
                member(f"list_{t}_min_{t}", f"list({t})", (), t, _extreme("min", 1))
                for t in COMPARABLE
            ),
        ),
        # Kubernetes: list(A).indexOf(A). The strings extension has indexOf and lastIndexOf
        # already, and the engine's configuration, the only place a type parameter can be
        # declared, refuses a second declaration of a function: so list(dyn) and dyn, and a
        # list of one type searched for another compiles here (and answers -1).
        Function(
            "indexOf",
            (member("list_a_index_of_int", "list(dyn)", ("dyn",), "int", _index_of),),
        ),
        Function(
            "lastIndexOf",
            (member("list_a_last_index_of_int", "list(dyn)", ("dyn",), "int", _last_index_of),),
        ),
        Function(
            "includes",
            (member("list_includes_dyn_dyn", "dyn", ("dyn",), "bool", _includes),),
        ),
    )


# -- cel-go's Compare, Add and Equal over the values the binding hands Python -------------------


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _compare_int_double(i: int, d: float) -> int | None:
    """compareIntDouble (a uint past int64 has only its own branch: compareUintDouble)."""
    if math.isnan(d):
        return None  # "NaN values cannot be ordered"
    low, high = (0, _UINT64_MAX) if i > _INT64_MAX else (_INT64_MIN, _INT64_MAX)
    if d < low:
        return 1
    if d > high:
        return -1
    return _order(float(i), d)  # Double(i): the nearest float64, as Go converts


def compare(a: Any, b: Any) -> int | None:
    """traits.Comparer's Compare: -1, 0 or 1, or None for cel-go's error value (another type,
    a NaN), which the library's callers ignore."""
    if _is_bool(a) or _is_bool(b):
        return _order(a, b) if _is_bool(a) and _is_bool(b) else None
    if _is_int(a) and _is_int(b):
        return _order(a, b)
    if _is_int(a) and isinstance(b, float):
        return _compare_int_double(a, b)
    if isinstance(a, float) and _is_int(b):
        found = _compare_int_double(b, a)
        return None if found is None else -found
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return None
        return _order(a, b)
    for kind in (str, bytes | bytearray, datetime.timedelta, datetime.datetime):
        if isinstance(a, kind):
            return _order(a, b) if isinstance(b, kind) else None
    return None


def _order(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


def _comparable(value: Any) -> bool:
    """Whether cel-go's value is a traits.Comparer."""
    return isinstance(
        value,
        bool | int | float | str | bytes | bytearray | datetime.timedelta | datetime.datetime,
    )


def equal(a: Any, b: Any) -> bool:
    """ref.Val's Equal, True only when it is types.True: CEL's heterogeneous equality."""
    if _is_bool(a) or _is_bool(b):
        return _is_bool(a) and _is_bool(b) and a == b
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers):
        if isinstance(a, float) and isinstance(b, float):
            return a == b
        if isinstance(a, float):
            a, b = b, a
        if isinstance(b, float):
            return _compare_int_double(a, b) == 0
        return bool(a == b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        if len(a) != len(b):
            return False
        # Keys are ints, uints, bools and strings: Python's lookup finds the equal key.
        return all(key in b and equal(item, b[key]) for key, item in a.items())
    descriptor = getattr(a, "DESCRIPTOR", None)
    if descriptor is not None:
        other = getattr(b, "DESCRIPTOR", None)
        if other is None or other.full_name != descriptor.full_name:
            return False
        if messages.STATE_FIELD in descriptor.fields_by_name:
            # The engine's equality ignores an opaque value's state; Python's protobuf would not.
            return messages.text_of(a) == messages.text_of(b)
        return bool(a == b)
    if isinstance(a, bytes | bytearray) or isinstance(b, bytes | bytearray):
        return isinstance(a, bytes | bytearray) and isinstance(b, bytes | bytearray) and a == b
    return type(a) is type(b) and bool(a == b)


def _elements(values: Any) -> Sequence[Any]:
    if not isinstance(values, list):
        raise ValueError(NO_SUCH_OVERLOAD)
    return values


# -- the functions ------------------------------------------------------------------------------


def _is_sorted(values: Any) -> bool:
    previous: Any = None
    for index, value in enumerate(_elements(values)):
        if not _comparable(value):
            raise ValueError(NO_SUCH_OVERLOAD)
        if index and compare(previous, value) == 1:
            return False
        previous = value
    return True


_ZEROS: dict[str, Any] = {
    "int": 0,
    "uint": 0,
    "double": 0.0,
    "duration": datetime.timedelta(0),
}


def _add(kind: str, total: Any, value: Any) -> Any:
    """The Add of an int, uint, double or duration accumulator, with cel-go's overflow errors."""
    if kind in ("int", "uint"):
        if not _is_int(value):
            raise ValueError(NO_SUCH_OVERLOAD)
        result = total + value
        if kind == "int" and not _INT64_MIN <= result <= _INT64_MAX:
            raise ValueError("integer overflow")
        if kind == "uint" and not 0 <= result <= _UINT64_MAX:
            raise ValueError("unsigned integer overflow")
        return result
    if kind == "double":
        if not isinstance(value, float):
            raise ValueError(NO_SUCH_OVERLOAD)
        return total + value
    if not isinstance(value, datetime.timedelta):
        raise ValueError(NO_SUCH_OVERLOAD)
    result = total + value
    if not _INT64_MIN <= result // datetime.timedelta(microseconds=1) * 1000 <= _INT64_MAX:
        raise ValueError("integer overflow")
    return result


def _sum(kind: str) -> Callable[[Any], Any]:
    def total(values: Any) -> Any:
        result = _ZEROS[kind]
        for value in _elements(values):
            result = _add(kind, result, value)
        return result

    return total


def _extreme(name: str, replace_when: int) -> Callable[[Any], Any]:
    """lists.go's cmp: the first element, replaced by each later one when the element held
    compares `replace_when` against it (1 for min, -1 for max; an error, never); an empty list
    is an error."""

    def extreme(values: Any) -> Any:
        found: list[Any] = []
        for value in _elements(values):
            if not _comparable(value):
                raise ValueError(NO_SUCH_OVERLOAD)
            if not found:
                found.append(value)
            elif compare(found[0], value) == replace_when:
                found[0] = value
        if not found:
            raise ValueError(f"{name} called on empty list")
        return found[0]

    return extreme


def _index_of(values: Any, item: Any) -> int:
    for index, value in enumerate(_elements(values)):
        if equal(value, item):
            return index
    return -1


def _last_index_of(values: Any, item: Any) -> int:
    elements = _elements(values)
    for index in range(len(elements) - 1, -1, -1):
        if equal(elements[index], item):
            return index
    return -1


def _includes(target: Any, item: Any) -> bool:
    if isinstance(target, list):
        return any(equal(value, item) for value in target)
    return equal(target, item)


LIBRARY = Library("kubernetes.lists", _declarations())
