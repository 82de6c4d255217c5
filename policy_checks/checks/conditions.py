"""CEL conditions of one policy version (CONTRACT section 8): the environment a condition sees
(`resource` as dyn, `params` as a message type built from `spec.parameters`), every condition
compiled and type-checked once per (parameters, text), and each compile error as a `Finding` at
its line and column in policy-definition.yaml, with a *did you mean* where one is close.

The engine is cel-expr-python (Google's C++ CEL with its type checker); it and protobuf are
imported on first use, so a run that compiles nothing never pays for them. Why this engine and
not another: README ("Conditions are CEL") and docs/benchmarks.md.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from policy_checks.cel.environment import ENVIRONMENTS
from policy_checks.cel.resources import ResourceSchemas
from policy_checks.jsonpath import format_path
from policy_checks.loading import SourceMap
from policy_checks.model import Finding
from policy_checks.words import (
    bad_constant_words,
    compile_error_words,
    condition_message,
    did_you_mean,
    misused_call,
    mixed_literal_words,
    not_bool_words,
    offset_line_column,
    parameter_default_words,
    parameter_name_words,
    parameter_type_words,
    place,
    result_type_word,
    unknown_field,
)

# Parameter types (CONTRACT section 8) -> the CEL type a condition sees, and the JSON values a
# default or a test case's value may be. An integer is a number; a boolean is neither.
PARAMETER_TYPES: dict[str, str] = {
    "string": "string",
    "integer": "int",
    "number": "double",
    "boolean": "bool",
    "list": "list(dyn)",
    "object": "map(string, dyn)",
}
TYPE_NAMES = ", ".join(PARAMETER_TYPES)


def _words(text: str) -> list[str]:
    return text.split()


# What a parameter name must be to be reachable as `params.<name>` (a CEL identifier that is no
# reserved word, which is also a protobuf field name).
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED = frozenset(
    _words(
        "true false null in as break const continue else for function if import let loop "
        "package namespace return var void while"
    )
)


_ERROR_ENTRY = re.compile(r"ERROR: <input>:(-?\d+):(-?\d+): (.*)")


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # one of PARAMETER_TYPES
    default: Any
    has_default: bool


@dataclass(frozen=True)
class CompiledRule:
    """One rule whose condition compiled: its id and the checked expression, serialised (what
    the evaluator process deserialises; `policy_checks/evaluator.py`)."""

    id: str
    program: bytes
    condition: str = ""  # its text, to explain an evaluation error
    # Where it is written in policy-definition.yaml, asked only to explain an evaluation error
    # (the line map is made when first asked, which a valid version never needs).
    where: Callable[[], int | None] = lambda: None

    @property
    def line(self) -> int | None:
        return self.where()


@dataclass(frozen=True)
class CompiledPolicy:
    """Everything needed to evaluate a version's rules: parameters, targets and programs."""

    parameters: tuple[Parameter, ...]
    rules: tuple[CompiledRule, ...]
    target_kinds: tuple[str, ...] | None  # None: the policy declares no targets
    # Rules whose condition did not compile: their cases' expectations are not checked.
    uncompiled: tuple[str, ...] = ()

    @property
    def signature(self) -> tuple[tuple[str, str], ...]:
        return tuple((p.name, p.type) for p in self.parameters)

    def applies_to(self, resource: Any) -> bool:
        """Whether the rules evaluate this resource: no targets, or its `kind` is one."""
        if self.target_kinds is None:
            return True
        return isinstance(resource, dict) and resource.get("kind") in self.target_kinds

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.parameters if p.has_default}


def is_of_type(value: Any, type_name: str) -> bool:
    """Whether a JSON value is of a parameter type (an integer is a number, a bool is neither)."""
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if type_name == "boolean":
        return isinstance(value, bool)
    if type_name == "list":
        return isinstance(value, list)
    if type_name == "object":
        return isinstance(value, dict)
    return False


def _mapping(value: Any) -> dict[str, Any]:
    """`value` when it is an object, else an empty one: a repository's own definition schema
    may allow shapes the default format does not, and those are simply not compiled."""
    return value if isinstance(value, dict) else {}


