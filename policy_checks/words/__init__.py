"""Findings in the words a policy author reads: one function a phrase, whatever check found
it. The loaders word their own refusals (`policy_checks/loading/`); everything a check finds
about a file's shape (jsonschema's errors), a CEL condition (the engine's compile and evaluation
errors, placed at their line and column with a snippet) or a value is worded here.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from policy_checks.cel import names, resources
from policy_checks.jsonpath import Path as JsonPath
from policy_checks.loading import SourceMap, scalar_position
from policy_checks.model import quoted
from policy_checks.naming import NAME_RE, full_version_dir, name_problem, parse_version_dir

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError


# -- any value ---------------------------------------------------------------------------------


def did_you_mean(word: str, candidates: list[str], cutoff: float = 0.6) -> str | None:
    """The candidate closest to `word`, if one is close enough (difflib's ratio, 0 to 1)."""
    match = difflib.get_close_matches(word, candidates, n=1, cutoff=cutoff)
    return match[0] if match else None


def describe(value: Any) -> str:
    """How a JSON value reads in a message: `the string "x"`, `the number 3`, `a list`."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f'the string "{shown}"'
    if value is None:
        return "null"
    return "a list" if isinstance(value, list) else "an object"


# -- a file's shape (jsonschema's errors) -------------------------------------------------------


def type_hint(
    error: ValidationError, source: SourceMap, path: JsonPath, version_dir: str | None = None
) -> str | None:
    """The likely intended text when a scalar was read as something other than a string.
    `version_dir`, for metadata.json: the version folder, which a version must repeat."""
    expected = error.validator_value if error.validator == "type" else None
    wants_string = expected == "string" or (isinstance(expected, list) and "string" in expected)
    instance = error.instance
    if not wants_string or not (instance is None or isinstance(instance, bool | int | float)):
        return None
    if path == ("version",) and version_dir is not None and not parse_version_dir(version_dir):
        # Quoting `1.11` would only trade this problem for the folder's (v1.11 is no version).
        fixed = full_version_dir(version_dir)
        if fixed is None:
            return "the folder must be a full version, v<major>.<minor>.<patch>: rename it, " + (
                "and write that version here as a string"
            )
        return (
            f"the folder must be a full version: rename {version_dir} to {fixed}, "
            f'and write "{fixed[1:]}" here'
        )
    raw = source.raw_text(path)
    full = parse_version_dir(version_dir) if path == ("version",) and version_dir else None
    if full is not None and instance is not None:
        # Quoted, `1.10` would still not be the folder's version: say the text it must be.
        return (
            f'write "{full}", the version of the folder {version_dir}, as a string: '
            f"{raw or json.dumps(instance)} is read as {describe(instance)}"
        )
    if instance is None and not raw:
        return "the value is empty: write the text"
    return f"quote it: {raw or json.dumps(instance)} is read as {describe(instance)}"


# How close an unknown key must be to a known one to be called its misspelling.
KEY_CUTOFF = 0.75


def unknown_keys(error: ValidationError) -> list[str]:
    """The keys of the object `error` is about that the schema in force does not name."""
    if not isinstance(error.instance, dict) or not isinstance(error.schema, dict):
        return []
    known = error.schema.get("properties", {})
    return [str(key) for key in error.instance if key not in known]


def misspelt_required(error: ValidationError) -> tuple[str, str] | None:
    """(unknown key, required key) when a required key is missing and the object holds an
    unknown key that is close to it: one mistake, a misspelling."""
    wanted = re.match(r"'(.+)' is a required property", error.message)
    if error.validator != "required" or wanted is None:
        return None
    match = did_you_mean(wanted[1], unknown_keys(error), KEY_CUTOFF)
    return (match, wanted[1]) if match else None


def misspelt_key(unknown: str, required: str) -> str:
    """A key that is unknown where a required one, close to it, is missing: one misspelling."""
    return (
        f"{quoted(unknown)} is not a known key; did you mean {quoted(required)} "
        "(required, missing)?"
    )


def unexpected_keys(error: ValidationError, extra: list[str]) -> tuple[str, str | None]:
    """An additionalProperties error's message for the keys `extra` of it (in jsonschema's
    words), and a did-you-mean for the first of them that is close to a known key."""
    shown = ", ".join(repr(key) for key in extra)
    message = (
        f"Additional properties are not allowed ({shown} "
        f"{'was' if len(extra) == 1 else 'were'} unexpected)"
    )
    schema = error.schema if isinstance(error.schema, dict) else {}
    known = [str(key) for key in schema.get("properties", {})]
    for key in extra:
        match = did_you_mean(key, known, KEY_CUTOFF)
        if match:
            return message, f"did you mean `{match}`?"
    return message, None


def name_in_words(error: ValidationError, path: JsonPath) -> tuple[str, str] | None:
    """(message, hint) for a schema error that jsonschema words in a way only a programmer
    reads: a name that does not match the name pattern (shown as the raw regex)."""
    if (
        error.validator == "pattern"
        and error.validator_value == NAME_RE.pattern
        and isinstance(error.instance, str)
    ):
        return name_problem(
            error.instance, "", "rule id" if path[-1:] == ("id",) else "policy name"
        )
    return None


def value_hint(error: ValidationError) -> str | None:
    """The allowed value meant by one that is not allowed: `High` for `high`, `hgih` too."""
    allowed = error.validator_value if error.validator == "enum" else None
    if not isinstance(allowed, list) or not isinstance(error.instance, str):
        return None
    words = [value for value in allowed if isinstance(value, str)]
    same = [value for value in words if value.casefold() == error.instance.casefold()]
    if same:
        lowercase = all(value == value.lower() for value in words)
        return f"the allowed values are {'lowercase' if lowercase else 'case-sensitive'}: " + (
            f"write `{same[0]}`"
        )
    match = did_you_mean(error.instance, words)
    return f"did you mean `{match}`?" if match else None


def misnamed_file(wanted: str, present: tuple[str, ...]) -> str | None:
    """A hint when the folder holds a file that is nearly the one that is missing."""
    stem = wanted.rsplit(".", 1)[0]
    for name in present:
        if name != wanted and name.rsplit(".", 1)[0].lower() == stem:
            return f"found {name}: the file must be named {wanted} (rename it)"
    match = did_you_mean(wanted, list(present), 0.8)
    return f"found {match}: the file must be named {wanted} (rename it)" if match else None


# -- a condition that does not compile --------------------------------------------------------

_OPERATORS = {
    "_+_": "+",
    "_-_": "-",
    "_*_": "*",
    "_/_": "/",
    "_%_": "%",
    "_==_": "==",
    "_!=_": "!=",
    "_<_": "<",
    "_<=_": "<=",
    "_>_": ">",
    "_>=_": ">=",
    "_&&_": "&&",
    "_||_": "||",
    "_[_]": "[ ] (index)",
    "!_": "!",
    "-_": "- (negation)",
    "_?_:_": "? : (conditional)",
    "@in": "in",
}


# The engine's word for a result type; "dyn" and "bool" are fine for a condition.


_TYPE_WORDS = {"STRING": "string", "INT": "int", "UINT": "uint", "DOUBLE": "double"}


def parameter_type_words(
    name: str, type_name: object, match: str | None, types: str
) -> tuple[str, str]:
    """A parameter of no known type: the message and the hint."""
    hint = (f"did you mean `{match}`? " if match else "") + f"the types are {types}"
    return f"parameter {name}: unknown type {type_name!r}", hint


def parameter_name_words(name: str, suggestion: str) -> tuple[str, str]:
    """A parameter name that `params.<name>` cannot spell."""
    return (
        f"parameter name {name!r} cannot be used in a condition as params.{name}: a name is "
        "letters, digits and _, not starting with a digit, and no CEL keyword",
        f"rename it, e.g. to {suggestion}",
    )


def parameter_default_words(name: str, default: Any, type_name: str) -> tuple[str, str]:
    return (
        f"parameter {name}: the default is {describe(default)}, not of type {type_name}",
        f"write a default of type {type_name}, or change the type",
    )


def bad_constant_words(why: str) -> tuple[str, str]:
    """A constant argument (regex, duration, quantity, ...) that cannot be parsed."""
    return (
        f"this constant cannot be parsed: {why}",
        "fix the literal: Kubernetes refuses a policy whose constant argument does not parse",
    )


def mixed_literal_words(message: str) -> tuple[str, str]:
    """A list or map literal whose elements are of several types."""
    return message, "write the elements of one type, or convert them (string(), double())"


def not_bool_words(rule_id: str, word: str) -> tuple[str, str]:
    """A condition whose type is known and is not bool."""
    return (
        f"rule {rule_id}: the condition is of type {word}, not bool",
        "a condition is true when the resource complies: compare the value "
        "(e.g. `... == 'x'`, `size(...) > 0`)",
    )


def unknown_field(message: str, text: str, line: int, column: int) -> tuple[str, str | None] | None:
    """The engine's "undefined field" on a resource message, in the author's words: the
    expression it was read of, the closest field and the fields that exist there (`resource.spec
    has no field ...`), and a hint; None for any other message. `line` and `column` (1-based)
    are where in `text` the engine points."""
    found = re.match(r"undefined field '([^']+)' not found in struct '([^']+)'", message)
    fields = resources.fields_of(found[2]) if found else None
    if found is None or fields is None:
        return None
    name = found[1]
    rows = text.split("\n")
    at = -1
    if 1 <= line <= len(rows):
        at = sum(len(row) + 1 for row in rows[: line - 1]) + column - 1
    operand = resources.operand_at(text, at) or "the object"
    match = resources.nearest(name, fields)
    shown = ", ".join(fields[: resources.SHOWN_FIELDS])
    if len(fields) > resources.SHOWN_FIELDS:
        shown += f", … ({len(fields)} in all)"
    return (
        f"{operand} has no field `{name}`"
        + (f"; did you mean `{match}`?" if match else "")
        + f" (fields: {shown})",
        f"the schemas of the policy's target kinds ({resources.RESOURCE_SCHEMAS_DIR}/) declare the "
        "fields a condition may read: correct the name, or declare the field there",
    )


def result_type_word(detail: str) -> str:
    """The word for a condition's result type when it is not bool ("" when it is bool or dyn,
    which are fine for a condition): `string`, `int`, `object` (a typed resource's message)."""
    word = _TYPE_WORDS.get(detail) or (detail.lower() if detail not in ("BOOL", "DYN") else "")
    return "object" if detail.startswith(resources.TYPE_PREFIX) else word


_NAMESPACES = ("math", "sets", "lists", "strings", "optional", "format", "cel", "ip", "base64")


def misused_call(text: str, line: int, column: int, message: str) -> tuple[str, str] | None:
    """An undeclared *function*: the engine says "undeclared reference" for a name and for a
    call alike, pointing at the call's `(`. Said as a function that does not exist, a macro given
    the wrong arguments, or one called the wrong way (`lowerAscii(x)` for `x.lowerAscii()`)."""
    ref = re.match(r"undeclared reference to '([^']+)'", message)
    rows = text.split("\n")
    if ref is None or not 1 <= line <= len(rows):
        return None
    row = rows[line - 1]
    if not (0 < column <= len(row) and row[column - 1] == "("):
        return None
    head = re.search(r"([A-Za-z_][A-Za-z0-9_.]*)\s*$", row[: column - 1])
    if head is None:
        return None
    written = head[1]
    prefix, _, last = written.rpartition(".")
    namespaced = prefix.split(".")[0] in _NAMESPACES and prefix.count(".") == 0 and prefix
    name = written if namespaced else last
    member = bool(prefix) and not namespaced
    shown = f"x.{name}(…)" if member else f"{name}(…)"
    if name in names.MACROS:
        return (
            f"`{name}` is a macro that takes a variable name, then an expression, not written "
            "this way",
            f"write {names.MACROS[name]}",
        )
    ways = names.forms().get(name)
    if ways is not None:
        if member and "member" not in ways:
            return (
                f"`{name}` is not called on a value here",
                f"write `{name}(x)`: the function takes its value as an argument",
            )
        if not member and "global" not in ways:
            return (
                f"`{name}` is called on its value",
                f"write `x.{name}()`: it is a member function, not a global one",
            )
        return (
            f"no form of the function `{name}` takes these arguments",
            "check the number of arguments of the function",
        )
    match = did_you_mean(name, names.every_name())
    return (
        f"`{shown}` is not a function of this environment (Kubernetes' CEL environment, "
        "listed in the README)",
        f"did you mean the function `{match}`?" if match else "see the README's list of functions",
    )


def compile_error_words(
    message: str, signature: tuple[tuple[str, str], ...]
) -> tuple[str, str | None]:
    """A compile error of the engine in the author's words, and a hint."""
    message = resources.readable(message.replace(" (in container '')", "").strip())
    declared = [name for name, _ in signature]
    field = re.match(r"undefined field '([^']+)' not found in struct 'policyhub\.params", message)
    if field:
        name = field[1]
        listed = ", ".join(declared) if declared else "none"
        match = did_you_mean(name, declared)
        return (
            f"params.{name} is not a declared parameter (declared: {listed})",
            f"did you mean `params.{match}`?"
            if match
            else f"declare {name} under spec.parameters, with its type",
        )
    ref = re.match(r"undeclared reference to '([^']+)'", message)
    if ref:
        name = ref[1]
        head, _, rest = name.partition(".")
        if head in ("resource", "params"):
            return f"unknown name {name}", None
        fixed = did_you_mean(head, ["resource", "params"])
        if fixed:
            if fixed == "params" and rest:
                rest = did_you_mean(rest.split(".")[0], declared) or rest
            return (
                f"unknown name {name}",
                f"did you mean `{fixed}{'.' + rest if rest else ''}`? "
                "a condition sees `resource` and `params`",
            )
        return (
            f"unknown name {name}",
            "a condition sees `resource` (the document checked) and `params` (the parameters); "
            "a comprehension's variable only inside it",
        )
    overload = re.match(r"found no matching overload for '([^']+)' applied to '(.*)'$", message)
    if overload:
        name = _OPERATORS.get(overload[1], overload[1])
        call = (
            did_you_mean(overload[1], names.every_name()) if overload[1] not in _OPERATORS else None
        )
        types = overload[2].replace("policyhub.params.", "params.")
        hint = (
            "convert one side (int(), double(), string()) or compare values of one type"
            if overload[1] in _OPERATORS
            else (f"check the arguments of `{call}`" if call else None)
        )
        return f"no overload of {name} for the argument types {types}", hint
    if message.startswith("Syntax error:"):
        detail = re.sub(r" expecting \{.*\}$", "", message)
        if "mismatched input '<EOF>'" in detail:
            return "syntax error: the condition ends too early", "close every bracket and quote"
        return detail.replace("Syntax error: ", "syntax error: "), None
    return message, None


# -- where a condition's error is --------------------------------------------------------------


def condition_message(
    rule_id: str, message: str, column: int | None, text: str, line: int, at_column: int
) -> str:
    """A finding's message about a rule's condition: the rule, what is wrong, the column in the
    YAML file when it is known, and the condition's line with `⟨here⟩` where the engine points
    (`line`, `at_column`: 1-based, in the condition)."""
    where = f" (column {column})" if column else ""
    shown = snippet(text, line, at_column)
    return f"rule {rule_id}: {message}{where}" + (f": {shown}" if shown else "")


def snippet(text: str, line: int, column: int) -> str:
    """The condition's line around the column, with `⟨here⟩` where the engine points."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return ""
    row = lines[line - 1]
    at = max(0, min(len(row), column - 1))
    start = max(0, at - 30)
    before, after = row[start:at], row[at : at + 30]
    return f"`{'…' if start else ''}{before}⟨here⟩{after}{'…' if at + 30 < len(row) else ''}`"


def offset_line_column(text: str, offset: int) -> tuple[int, int]:
    """(1-based line, 1-based column) of a character offset in a condition."""
    if offset < 0:
        return -1, -1
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def place(
    line: int,
    column: int,
    text: str,
    path: tuple[str | int, ...],
    source: SourceMap,
    yaml_text: Callable[[], str | None],
) -> tuple[int | None, int | None]:
    """(line, column) in the YAML file of the condition's (line, column), both 1-based; the
    condition's key line (and no column) when the position cannot be mapped."""
    key_line = source.line(path)
    if line < 1 or column < 1:
        return key_line, None
    document = yaml_text()
    if document is None:
        return key_line, None
    lines = text.split("\n")
    if line > len(lines):
        return key_line, None
    span = source.span(path)
    if span is None:
        return key_line, None
    offset = sum(len(row) + 1 for row in lines[: line - 1]) + min(column - 1, len(lines[line - 1]))
    return scalar_position(document, span, text, offset)


# -- a condition that fails while it runs ------------------------------------------------------

ITERATION_BUDGET = "10 000"  # the engine's comprehension iterations per evaluation


def evaluation_error_words(message: str) -> str:
    """An evaluation error of the engine in the author's words."""
    text = message.strip()
    for status in ("INVALID_ARGUMENT", "NOT_FOUND", "OUT_OF_RANGE", "INTERNAL", "UNKNOWN"):
        text = text.removeprefix(f"{status}: ").removesuffix(f" [{status}]")
    if "Iteration budget exceeded" in text:
        return (
            f"evaluation exceeded the budget of {ITERATION_BUDGET} comprehension iterations "
            "(all, exists, map, filter and the like, nested ones multiplied)"
        )
    if text.startswith("Key not found in map"):
        return "no such key: " + text.split(":", 1)[1].strip()
    return text
