"""The libraries Kubernetes adds to CEL (k8s.io/apiserver `pkg/cel/library`), one module a
library, each a `Library` value: its functions' declarations as data (type words of
`policy_checks.cel.types`), the Python that runs them, the opaque types it makes, and the checks
of its constant arguments (a literal that cannot be parsed is refused when compiling, at its
column, as Kubernetes refuses such a policy when it is created).

An implementation takes and returns plain Python values (bool, int, float, str, bytes, list,
dict, datetime, timedelta) or opaque values (`policy_checks.cel.messages.opaque`); raising
`ValueError` (or any exception) makes the call an evaluation error with its message, which is
what a rule's `error` result then says. Implementations run on untrusted data in the evaluating
process, under its time and memory bounds (`policy_checks.evaluator`): keep them linear.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

# A constant check takes a literal string argument and answers None (fine) or why it is not.
ConstantCheck = Callable[[str], str | None]


@dataclass(frozen=True)
class Overload:
    """One overload: `args` are type words; with `member`, args[0] is the receiver."""

    id: str
    args: tuple[str, ...]
    result: str
    impl: Callable[..., Any] | None = None
    member: bool = False


@dataclass(frozen=True)
class Function:
    name: str
    overloads: tuple[Overload, ...]


@dataclass(frozen=True)
class Library:
    name: str
    functions: tuple[Function, ...]
    # Full names of the opaque types it makes (`net.IP`): each becomes a one-field message.
    opaque_types: tuple[str, ...] = ()
    # By function name, or by overload id where only one overload's literal is to be checked:
    # the check of a string literal at an argument position (0 = the receiver of a member call
    # or the first argument of a global one).
    constants: Mapping[str, tuple[int, ConstantCheck]] = field(default_factory=dict)
    # Where it is declared: "both", "check" (the running environment has these overloads of its
    # own) or "run" (the checker has them, the runtime lacks an implementation).
    where: str = "both"


def implemented(
    declared: tuple[Function, ...], implementations: Mapping[str, Callable[..., Any]]
) -> tuple[Function, ...]:
    """Declared functions with each overload's implementation (by overload id) filled in. As
    `declarations.functions` for tables: every overload needs one and every implementation an
    overload, or the module fails when it is imported."""
    ids = [o.id for f in declared for o in f.overloads]
    if len(set(ids)) != len(ids) or set(ids) != set(implementations):
        raise ValueError(
            f"declarations and implementations differ: {sorted(set(ids) ^ set(implementations))}"
        )
    return tuple(
        Function(f.name, tuple(replace(o, impl=implementations[o.id]) for o in f.overloads))
        for f in declared
    )


def refusal(parse: Callable[[str], object]) -> ConstantCheck:
    """The constant check of a literal that `parse` reads: None when it parses, else the
    message it raises (`ValueError`, Kubernetes' words), which the condition's finding shows."""

    def check(text: str) -> str | None:
        try:
            parse(text)
        except ValueError as exc:
            return str(exc)
        return None

    return check


def member(id: str, receiver: str, args: tuple[str, ...], result: str, impl: Any) -> Overload:
    """A member overload: `receiver.name(args...)`."""
    return Overload(id, (receiver, *args), result, impl, member=True)


def function(id: str, args: tuple[str, ...], result: str, impl: Any) -> Overload:
    """A global overload: `name(args...)`."""
    return Overload(id, args, result, impl)


def libraries() -> tuple[Library, ...]:
    """Every library of the environment, in the order they are declared."""
    from policy_checks.cel.library import builtin

    found: list[Library] = list(builtin.LIBRARIES)
    for name in _MODULES:
        module = __import__(f"policy_checks.cel.library.{name}", fromlist=["LIBRARY"])
        found.append(module.LIBRARY)
    return tuple(found)


# Kubernetes' libraries, each in the module of its name (k8s.io/apiserver pkg/cel/library).
_MODULES = ("lists", "regex", "urls", "ip", "cidr", "quantity", "semver", "format")