def rule_ids(definition: Any) -> list[str]:
    """The ids of a definition's rules, in order (whatever shape a repository's schema allows)."""
    rules = _mapping(_mapping(definition).get("spec")).get("rules")
    return [str(_mapping(r).get("id")) for r in rules] if isinstance(rules, list) else []


class ParameterProblems:
    """The parameters of a definition, read once: what is declared, and what is wrong."""

    def __init__(self, definition: dict[str, Any], file: str, source: SourceMap) -> None:
        self.parameters: list[Parameter] = []
        self.findings: list[Finding] = []
        # Declared but refused, as the conditions see them: an unknown type is `dyn`.
        self.refused: list[tuple[str, str]] = []
        declared = _mapping(_mapping(definition).get("spec")).get("parameters")
        for name, decl in _mapping(declared).items():
            decl = _mapping(decl)
            path = ("spec", "parameters", name)
            type_name = decl.get("type")
            if type_name not in PARAMETER_TYPES:
                match = did_you_mean(str(type_name), list(PARAMETER_TYPES))
                message, hint = parameter_type_words(name, type_name, match, TYPE_NAMES)
                self.findings.append(
                    Finding(
                        file,
                        message,
                        source.line((*path, "type")),
                        format_path((*path, "type")),
                        hint,
                        "parameter-type",
                    )
                )
                if _IDENT.fullmatch(name) and name not in _RESERVED:
                    self.refused.append((name, "dyn"))
                continue
            if not _IDENT.fullmatch(name) or name in _RESERVED:
                suggestion = re.sub(r"\W", "_", name)
                if not _IDENT.fullmatch(suggestion) or suggestion in _RESERVED:
                    suggestion = "p_" + suggestion
                message, hint = parameter_name_words(name, suggestion)
                self.findings.append(
                    Finding(
                        file, message, source.line(path), format_path(path), hint, "parameter-name"
                    )
                )
                continue
            has_default = "default" in decl
            default = decl.get("default")
            if has_default and not is_of_type(default, type_name):
                message, hint = parameter_default_words(name, default, type_name)
                self.findings.append(
                    Finding(
                        file,
                        message,
                        source.line((*path, "default")),
                        format_path((*path, "default")),
                        hint,
                        "parameter-default",
                    )
                )
                self.refused.append((name, type_name))
                continue
            self.parameters.append(Parameter(name, type_name, default, has_default))


def compile_conditions(
    definition: dict[str, Any],
    file: str,
    source: SourceMap,
    yaml_text: Callable[[], str | None],
    resource_schemas: ResourceSchemas | None = None,
) -> tuple[CompiledPolicy | None, list[Finding]]:
    """Every rule's condition compiled and type-checked; the findings say what is wrong where.
    `yaml_text` gives the file's text, asked only to place an error at its column.
    `resource_schemas`: `resource` is typed by those of the target kinds, when all have one."""
    params = ParameterProblems(definition, file, source)
    findings = list(params.findings)
    spec = _mapping(_mapping(definition).get("spec"))
    # A parameter that is wrong is `dyn` to the conditions, so that their own problems still
    # show (every problem at once); its cases do not run.
    signature = tuple((p.name, p.type) for p in params.parameters) + tuple(params.refused)
    targets = spec.get("targets")
    kinds = (
        tuple(str(_mapping(t).get("kind")) for t in targets) if isinstance(targets, list) else None
    )
    resource = (resource_schemas.type_word(kinds) if resource_schemas and kinds else None) or "dyn"
    compiled: list[CompiledRule] = []
    uncompiled: list[str] = []
    rules = spec.get("rules")
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        rule = _mapping(rule)
        text = rule.get("condition")
        rule_id = str(rule.get("id", index))
        if not isinstance(text, str) or not text.strip():
            uncompiled.append(rule_id)
            continue  # the schema reports it
        path = ("spec", "rules", index, "condition")
        where = Where(file, rule_id, text, path, source, yaml_text)
        found = _rule_findings(where, signature, resource)
        findings.extend(found)
        program = ENVIRONMENTS.compile(signature, text, resource).program
        if found or program is None:
            uncompiled.append(rule_id)
            continue
        compiled.append(CompiledRule(rule_id, program, text, functools.partial(source.line, path)))
    if params.findings:
        return None, findings
    policy = CompiledPolicy(tuple(params.parameters), tuple(compiled), kinds, tuple(uncompiled))
    return policy, findings


