"""What changed between two versions of a policy, by meaning (rules added, removed and changed,
parameters, severity, enforcement, targets, metadata) and as text (both files, line by line).
Pure functions over the parsed files (docs/contract.md section 7), shared by the hub's pages and
the release preview; a definition of another shape is compared key by key, never refused.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

# What `enforcement` is when a definition does not say (docs/contract.md section 7).
DEFAULT_ENFORCEMENT = "audit"
# The metadata fields every version changes or that name the policy itself: not a change.
IDENTITY_FIELDS = ("name", "version")
# A text diff of two files is cut after this many lines (a 1 MiB file of one-line changes).
TEXT_DIFF_MAX_LINES = 2000


class _Missing:
    """The side of a change where the thing is absent (added or removed)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Change:
    """One field that differs: where (`path`, e.g. `severity`, `default`), and its value on
    either side (MISSING when absent on that side)."""

    path: str
    before: Any = MISSING
    after: Any = MISSING

    @property
    def kind(self) -> str:
        if self.before is MISSING:
            return "added"
        if self.after is MISSING:
            return "removed"
        return "changed"


@dataclass(frozen=True)
class ItemChange:
    """A rule or parameter present on both sides whose fields differ."""

    key: str
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class PolicyDiff:
    """Everything that differs between two versions, by meaning."""

    rules_added: tuple[str, ...] = ()
    rules_removed: tuple[str, ...] = ()
    rules_changed: tuple[ItemChange, ...] = ()
    rules_reordered: bool = False
    parameters_added: tuple[str, ...] = ()
    parameters_removed: tuple[str, ...] = ()
    parameters_changed: tuple[ItemChange, ...] = ()
    # severity, enforcement, targets, and any other key of the definition
    definition: tuple[Change, ...] = ()
    metadata: tuple[Change, ...] = ()
    # Full rules / parameters of added ones, for a reader who wants to see them.
    added: Mapping[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (
            self.rules_added
            or self.rules_removed
            or self.rules_changed
            or self.rules_reordered
            or self.parameters_added
            or self.parameters_removed
            or self.parameters_changed
            or self.definition
            or self.metadata
        )


def _spec(definition: Any) -> dict[str, Any]:
    spec = definition.get("spec") if isinstance(definition, dict) else None
    return spec if isinstance(spec, dict) else {}


def _keyed_rules(spec: Mapping[str, Any]) -> dict[str, dict[str, Any]] | None:
    """The rules by id, or None when they are not a list of objects with unique text ids."""
    rules = spec.get("rules")
    if not isinstance(rules, list):
        return None
    keyed: dict[str, dict[str, Any]] = {}
    for rule in rules:
        if not isinstance(rule, dict) or not isinstance(rule.get("id"), str):
            return None
        if rule["id"] in keyed:
            return None
        keyed[rule["id"]] = rule
    return keyed


def _keyed_parameters(spec: Mapping[str, Any]) -> dict[str, dict[str, Any]] | None:
    params = spec.get("parameters", {})
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        return None
    return params


def field_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], prefix: str = ""
) -> list[Change]:
    """The keys of two objects whose values differ (JSON equality), in a stable order: the
    keys of `before` first in their order, then those only `after` has."""
    keys = list(before) + [k for k in after if k not in before]
    changes = []
    for key in keys:
        old, new = before.get(key, MISSING), after.get(key, MISSING)
        if not _same(old, new):
            changes.append(Change(f"{prefix}{key}", old, new))
    return changes


def _same(a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return a is b
    # 1 and 1.0 and True differ in a policy file; JSON text tells them apart.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _items(
    old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[ItemChange, ...]]:
    added = tuple(k for k in new if k not in old)
    removed = tuple(k for k in old if k not in new)
    changed = []
    for key in old:
        if key in new:
            changes = field_changes(old[key], new[key])
            if changes:
                changed.append(ItemChange(key, tuple(changes)))
    return added, removed, tuple(changed)


