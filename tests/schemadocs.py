"""Hypothesis strategies for documents near a schema's valid ones: a valid document with a few
values replaced, keys deleted or added and list items repeated, for the property tests that keep
`policy_checks.fastschema`'s predicates equal to jsonschema."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

FAST_TIER_ENV = "POLICYHUB_TESTS_FAST_TIER"  # set by tests/conftest.py under --fast


def examples(suite: int) -> int:
    """How many examples a property test tries: `suite` in the whole suite, a tenth (at least
    25) in the fast tier, a loop of seconds where the whole suite's run is the thorough one."""
    return max(25, suite // 10) if os.environ.get(FAST_TIER_ENV) else suite


def values(samples: Sequence[Any] = ()) -> st.SearchStrategy[Any]:
    """Any JSON value, small, often one of `samples` (the strings a schema cares about)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-2, 2),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([*samples, ""]),
        st.text(max_size=8),
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
        ),
        max_leaves=6,
    )


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


@st.composite
def mutated(
    draw: st.DrawFn, base: Any, samples: Sequence[Any] = (), keys: Sequence[str] = ()
) -> Any:
    """`base` after up to three edits; `keys` are the names an added key is often given."""
    document: Any = copy.deepcopy(base)
    # Half of the new values are samples, so that many edited documents are still valid, or
    # invalid for one reason only (the reason the fast check must not miss).
    empty = st.builds(list) | st.builds(dict)
    new_values = st.sampled_from([*samples, "", "x"]) | empty | values(samples)
    new_keys = st.sampled_from([*keys, "x"]) | st.text(max_size=6)
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(paths(document)))
        if not where:
            document = draw(new_values)
            continue
        parent = document
        for step in where[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[where[-1]] = draw(new_values)
        elif action == "delete" and isinstance(parent, dict):
            del parent[where[-1]]
        elif action == "delete":  # in a list: repeat an item instead (uniqueItems)
            parent.append(copy.deepcopy(parent[where[-1]]))
        elif isinstance(parent, dict):
            parent[draw(new_keys)] = draw(new_values)
    return document


def single_edits(base: Any, replacements: Sequence[Any]) -> list[Any]:
    """Every document one edit away from `base`: each value replaced by each of `replacements`,
    each key deleted, each list item repeated. Deterministic, so a check that misses a single
    keyword fails every time, not once in a while."""
    documents = []
    for where in paths(base)[1:]:
        edits = [*(("replace", value) for value in replacements), ("delete", None)]
        for action, value in edits:
            document = copy.deepcopy(base)
            parent = document
            for step in where[:-1]:
                parent = parent[step]
            if action == "replace":
                parent[where[-1]] = copy.deepcopy(value)
            elif isinstance(parent, dict):
                del parent[where[-1]]
            else:
                parent.append(copy.deepcopy(parent[where[-1]]))
            documents.append(document)
    return documents