def _rule_findings(
    where: Where,
    signature: tuple[tuple[str, str], ...],
    resource: str = "dyn",
) -> list[Finding]:
    """What is wrong with one condition: it does not compile, a constant argument cannot be
    parsed, or it is not a bool."""
    text = where.text
    compiled = ENVIRONMENTS.compile(signature, text, resource)
    if compiled.program is None:
        return _compile_findings(compiled.error, where, signature)
    findings = []
    literal_problems = [
        (offset, *bad_constant_words(why)) for offset, why in compiled.bad_constants
    ] + [(offset, *mixed_literal_words(message)) for offset, message in compiled.mixed_literals]
    for offset, message, hint in literal_problems:
        line, column = offset_line_column(text, offset)
        findings.append(where.finding(message, line, column, hint, "condition-constant"))
    detail = compiled.result_type
    word = result_type_word(detail)
    if word:
        message, hint = not_bool_words(where.rule_id, word)
        findings.append(
            Finding(
                where.file,
                message,
                where.source.line(where.path),
                format_path(where.path),
                hint,
                "condition-type",
            )
        )
    return findings


def _compile_findings(
    error: str,
    where: Where,
    signature: tuple[tuple[str, str], ...],
) -> list[Finding]:
    text = where.text
    entries = [(int(m[1]), int(m[2]), m[3]) for m in _ERROR_ENTRY.finditer(error)]
    if not entries:
        # Limits the engine checks before parsing: size, nesting.
        message = re.sub(r"^[A-Z_]+: |\s*\[[A-Z_]+\]$", "", error.strip().splitlines()[0])
        message = message.replace("Expression recursion limit exceeded", "nested too deeply")
        entries = [(-1, -1, message)]
    calls = [misused_call(text, line, column, message) for line, column, message in entries]
    messages = [
        call
        or unknown_field(message, text, line, column)
        or compile_error_words(message, signature)
        for call, (line, column, message) in zip(calls, entries, strict=True)
    ]
    misspelt_call = any(calls) or any(hint and "function" in hint for _, hint in messages)
    # `math.greatestt(...)` also leaves `math` undeclared: the call's message says it all.
    namespaces = {
        m.split("`")[1].split(".")[0]
        for m, _ in messages
        if m.startswith("`") and "." in m.split("`")[1]
    }
    findings: list[Finding] = []
    seen: set[str] = set()
    for (line, column, original), (message, hint) in zip(entries, messages, strict=True):
        if (
            misspelt_call
            and _bare_unknown(original)
            and not misused_call(text, line, column, original)
        ):
            continue  # a misspelt macro leaves its iteration variable undeclared too: noise
        unknown = re.match(r"undeclared reference to '([^']+)'", original)
        if unknown is not None and unknown[1] in namespaces:
            continue  # `math` of a misspelt `math.greatestt(...)`: the call's finding says it
        if message.startswith("syntax error") and any(m.startswith("syntax error") for m in seen):
            continue  # the parser's follow-up errors only repeat the first one
        if message in seen or ("'*error*'" in original and len(entries) > 1):
            continue  # a select on what already failed: the failure is reported
        seen.add(message)
        findings.append(where.finding(message, line, column, hint, "condition"))
    return findings


@dataclass(frozen=True)
class Where:
    """A condition and where it is written: what places a finding at its line and column."""

    file: str
    rule_id: str
    text: str
    path: tuple[str | int, ...]
    source: SourceMap
    yaml_text: Callable[[], str | None]

    def finding(self, message: str, line: int, column: int, hint: str | None, rule: str) -> Finding:
        """`message` at the condition's (line, column), shown in the YAML file with a snippet
        (`words.place`, `words.condition_message`)."""
        placed = place(line, column, self.text, self.path, self.source, self.yaml_text)
        return Finding(
            self.file,
            condition_message(self.rule_id, message, placed[1], self.text, line, column),
            placed[0],
            format_path(self.path),
            hint,
            rule,
        )


def _bare_unknown(message: str) -> bool:
    """An undeclared single identifier that is no misspelling of `resource` or `params`."""
    ref = re.match(r"undeclared reference to '([^'.]+)'", message)
    return ref is not None and not did_you_mean(ref[1], ["resource", "params"])
