"""The rules as data: the two JSON Schemas and the cross-file rules of `rules.yaml`.

Loads the built-in rules shipped in `policy_checks/rules/`, merges a repository's own, and
evaluates the cross-file rule kinds (`equals`, `unique`) with a tiny generic evaluator.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policy_checks.fastschema import compile_predicate
from policy_checks.jsonpath import Path as JsonPath
from policy_checks.jsonpath import find, parse_path
from policy_checks.loading import Document, load_json, load_yaml
from policy_checks.naming import DEFINITION_FILE, METADATA_FILE

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

METADATA_SCHEMA_FILE = "metadata.schema.json"
DEFINITION_SCHEMA_FILE = "definition.schema.json"
RULES_FILE = "rules.yaml"


class RulesError(ValueError):
    """A rules file (built-in or a repository's) cannot be used; the message names the file."""


# The shape of a rules.yaml; `to` applies to equals only.
RULES_FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["rules"],
    "additionalProperties": False,
    "properties": {
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "kind", "file", "path", "message"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$"},
                    "kind": {"enum": ["equals", "unique"]},
                    "file": {"enum": [METADATA_FILE, DEFINITION_FILE]},
                    "path": {"type": "string"},
                    "to": {"enum": ["folder.name", "folder.version"]},
                    "message": {"type": "string", "minLength": 1},
                    "hint": {"type": "string"},
                },
                "if": {"properties": {"kind": {"const": "equals"}}},
                "then": {"required": ["to"]},
            },
        }
    },
}
# jsonschema (imported only then) words a rules file that this refuses.
_rules_file_conforms = compile_predicate(RULES_FILE_SCHEMA, "rules-file")


@dataclass(frozen=True)
class Rule:
    """One declared cross-file rule."""

    id: str
    kind: str
    file: str
    path: str
    message: str
    hint: str | None = None
    to: str | None = None

    @functools.cached_property
    def segments(self) -> tuple[Any, ...]:
        return parse_path(self.path)


@dataclass(frozen=True)
class RuleSet:
    """Everything a PolicyChecker enforces beyond the folder-level checks."""

    metadata_schema: dict[str, Any]
    definition_schema: dict[str, Any]
    rules: tuple[Rule, ...]


def _fail_on(document: Document, where: str) -> Any:
    if not document.ok:
        raise RulesError(f"{where}: " + "; ".join(f.render() for f in document.findings))
    return document.value


def _read_schema(data: bytes, where: str, *, ours: bool = False) -> dict[str, Any]:
    """A schema file; a repository's is checked against its metaschema, ours are checked by the
    tests (tests/test_fastschema.py) rather than in every run."""
    schema = _fail_on(load_json(data, where), where)
    if not isinstance(schema, dict):
        raise RulesError(f"{where}: a JSON Schema must be a JSON object")
    if ours:
        return schema
    import jsonschema
    from jsonschema.validators import validator_for

    cls = validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        at = "$" + "".join(f"[{p!r}]" for p in exc.absolute_path)
        raise RulesError(f"{where}: not a valid JSON Schema: {exc.message} (at {at})") from None
    return schema


def _read_rules(data: bytes, where: str) -> tuple[Rule, ...]:
    content = _fail_on(load_yaml(data, where), where)
    error = None if _rules_file_conforms(content) else _rules_file_error(content)
    if error is not None:
        at = "$" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.path)
        raise RulesError(f"{where}: {at}: {error.message}")
    rules = []
    for index, entry in enumerate(content["rules"]):
        rule = Rule(**entry)
        try:
            rule.segments  # noqa: B018 - parse now so a bad path fails at load, not per policy
        except ValueError as exc:
            raise RulesError(f"{where}: $.rules[{index}].path: {exc}") from None
        rules.append(rule)
    ids = [rule.id for rule in rules]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise RulesError(f"{where}: rule ids used more than once: {', '.join(repeated)}")
    return tuple(rules)


