"""Every function and macro a condition can call, and how each is called (on a value, `x.f()`, or
with its arguments, `f(x)`): what *did you mean* and "called the wrong way" messages are made
from. cel-spec's standard definitions and the engine's extensions are listed here; Kubernetes'
libraries are read from their declarations (`policy_checks.cel.library`).
"""

from __future__ import annotations

from functools import cache

MACROS = {
    "has": "has(resource.field) tests whether a field is present",
    "all": "list.all(x, condition), or list.all(i, x, condition) with the index",
    "exists": "list.exists(x, condition), or list.exists(i, x, condition)",
    "exists_one": "list.exists_one(x, condition)",
    "existsOne": "list.existsOne(i, x, condition)",
    "map": "list.map(x, expression), or list.map(x, filter, expression)",
    "filter": "list.filter(x, condition)",
    "transformList": "list.transformList(i, x, expression)",
    "transformMap": "map.transformMap(k, v, expression)",
    "transformMapEntry": "map.transformMapEntry(k, v, {key: value})",
    "optMap": "optional.optMap(x, expression)",
    "optFlatMap": "optional.optFlatMap(x, expression)",
    "cel.bind": "cel.bind(name, value, expression)",
}

# Called on a value: `x.f(...)`.
_MEMBERS = (
    "contains startsWith endsWith matches size getDate getDayOfMonth getDayOfWeek getDayOfYear "
    "getFullYear getHours getMilliseconds getMinutes getMonth getSeconds charAt indexOf "
    "lastIndexOf lowerAscii upperAscii replace split substring trim join quote format reverse "
    "hasValue value orValue or slice flatten sort sortBy distinct first last"
)
# Called with their arguments: `f(x)`.
_GLOBALS = (
    "size int uint double string bytes bool duration timestamp type dyn matches "
    "math.greatest math.least math.ceil math.floor math.round math.trunc math.abs math.sign "
    "math.isNaN math.isInf math.isFinite math.bitAnd math.bitOr math.bitXor math.bitNot "
    "math.bitShiftLeft math.bitShiftRight math.sqrt strings.quote lists.range "
    "sets.contains sets.equivalent sets.intersects optional.of optional.none "
    "optional.ofNonZeroValue"
)


@cache
def forms() -> dict[str, frozenset[str]]:
    """name -> the ways it is called: {"member"}, {"global"} or both."""
    table: dict[str, set[str]] = {}
    for name in _MEMBERS.split():
        table.setdefault(name, set()).add("member")
    for name in _GLOBALS.split():
        table.setdefault(name, set()).add("global")
    from policy_checks.cel.library import libraries

    for library in libraries():
        if library.where == "run":
            continue
        for function in library.functions:
            if function.name.startswith("_") or "@" in function.name:
                continue
            for overload in function.overloads:
                table.setdefault(function.name, set()).add(
                    "member" if overload.member else "global"
                )
    return {name: frozenset(ways) for name, ways in table.items()}


def every_name() -> list[str]:
    return sorted({*forms(), *MACROS})
