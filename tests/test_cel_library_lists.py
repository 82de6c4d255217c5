"""Kubernetes' lists library (policy_checks/cel/library/lists.py) through the whole environment:
the "stdlib list functions" rules of k8s.io/apiextensions-apiserver
`pkg/apiserver/schema/cel/validation_test.go` (the library has no test file of its own), the
examples of `pkg/cel/library/lists.go`, cel-go's comparison and equality rules it relies on, and
hostile inputs.
"""

from __future__ import annotations

from typing import Any

import pytest

from policy_checks.cel.environment import run_expression
from tests import celcases
from tests.celcases import compile_error

pytestmark = pytest.mark.fast

RESOURCE = {
    "ints": [1, 2, 2, 3],
    "unsortedInts": [2, 1],
    "emptyInts": [],
    "doubles": [1.0, 2.0, 2.0, 3.0],
    "unsortedDoubles": [2.0, 1.0],
    "strings": ["a", "b", "b", "c"],
    "unsortedStrings": ["b", "a"],
    "objs": [{"f1": "a", "f2": "a"}, {"f1": "a", "f2": "b"}, {"f1": "a", "f2": "b"}],
}


def value(expression: str, **variables: Any) -> Any:
    return celcases.value(expression, self=RESOURCE, **variables)


def runtime_error(expression: str, **variables: Any) -> str:
    return celcases.runtime_error(expression, self=RESOURCE, **variables)


DURATIONS = "[duration('1s'), duration('1m'), duration('1m'), duration('1h')]"
DATES = (
    "[timestamp('2000-01-01T00:00:00.000Z'), timestamp('2000-02-01T00:00:00.000Z'), "
    "timestamp('2000-02-01T00:00:00.000Z'), timestamp('2010-01-01T00:00:00.000Z')]"
)
EMPTY_DOUBLES = "[1.0].filter(x, false)"  # a list(double), empty
EMPTY_DURATIONS = "[duration('1s')].filter(x, false)"

# validation_test.go "stdlib list functions", valid rules (the typed lists written as literals,
# the dyn ones bound as JSON, as a resource without a schema is).
VALID = [
    "self.ints.sum() == 8",
    "self.ints.min() == 1",
    "self.ints.max() == 3",
    "self.emptyInts.sum() == 0",
    "self.ints.isSorted()",
    "self.emptyInts.isSorted()",
    "self.unsortedInts.isSorted() == false",
    "self.ints.indexOf(2) == 1",
    "self.ints.lastIndexOf(2) == 2",
    "self.ints.indexOf(10) == -1",
    "self.ints.lastIndexOf(10) == -1",
    "self.doubles.sum() == 8.0",
    "self.doubles.min() == 1.0",
    "self.doubles.max() == 3.0",
    f"{EMPTY_DOUBLES}.sum() == 0.0",
    "self.doubles.isSorted()",
    f"{EMPTY_DOUBLES}.isSorted()",
    "self.unsortedDoubles.isSorted() == false",
    "self.doubles.indexOf(2.0) == 1",
    "self.doubles.lastIndexOf(2.0) == 2",
    "self.doubles.indexOf(10.0) == -1",
    "self.doubles.lastIndexOf(10.0) == -1",
    f"{DURATIONS}.sum() == duration('1h2m1s')",
    f"{DURATIONS}.min() == duration('1s')",
    f"{DURATIONS}.max() == duration('1h')",
    f"{EMPTY_DURATIONS}.sum() == duration('0')",
    f"{DURATIONS}.isSorted()",
    f"{EMPTY_DURATIONS}.isSorted()",
    "[duration('1m'), duration('1s')].isSorted() == false",
    f"{DURATIONS}.indexOf(duration('1m')) == 1",
    f"{DURATIONS}.lastIndexOf(duration('1m')) == 2",
    f"{DURATIONS}.indexOf(duration('2m')) == -1",
    f"{DURATIONS}.lastIndexOf(duration('2m')) == -1",
    "self.strings.min() == 'a'",
    "self.strings.max() == 'c'",
    "self.strings.isSorted()",
    "self.unsortedStrings.isSorted() == false",
    "self.strings.indexOf('b') == 1",
    "self.strings.lastIndexOf('b') == 2",
    "self.strings.indexOf('x') == -1",
    "self.strings.lastIndexOf('x') == -1",
    f"{DATES}.min() == timestamp('2000-01-01T00:00:00.000Z')",
    f"{DATES}.max() == timestamp('2010-01-01T00:00:00.000Z')",
    f"{DATES}.isSorted()",
    "[timestamp('2000-02-01T00:00:00Z'), timestamp('2000-01-01T00:00:00Z')].isSorted() == false",
    f"{DATES}.indexOf(timestamp('2000-02-01T00:00:00.000Z')) == 1",
    f"{DATES}.lastIndexOf(timestamp('2000-02-01T00:00:00.000Z')) == 2",
    f"{DATES}.indexOf(timestamp('2005-02-01T00:00:00.000Z')) == -1",
    # Lists, maps and objects: structural equality.
    "[[1], [2]].indexOf([1]) == 0",
    "[{'a': 1}, {'b': 2}].lastIndexOf({'b': 2}) == 1",
    "self.objs.indexOf(self.objs[1]) == 1",
    "self.objs.lastIndexOf(self.objs[1]) == 2",
    "([0] + self.emptyInts).min() == 0",
    # CEL's dynamic dispatch: the overload of the first element's type.
    "dyn([]).sum() == 0",
    "dyn([1, 2]).sum() == 3",
    "dyn([1.0, 2.0]).sum() == 3.0",
    "[].sum() == 0",
    # lists.go's documentation.
    "[1, 2, 3].isSorted()",
    "['a', 'b', 'b', 'c'].isSorted()",
    "[2.0, 1.0].isSorted() == false",
    "[1].isSorted()",
    "[].isSorted()",
    "[1, 3].sum() == 4",
    "[1.0, 3.0].sum() == 4.0",
    "[duration('1m'), duration('1s')].sum() == duration('1m1s')",
    "[1, 3].min() == 1",
    "[1, 3].max() == 3",
    "[1].min() == 1",
    "[1, 2, 2, 3].indexOf(2) == 1",
    "['a', 'b', 'b', 'c'].lastIndexOf('b') == 2",
    "[1.0].indexOf(1.1) == -1",
    "[].indexOf('string') == -1",
    # includes (ListsVersion 1).
    "[1, 2, 3].includes(2)",
    "[1, 2, 3].includes(4) == false",
    "'model-a'.includes('model-a')",
    "'model-a'.includes('model-b') == false",
    # The types the checker gives the results.
    "type([1u, 2u].sum()) == uint",
    "type([1u, 5u].max()) == uint",
    "type([1, 2].sum()) == int",
    "type([b'a', b'b'].max()) == bytes",
    "[true, false].max() == true && [false, true].isSorted()",
    # cel-go compares across int, uint and double, and ignores what it cannot compare. A list
    # literal of mixed types is refused when compiling (HomogeneousAggregateLiterals): `dyn`
    # on each element is how Kubernetes writes one.
    "[dyn(1), dyn(2.5), dyn(3u)].isSorted()",
    # An element it cannot compare still becomes the previous.
    "[dyn(1), dyn('a'), dyn(0)].isSorted()",
    "[dyn(1), dyn('a')].max() == 1",
    "[dyn(1.0), dyn(2)].indexOf(2.0) == 1",
    "[1, 2].indexOf(2.0) == 1",
    # Equality is CEL's: a quantity equals another of its value, whatever form holds it.
    "[quantity('1')].indexOf(quantity('1000m')) == 0",
    "[semver('1.0.0+a')].includes(semver('1.0.0'))",
    "dyn([0.0/0.0, 1.0]).isSorted()",
    "dyn([1.0, 0.0/0.0]).min() == 1.0",
]


