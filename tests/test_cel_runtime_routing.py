"""What the running environment adds under Kubernetes' libraries (policy_checks/cel/routing.py,
checkedast.rewrite_calls, messages' state bits): overloads the engine's runtime cannot tell apart
reach their own implementation, a dyn call goes to the first overload its values match, an
optional result is wrapped, and an opaque value's state survives without touching equality.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from policy_checks.cel import checkedast, messages, routing
from policy_checks.cel.environment import ENVIRONMENTS, run_expression
from policy_checks.cel.library import Overload, function, member
from tests.celcases import value

pytestmark = pytest.mark.fast


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # Both (message, message) at the engine's runtime: each reaches its own.
        ("quantity('2').isGreaterThan(quantity('1'))", True),
        ("semver('2.0.0').isGreaterThan(semver('1.0.0'))", True),
        # Resolved only when it runs: the dispatcher, by the values' types.
        ("dyn(semver('1.0.0')).compareTo(dyn(semver('2.0.0')))", -1),
        ("dyn(quantity('1')).compareTo(dyn(quantity('1000m')))", 0),
        # The engine's own overload of the same name, and a library's, side by side.
        ("dyn('abc').indexOf('c') + dyn(['a', 'c']).indexOf('c')", 3),
        # A uint list's overload gives a uint, its own implementation being the uint one.
        ("type([1u].sum()) == uint && type([1].sum()) == int", True),
    ],
)
def test_calls_reach_their_overload(expression: str, expected: Any) -> None:
    assert value(expression) == expected


def test_a_dispatched_call_no_overload_matches_is_cel_go_error() -> None:
    outcome = run_expression("dyn(quantity('1')).compareTo(dyn(semver('1.0.0')))")
    assert outcome.stage == "runtime"
    assert routing.NO_SUCH_OVERLOAD in outcome.message


def test_a_program_without_library_calls_is_left_as_it_is() -> None:
    program = ENVIRONMENTS.checking(()).compile("1 + 2 == 3 && 'a'.indexOf('a') == 0").serialize()
    assert ENVIRONMENTS.runnable(program) == program


def test_optional_results_are_wrapped_where_they_are_called() -> None:
    program = ENVIRONMENTS.checking(()).compile("format.named('uri').hasValue()").serialize()
    runnable = ENVIRONMENTS.runnable(program)
    assert runnable != program
    functions = {a.function for a in checkedast.literal_arguments(runnable)}
    assert "@format-named" in functions
    assert value("[format.named('x'), format.named('uri')].map(o, o.hasValue())") == [False, True]


def test_dispatcher_matches_types_as_cel_go() -> None:
    def impl(name: str) -> Any:
        return lambda *args: name

    overloads = [
        member("ints", "list(int)", (), "int", impl("int")),
        member("doubles", "list(double)", (), "double", impl("double")),
        member("durations", "list(duration)", (), "duration", impl("duration")),
    ]
    dispatch = routing.dispatcher(overloads)
    assert dispatch([]) == "int"  # an empty list matches the first
    assert dispatch([1.5, 1]) == "double"  # by the first element
    assert dispatch([datetime.timedelta(1)]) == "duration"
    with pytest.raises(ValueError, match=routing.NO_SUCH_OVERLOAD):
        dispatch(["a"])
    with pytest.raises(ValueError, match=routing.NO_SUCH_OVERLOAD):
        dispatch([True])  # a bool is not an int, though Python says so


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        (("kubernetes.Quantity", "kubernetes.Quantity"), ("kubernetes.Semver",) * 2, True),
        (("list(int)",), ("list(double)",), True),
        (("list(dyn)", "dyn"), ("string", "string"), False),
        (("dyn",), ("int",), True),
        (("int",), ("uint",), False),
    ],
)
def test_same_kinds(one: tuple[str, ...], other: tuple[str, ...], same: bool) -> None:
    first: Overload = member("a", one[0], one[1:], "bool", None)
    second: Overload = member("b", other[0], other[1:], "bool", None)
    assert routing.same_kinds(first, second) is same
    assert not routing.same_kinds(first, function("c", one, "bool", None))


def test_state_bits_ride_along_and_equality_ignores_them() -> None:
    messages.declare_opaque("policyhub.test.Stateful", state_bits=8)
    one = messages.opaque("policyhub.test.Stateful", "x", state=0b1011_0001)
    other = messages.opaque("policyhub.test.Stateful", "x", state=0)
    assert messages.state_of(one) == 0b1011_0001
    assert messages.text_of(one) == "x"
    assert messages.text_of(other) == "x" and messages.state_of(other) == 0
    # The engine compares them field by field, as numbers (-0.0 == 0.0): equal values in
    # different forms are equal (Python's protobuf compares the bits, and would not say so).
    assert value("quantity('1') == quantity('1000m') && quantity('1').isInteger()")
    with pytest.raises(ValueError, match="does not fit"):
        messages.opaque("policyhub.test.Stateful", "x", state=1 << 8)