def diff_policies(
    old_metadata: Any, old_definition: Any, new_metadata: Any, new_definition: Any
) -> PolicyDiff:
    """What changed from the old version to the new one, by meaning."""
    old_spec, new_spec = _spec(old_definition), _spec(new_definition)
    handled = {"rules", "parameters"}
    added: dict[str, Any] = {}
    result: dict[str, Any] = {}

    old_rules, new_rules = _keyed_rules(old_spec), _keyed_rules(new_spec)
    if old_rules is not None and new_rules is not None:
        rules_added, rules_removed, rules_changed = _items(old_rules, new_rules)
        kept_old = [k for k in old_rules if k in new_rules]
        kept_new = [k for k in new_rules if k in old_rules]
        result.update(
            rules_added=rules_added,
            rules_removed=rules_removed,
            rules_changed=rules_changed,
            rules_reordered=kept_old != kept_new,
        )
        added.update({f"rule {k}": new_rules[k] for k in rules_added})
    else:
        handled.discard("rules")  # compared as a whole, with the other keys of spec

    old_params, new_params = _keyed_parameters(old_spec), _keyed_parameters(new_spec)
    if old_params is not None and new_params is not None:
        params_added, params_removed, params_changed = _items(old_params, new_params)
        result.update(
            parameters_added=params_added,
            parameters_removed=params_removed,
            parameters_changed=params_changed,
        )
        added.update({f"parameter {k}": new_params[k] for k in params_added})
    else:
        handled.discard("parameters")

    def effective(spec: dict[str, Any]) -> dict[str, Any]:
        shown = {k: v for k, v in spec.items() if k not in handled}
        if spec and "enforcement" not in spec:
            shown["enforcement"] = DEFAULT_ENFORCEMENT
        return shown

    definition_changes = field_changes(effective(old_spec), effective(new_spec))
    old_rest = {k: v for k, v in _object(old_definition).items() if k != "spec"}
    new_rest = {k: v for k, v in _object(new_definition).items() if k != "spec"}
    if not (old_spec or new_spec):
        old_rest, new_rest = _object(old_definition), _object(new_definition)
    definition_changes += field_changes(old_rest, new_rest)
    old_meta = {k: v for k, v in _object(old_metadata).items() if k not in IDENTITY_FIELDS}
    new_meta = {k: v for k, v in _object(new_metadata).items() if k not in IDENTITY_FIELDS}
    return PolicyDiff(
        **result,
        definition=tuple(definition_changes),
        metadata=tuple(field_changes(old_meta, new_meta)),
        added=added,
    )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"(whole)": value}


def value_text(value: Any, limit: int = 200) -> str:
    """A value as a reader sees it in a change: text as is, anything else as compact JSON;
    capped at `limit` characters (the caller escapes it for where it goes)."""
    if value is MISSING:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _backticked(text: str) -> str:
    return f"`{text}`"


def _as_is(text: str) -> str:
    return text


def describe(
    diff: PolicyDiff,
    limit: int = 120,
    name: Callable[[str], str] = _backticked,
    value: Callable[[str], str] = _as_is,
) -> list[str]:
    """One line for each change, in the order a reviewer reads them (rules, parameters, the
    rest of the definition, metadata). `name` formats a rule's or parameter's id and `value` a
    value (capped at `limit` characters first) or a field's name: the caller's escaping for
    where the lines go (Markdown, a terminal)."""
    if diff.empty:
        return ["no change in meaning"]

    def change(c: Change) -> str:
        where = value(c.path)
        if c.kind == "added":
            return f"{where} added: {value(value_text(c.after, limit))}"
        if c.kind == "removed":
            return f"{where} removed (was {value(value_text(c.before, limit))})"
        before, after = value(value_text(c.before, limit)), value(value_text(c.after, limit))
        return f"{where}: {before} → {after}"

    lines = [f"rule {name(r)} added" for r in diff.rules_added]
    lines += [f"rule {name(r)} removed" for r in diff.rules_removed]
    for item in diff.rules_changed:
        lines += [f"rule {name(item.key)}: {change(c)}" for c in item.changes]
    if diff.rules_reordered:
        lines.append("rules reordered")
    lines += [f"parameter {name(p)} added" for p in diff.parameters_added]
    lines += [f"parameter {name(p)} removed" for p in diff.parameters_removed]
    for item in diff.parameters_changed:
        lines += [f"parameter {name(item.key)}: {change(c)}" for c in item.changes]
    lines += [change(c) for c in diff.definition]
    lines += [f"metadata {change(c)}" for c in diff.metadata]
    return lines