@pytest.mark.parametrize("expression", VALID)
def test_valid_rules(expression: str) -> None:
    assert value(expression) is True


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("self.emptyInts.min() == 1", "min called on empty list"),
        ("self.emptyInts.max() == 3", "max called on empty list"),
        (f"{EMPTY_DOUBLES}.min() == 1.0", "min called on empty list"),
        (f"{EMPTY_DOUBLES}.max() == 3.0", "max called on empty list"),
        ("['a'].filter(x, false).min() == 'a'", "min called on empty list"),
        ("['a'].filter(x, false).max() == 'c'", "max called on empty list"),
        ("[9223372036854775807, 1].sum()", "integer overflow"),
        ("[-9223372036854775807, -2].sum()", "integer overflow"),
        ("[18446744073709551615u, 1u].sum()", "unsigned integer overflow"),
        ("[dyn(1), dyn(2.0)].sum()", "no such overload"),  # Int(0).Add(Double) in cel-go
        ("dyn([null]).max()", "no such overload"),
        ("dyn([[1]]).isSorted()", "no such overload"),
    ],
)
def test_errors(expression: str, message: str) -> None:
    assert message in runtime_error(expression)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("['a', 'b'].sum() == 'c'", "found no matching overload for 'sum' applied to"),
        ("[[1], [2]].min() == [1]", "found no matching overload for 'min' applied to"),
        ("[{'a': 1}, {'b': 2}].max() == {'b': 2}", "found no matching overload for 'max'"),
    ],
)
def test_compile_errors(expression: str, message: str) -> None:
    assert message in compile_error(expression)


def test_string_index_functions_of_the_strings_extension_still_work() -> None:
    assert value("'hello'.indexOf('o') == 4 && 'hello'.lastIndexOf('l') == 3")
    assert value("'hello'.indexOf('l', 3) == 3")


def test_durations_reach_python_to_the_microsecond() -> None:
    # A known difference, pinned: the binding hands Python a timedelta.
    assert value("[duration('1ns')].sum() == duration('0')")


HOSTILE = [list(range(100_000)), [1.5] * 100_000, ["x" * 1000] * 1000, [[1]] * 10_000]


@pytest.mark.parametrize("items", HOSTILE, ids=lambda i: f"{type(i[0]).__name__}x{len(i)}")
def test_long_lists_return(items: list[Any]) -> None:
    outcome = run_expression(
        "[l.indexOf(l[0]), l.lastIndexOf(l[0]), l.includes(-1), l.isSorted()]", {"l": items}
    )
    # A list of lists is not sortable: an error, returned as quickly as the rest.
    assert outcome.stage == ("runtime" if isinstance(items[0], list) else "value"), outcome


def test_timestamps_compare() -> None:
    assert value(
        "[timestamp('2000-01-01T00:00:00Z'), timestamp('1999-01-01T00:00:00Z')].min()"
        " == timestamp('1999-01-01T00:00:00Z')"
    )