def _rules_file_error(content: Any) -> ValidationError | None:
    """jsonschema's most relevant error of a rules file (None if it finds none after all)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(RULES_FILE_SCHEMA)
    error: ValidationError | None = jsonschema.exceptions.best_match(validator.iter_errors(content))
    return error


@functools.cache
def builtin_rules() -> RuleSet:
    """The rules shipped with the harness (read once per process)."""
    folder = resources.files("policy_checks") / "rules"

    def read(name: str) -> bytes:
        return (folder / name).read_bytes()

    where = "policy_checks/rules/"
    return RuleSet(
        _read_schema(read(METADATA_SCHEMA_FILE), where + METADATA_SCHEMA_FILE, ours=True),
        _read_schema(read(DEFINITION_SCHEMA_FILE), where + DEFINITION_SCHEMA_FILE, ours=True),
        _read_rules(read(RULES_FILE), where + RULES_FILE),
    )


@functools.cache
def builtin_schema(policy_file: str) -> dict[str, Any]:
    """The shipped schema of another file of a version (`tests.yaml`: tests.schema.json)."""
    name = policy_file.rsplit(".", 1)[0] + ".schema.json"
    where = f"policy_checks/rules/{name}"
    data = (resources.files("policy_checks") / "rules" / name).read_bytes()
    return _read_schema(data, where, ours=True)


def load_rules(repo_rules_dir: Path | None = None) -> RuleSet:
    """Built-in rules, then a repository's: its schemas replace ours, its rules add to ours.

    A missing `repo_rules_dir` means the repository brings no rules of its own.
    """
    base = builtin_rules()
    if repo_rules_dir is None or not repo_rules_dir.exists():
        return base
    if not repo_rules_dir.is_dir():
        raise RulesError(f"{repo_rules_dir}: the rules folder is not a directory")

    def read(name: str) -> bytes | None:
        path = repo_rules_dir / name
        try:
            return path.read_bytes() if path.exists() else None
        except OSError as exc:
            raise RulesError(f"{path}: cannot be read: {exc.strerror}") from None

    metadata_schema, definition_schema = base.metadata_schema, base.definition_schema
    if (data := read(METADATA_SCHEMA_FILE)) is not None:
        metadata_schema = _read_schema(data, str(repo_rules_dir / METADATA_SCHEMA_FILE))
    if (data := read(DEFINITION_SCHEMA_FILE)) is not None:
        definition_schema = _read_schema(data, str(repo_rules_dir / DEFINITION_SCHEMA_FILE))
    merged = {rule.id: rule for rule in base.rules}
    if (data := read(RULES_FILE)) is not None:
        # Same id replaces in place, so rule order (and finding order) stays predictable.
        merged.update(
            {rule.id: rule for rule in _read_rules(data, str(repo_rules_dir / RULES_FILE))}
        )
    return RuleSet(metadata_schema, definition_schema, tuple(merged.values()))


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _fill(template: str, values: dict[str, str]) -> str:
    # Plain substitution rather than str.format: rule files come from repositories.
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def _equals(
    rule: Rule, document: Any, folder: dict[str, str | None]
) -> Iterator[tuple[JsonPath, str]]:
    expected = folder.get(rule.to or "")
    if expected is None:  # the folder value itself is invalid and reported as such
        return
    for path, actual in find(document, rule.segments):
        if type(actual) is type(expected) and actual != expected:
            yield (
                path,
                _fill(rule.message, {"actual": _shown(actual), "expected": _shown(expected)}),
            )


def _unique(
    rule: Rule, document: Any, folder: dict[str, str | None]
) -> Iterator[tuple[JsonPath, str]]:
    seen: list[Any] = []
    for path, value in find(document, rule.segments):
        if value in seen:
            yield path, _fill(rule.message, {"value": _shown(value)})
        else:
            seen.append(value)


_EVALUATORS: dict[
    str, Callable[[Rule, Any, dict[str, str | None]], Iterator[tuple[JsonPath, str]]]
] = {
    "equals": _equals,
    "unique": _unique,
}


def evaluate(
    rule: Rule, document: Any, folder: dict[str, str | None]
) -> Iterator[tuple[JsonPath, str]]:
    """(path, message) for every place where `document` breaks `rule`."""
    return _EVALUATORS[rule.kind](rule, document, folder)
