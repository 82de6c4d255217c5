"""Kubernetes' regex library (docs/contract.md section 8): the members `find(string)` -> string,
`findAll(string)` and `findAll(string, int)` -> list(string) of a string.

Ported from k8s.io/apiserver `pkg/cel/library/regex.go` at commit
24a394e516bfda066d7e2221d7d92c052de27c54, pinned by the rule table "stdlib regex functions" of
apiextensions-apiserver `pkg/apiserver/schema/cel/validation_test.go` and the regex cases of
`pkg/cel/library/cost_test.go` (tests/test_cel_library_regex.py). Kubernetes compiles with Go's
`regexp.Compile` (RE2 syntax, leftmost-first, linear time) and runs `FindString` and
`FindAllString`.

The engine here is RE2 itself (the `google-re2` package, C++ RE2, Go's regexp's origin), not
Python's `re`, whose syntax differs (`\\Z`, `(?P=name)`, backreferences, look-around) and which
backtracks: a pattern like `(a+)+$` would take exponential time on untrusted data. RE2 runs in
time linear in the text. Options are Go's `regexp.Compile`'s (Perl classes, `\\b`, UTF-8,
leftmost-first, `^`/`$` at the text's ends unless `(?m)`).
- Go's syntax errors are what Kubernetes shows ("error parsing regexp: unexpected ): `)`"):
  RE2's are translated code for code (C++ RE2 words them differently: "unexpected ): )").
- Go refuses `\\C` (any byte), which C++ RE2 accepts: refused here as Go does.
- `FindAllString`'s loop is Go's, not RE2's or Python's `findall`: an empty match right after a
  match is skipped, and after an empty match the search resumes one character further.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import re2  # google-re2: C++ RE2

from policy_checks.cel.library import ConstantCheck, Library, refusal
from policy_checks.cel.library.declarations import Declaration, functions

# Kubernetes' regexLibraryDecls: (function, overload id, arguments (receiver first), result,
# member).
DECLARATIONS: tuple[Declaration, ...] = (
    ("find", "string_find_string", ("string", "string"), "string", True),
    ("findAll", "string_find_all_string", ("string", "string"), "list(string)", True),
    (
        "findAll",
        "string_find_all_string_int",
        ("string", "string", "int"),
        "list(string)",
        True,
    ),
)

# Kubernetes compiles a constant pattern when the program is made (cel.OptimizeRegex), so a
# policy whose pattern does not compile is refused when it is created: here, when compiling.
CONSTANTS = {
    "find": (1, lambda pattern: check_pattern(pattern)),
    "findAll": (1, lambda pattern: check_pattern(pattern)),
}

# C++ RE2's error codes, as its messages start, and Go's wording of each (regexp/syntax).
_GO_CODES = {
    "invalid escape sequence": "invalid escape sequence",
    "invalid character class": "invalid character class",
    "invalid character class range": "invalid character class range",
    "missing ]": "missing closing ]",
    "missing )": "missing closing )",
    "unexpected )": "unexpected )",
    "trailing \\": "trailing backslash at end of expression",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid repetition size": "invalid repeat count",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "invalid UTF-8": "invalid UTF-8",
    "invalid named capture group": "invalid named capture",
}
_TOO_LARGE = "pattern too large - compile failed"

# RE2's memory budget for one pattern: its default (8 MiB) refuses patterns Go takes (a 1 MiB
# literal); 64 MiB takes what Go's limits take in practice (Go: 128 MiB of instructions).
_MAX_MEMORY = 64 << 20

# An escape, or a \Q...\E literal run, in Go's reading: to find a \C that is an escape, and
# count the Unicode classes.
_ESCAPE_TOKEN = re.compile(r"\\(?:Q.*?(?:\\E|\Z)|.)", re.DOTALL)

# C++ RE2 builds every Unicode class escape (\pL, \p{Greek}, \PN) as its own range set while
# parsing, about 35 KB each, before its memory budget applies (27,000 \pL took 1 GB and 5 s,
# 350,000 took 11 GB): more than this many is refused up front, as Go refuses past its own
# bound (32M class runes, some 26,000 \pL) with the same words.
_MAX_UNICODE_CLASSES = 2000

# Go's bound on a compiled pattern, in instructions (regexp/syntax maxSize: 128 MiB of 40-byte
# instructions). Every counted repetition x{n} costs at least n of them in Go's accounting, so
# when the counts alone pass the bound Go refuses the pattern ("expression too large"); here it
# is refused before RE2 expands the copies (150,000 x{1000} took RE2 1.5 GB and 10 s).
_GO_MAX_SIZE = (128 << 20) // 40
# A counted repetition as Go parses it (no leading zeros), after an escape or a \Q...\E run
# is set aside; one in a character class is counted too (it only errs towards refusing a
# pattern past the bound that Go would take, and only with megabytes of braces in classes).
_REPEAT_TOKEN = re.compile(
    r"\\Q.*?(?:\\E|\Z)|\\.|\{(0|[1-9][0-9]*)(?:(,)(0|[1-9][0-9]*)?)?\}", re.DOTALL
)


def _repeat_total(pattern: str) -> int:
    """The copies the counted repetitions ask for: {n} and {n,} n, {n,m} m (Go's Max, or Min
    when there is none); a count past 1000 is an error of its own (RE2 reports it), 1001 here."""
    total = 0
    for token in _REPEAT_TOKEN.finditer(pattern):
        digits = token[3] if token[3] is not None else token[1]
        if digits is None:
            continue  # an escape, or a \Q...\E run
        total += 1001 if len(digits) > 4 else min(int(digits), 1001)
        if total > _GO_MAX_SIZE:
            break
    return total


class PatternError(ValueError):
    """A pattern Go's `regexp.Compile` refuses; the message is Go's `syntax.Error`."""


def _options() -> Any:
    options = re2.Options()
    options.max_mem = _MAX_MEMORY
    options.log_errors = False  # RE2 would print every refusal to stderr
    return options


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> Any:
    """RE2's compiled pattern, or the PatternError Go would raise (cached: a pattern from the
    data is compiled once per process, as Kubernetes compiles a constant one once)."""
    from re2 import _re2  # the compiled object itself: the wrapper re-encodes text per call

    escapes = [token[0][:2] for token in _ESCAPE_TOKEN.finditer(pattern)]
    if escapes.count("\\p") + escapes.count("\\P") > _MAX_UNICODE_CLASSES:
        return PatternError(_go_message(_TOO_LARGE, pattern))
    if _repeat_total(pattern) > _GO_MAX_SIZE:
        return PatternError(_go_message(_TOO_LARGE, pattern))
    compiled = _re2.RE2(pattern.encode("utf-8"), _options())
    if not compiled.ok():
        return PatternError(_go_message(compiled.error().decode("utf-8", "replace"), pattern))
    if "\\C" in escapes:
        return PatternError("error parsing regexp: invalid escape sequence: `\\C`")
    return compiled


def _go_message(error: str, pattern: str) -> str:
    if error == _TOO_LARGE:
        code, expression = "expression too large", pattern
    else:
        # "code: argument", or a code alone ("trailing \"): Go names an empty expression then.
        code, _, expression = error.partition(": ")
        if code == "invalid perl operator" and expression.startswith("(?<"):
            # Go takes "(?<" for a named group ("(?<!", "(?<=" included): the name runs to the
            # first '>', or the rest of the pattern is named when there is none.
            rest = pattern[max(pattern.find(expression), 0) :]
            close = rest.find(">")
            code, expression = "invalid named capture", rest if close < 0 else rest[: close + 1]
        code = _GO_CODES.get(code, code)
    return f"error parsing regexp: {code}: `{expression}`"


def compile_pattern(pattern: str) -> Any:
    compiled = _compile(pattern)
    if isinstance(compiled, PatternError):
        raise compiled
    return compiled


check_pattern: ConstantCheck = refusal(compile_pattern)


def _width(text: bytes, at: int) -> int:
    """The length of the UTF-8 character at `at` (the text is valid UTF-8)."""
    lead = text[at]
    return 1 if lead < 0x80 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4


def find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    """Go's `Regexp.FindAllString(text, limit)` (its `allMatches` loop): at most `limit`
    matches when it is not negative."""
    compiled = _compiled_or_illegal(pattern)
    data = text.encode("utf-8")
    end = len(data)
    if limit < 0:
        limit = end + 1
    anchor = _unanchored()
    found: list[str] = []
    position, previous_end = 0, -1
    while len(found) < limit and position <= end:
        start, stop = compiled.Match(anchor, data, position, end)[0]
        if start < 0:
            break
        accept = True
        if stop == position:
            # An empty match: not one right after the previous match; and move on one
            # character, so that the search ends.
            if start == previous_end:
                accept = False
            position += _width(data, position) if position < end else 1
        else:
            position = stop
        previous_end = stop
        if accept:
            found.append(data[start:stop].decode("utf-8"))
    return found


def _unanchored() -> Any:
    from re2 import _re2

    return _re2.RE2.Anchor.UNANCHORED


def _compiled_or_illegal(pattern: str) -> Any:
    try:
        return compile_pattern(pattern)
    except PatternError as exc:
        # Kubernetes' wording of a pattern that is not a constant (known only when run).
        raise ValueError(f"Illegal regex: {exc}") from None


def _find(text: str, pattern: str) -> str:
    """Go's `Regexp.FindString`: the leftmost match, "" when there is none."""
    compiled = _compiled_or_illegal(pattern)
    data = text.encode("utf-8")
    start, stop = compiled.Match(_unanchored(), data, 0, len(data))[0]
    return "" if start < 0 else data[start:stop].decode("utf-8")


def _find_all(text: str, pattern: str) -> list[str]:
    return find_all(text, pattern)


_IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    "string_find_string": _find,
    "string_find_all_string": _find_all,
    "string_find_all_string_int": find_all,
}

LIBRARY = Library(
    "kubernetes.regex",
    functions(DECLARATIONS, _IMPLEMENTATIONS),
    constants=CONSTANTS,
)
