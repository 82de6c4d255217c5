"""A library's declarations as one table at the top of its module, its implementations below:
each row is (function name, overload id, argument type words, result type word, member), the
receiver first among the arguments of a member; the implementations are looked up by overload
id when the module builds its `Library` at the bottom (Kubernetes' `*LibraryDecls` maps, as
data).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from policy_checks.cel.library import Function, Overload

Declaration = tuple[str, str, tuple[str, ...], str, bool]


def functions(
    declarations: tuple[Declaration, ...], implementations: Mapping[str, Callable[..., Any]]
) -> tuple[Function, ...]:
    """The table's rows as `Function`s, overloads of one name together in table order. Every
    overload needs an implementation and every implementation a row: a slip is an error when
    the module is imported, not a function that fails at evaluation."""
    ids = [row[1] for row in declarations]
    if len(set(ids)) != len(ids) or set(ids) != set(implementations):
        raise ValueError(
            f"declarations and implementations differ: {sorted(set(ids) ^ set(implementations))}"
        )
    by_name: dict[str, list[Overload]] = {}
    for name, overload_id, args, result, is_member in declarations:
        by_name.setdefault(name, []).append(
            Overload(overload_id, args, result, implementations[overload_id], member=is_member)
        )
    return tuple(Function(name, tuple(overloads)) for name, overloads in by_name.items())