def metadata_text(metadata: Any) -> str:
    """metadata.json as the hub's record holds it, two-space indented (for a text diff)."""
    return json.dumps(metadata, indent=2, ensure_ascii=False) + "\n"


# The order in which docs/contract.md section 7 writes a definition's keys; a stored record's
# keys are sorted (canonical JSON), which puts `condition` before `id`.
_TOP_ORDER = ("apiVersion", "kind", "spec")
_SPEC_ORDER = ("severity", "enforcement", "targets", "parameters", "rules")
_RULE_ORDER = ("id", "description", "condition")
_PARAMETER_ORDER = ("type", "default", "description")


def _ordered(value: Any, order: tuple[str, ...]) -> Any:
    if not isinstance(value, dict):
        return value
    keys = [k for k in order if k in value] + [k for k in value if k not in order]
    return {k: value[k] for k in keys}


def reading_order(definition: Any) -> Any:
    """The definition with its known keys in the order people write them, the others after."""
    top = _ordered(definition, _TOP_ORDER)
    if not isinstance(top, dict) or not isinstance(top.get("spec"), dict):
        return top
    spec = _ordered(top["spec"], _SPEC_ORDER)
    if isinstance(spec.get("rules"), list):
        spec["rules"] = [_ordered(rule, _RULE_ORDER) for rule in spec["rules"]]
    if isinstance(spec.get("parameters"), dict):
        spec["parameters"] = {
            k: _ordered(v, _PARAMETER_ORDER) for k, v in spec["parameters"].items()
        }
    return {**top, "spec": spec}


def definition_text(definition: Any) -> str:
    """policy-definition.yaml from a record's definition, in block style, its keys in the
    order people write them (for a text diff and the version page)."""
    text: str = yaml.safe_dump(
        reading_order(definition),
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return text


def text_diff(
    before: str, after: str, before_name: str, after_name: str, context: int = 3
) -> list[str]:
    """The unified diff of two texts (lines without their ends), at most TEXT_DIFF_MAX_LINES
    lines and a last one saying how many more there were."""
    lines = list(
        difflib.unified_diff(
            before.splitlines(),
            after.splitlines(),
            before_name,
            after_name,
            n=context,
            lineterm="",
        )
    )
    if len(lines) > TEXT_DIFF_MAX_LINES:
        more = len(lines) - TEXT_DIFF_MAX_LINES
        lines = [*lines[:TEXT_DIFF_MAX_LINES], f"… {more} more lines of diff"]
    return lines


def file_diffs(
    old: tuple[Any, Any], new: tuple[Any, Any], old_label: str, new_label: str
) -> list[tuple[str, list[str]]]:
    """The text diff of both files of two versions ((metadata, definition) each): a list of
    (file name, unified diff lines), a file that is the same having no lines."""
    pairs: Iterable[tuple[str, str, str]] = (
        ("metadata.json", metadata_text(old[0]), metadata_text(new[0])),
        ("policy-definition.yaml", definition_text(old[1]), definition_text(new[1])),
    )
    return [
        (name, text_diff(a, b, f"{old_label}/{name}", f"{new_label}/{name}"))
        for name, a, b in pairs
    ]
