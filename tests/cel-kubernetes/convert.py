#!/usr/bin/env python3
"""Converts Kubernetes' own CEL test cases into the YAML files of this folder.

How to regenerate (from the repository's top folder):

    python tests/cel-kubernetes/convert.py \\
        --apiserver /work/.mirror/kubernetes+apiserver/repo \\
        --apiextensions /work/.mirror/kubernetes+apiextensions-apiserver/repo

Both options name a git directory (a bare clone is enough) of kubernetes/apiserver and
kubernetes/apiextensions-apiserver; `--apiserver-rev` / `--apiextensions-rev` pick a commit
(default HEAD). The Go sources are read with `git show`, never built or run. `--check` converts
and compares with the files here without writing them (exit 1 when they differ).

What it reads:

- kubernetes/apiserver `pkg/cel/library/{quantity,ip,cidr,semver,format}_test.go`: the case
  tables of TestQuantity, TestIP, TestCIDR, TestSemver and TestFormat (plus the cases TestFormat
  generates from `library.ConstantFormats`, read from format.go).
- the doc comments of `pkg/cel/library/{lists,regex,urls,quantity,ip,cidr,semverlib,format}.go`:
  their examples are prose, so they are converted by hand (DOC_EXAMPLES below), each checked to be
  still in the comment.
- kubernetes/apiextensions-apiserver `pkg/apiserver/schema/cel/validation_test.go`: the tables of
  TestValidationExpressions and TestCELMaxRecursionDepth (schema, `obj` bound to `self`, `valid`
  rules that must hold, `errors` rule -> error substring), and the rules of
  TestValidationExpressionsAtSchemaLevels and TestCELValidationContextCancellation (by hand where
  the outcome is not written in the table); a few cases of compilation_test.go's
  TestCelCompilation (by hand).

Not converted: cost_test.go (its tests state costs, never a result), library_compatibility_test.go
(function-name lists, no expressions), TestCELValidationLimit (cost budget only),
TestMessageExpression, TestReasonAndFldPath and TestValidateFieldPath (message, reason and
field-path reporting), TestRatcheting and TestOptionalOldSelf* (oldSelf), and the cases of
TestCelCompilation that only say "compiles" (no result to check).

The Go table literals are read by golit.py (a reader of the Go subset the tables use). Anything it
does not know stops the conversion, so a change upstream is seen rather than converted wrongly.
Each YAML file ends with a marker line; cases written below it by hand are kept on regeneration.
README.md's table of case counts is rewritten too.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from golit import (
    Evaluator,
    GoError,
    Node,
    Struct,
    go_sprintf,
    parse_expr_at,
)

HERE = Path(__file__).resolve().parent
KEEP_MARKER = "  # ---- Cases added by hand below this line are kept when convert.py regenerates."
COUNTS_BEGIN = "<!-- case counts: written by convert.py -->"
COUNTS_END = "<!-- end of case counts -->"

APISERVER = "kubernetes/apiserver"
APIEXT = "kubernetes/apiextensions-apiserver"
LIB = "pkg/cel/library"
VALIDATION_TEST = "pkg/apiserver/schema/cel/validation_test.go"
COMPILATION_TEST = "pkg/apiserver/schema/cel/compilation_test.go"

OLDSELF_SKIP = (
    "a transition rule (oldSelf): conditions here are evaluated against one document, never "
    "an old and a new one"
)


# ---------------------------------------------------------------------------------------------
# Reading sources


@dataclass
class Repo:
    name: str
    gitdir: str
    rev: str
    sha: str = ""

    def __post_init__(self) -> None:
        self.sha = self._git("rev-parse", f"{self.rev}^{{commit}}").strip()

    def _git(self, *args: str) -> str:
        return subprocess.run(
            ["git", f"--git-dir={self.gitdir}", *args],
            check=True,
            capture_output=True,
            text=True,
            encoding="utf-8",
        ).stdout

    def show(self, path: str) -> str:
        return self._git("show", f"{self.sha}:{path}")


def function_span(src: str, name: str) -> tuple[int, int]:
    """Offsets of `func name(...) {` ... its closing brace (a line holding only `}`)."""
    m = re.search(rf"^func {re.escape(name)}\(", src, re.M)
    if not m:
        raise GoError(f"no function {name}")
    end = src.index("\n}\n", m.start())
    return m.start(), end + 2


def table_node(src: str, func: str, var: str) -> Node:
    start, end = function_span(src, func)
    m = re.compile(rf"\b{var}\s*:=\s*").search(src, start, end)
    if not m:
        raise GoError(f"no `{var} :=` in {func}")
    return parse_expr_at(src, m.end())


def field_text(ev: Evaluator, st: Struct, name: str) -> str | None:
    node = st.get(name)
    return None if node is None else ev.text(node)


# ---------------------------------------------------------------------------------------------
# Values of expected results


class CelExpr(str):
    """An expected value that only a CEL expression can state (a quantity, an optional, …)."""


@dataclass(frozen=True)
class GoObj:
    """A Go value standing for a CEL one: kind is quantity, ip, cidr or semver."""

    kind: str
    text: str


def cel_string(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{out}"'


def cel_literal(v: Any) -> str:
    if isinstance(v, CelExpr):
        return str(v)
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return cel_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(cel_literal(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{cel_literal(k)}: {cel_literal(x)}" for k, x in v.items()) + "}"
    raise GoError(f"no CEL literal for {v!r}")


def gostruct_to_cel(kind: str) -> Callable[[Evaluator, list[tuple[str, Node]]], CelExpr]:
    def build(ev: Evaluator, fields: list[tuple[str, Node]]) -> CelExpr:
        (_, node), *rest = fields
        if rest:
            raise GoError(f"apiservercel value with several fields: {fields}")
        obj = ev.ev(node)
        if not isinstance(obj, GoObj) or obj.kind != kind:
            raise GoError(f"apiservercel.{kind} of {obj!r}")
        return CelExpr(f"{kind}({cel_string(obj.text)})")

    return build


def prefix_from(addr: GoObj, bits: int) -> GoObj:
    return GoObj("cidr", f"{addr.text}/{bits}")


def library_evaluator(src: str) -> Evaluator:
    """Names and functions the apiserver library tests use for their expected values."""
    return Evaluator(
        src=src,
        names={
            "types.True": True,
            "types.False": False,
            "types.OptionalNone": CelExpr("optional.none()"),
            "types.DefaultTypeAdapter": None,
        },
        funcs={
            "types.Bool": bool,
            "types.Int": int,
            "types.Double": float,
            "types.String": str,
            "types.NewStringList": lambda _adapter, items: list(items),
            "types.OptionalOf": lambda v: CelExpr(f"optional.of({cel_literal(v)})"),
            "resource.MustParse": lambda s: GoObj("quantity", s),
            "semver.MustParse": lambda s: GoObj("semver", s),
            "netip.ParseAddr": lambda s: (GoObj("ip", s), None),
            "netip.ParsePrefix": lambda s: (GoObj("cidr", s), None),
            "netip.PrefixFrom": prefix_from,
        },
        structs={
            "apiservercel.Quantity": gostruct_to_cel("quantity"),
            "apiservercel.IP": gostruct_to_cel("ip"),
            "apiservercel.CIDR": gostruct_to_cel("cidr"),
            "apiservercel.Semver": gostruct_to_cel("semver"),
            "testcase": lambda _ev, fields: Struct(fields),
        },
    )


def scan_locals(ev: Evaluator, src: str, func: str) -> None:
    """Evaluates the `x := …` / `x, _ := …` lines of a test function that the table uses."""
    start, end = function_span(src, func)
    for m in re.finditer(r"^\t(\w+)(, _)? := (.+)$", src[start:end], re.M):
        name, pair = m.group(1), m.group(2)
        try:
            value = ev.ev(parse_expr_at(src, start + m.start(3)))
        except GoError:
            continue
        ev.names[name] = value[0] if pair else value


# ---------------------------------------------------------------------------------------------
# Cases


@dataclass
class Case:
    expr: str
    outcome: str  # value, value_expr, compile_error, runtime_error
    expected: Any
    self_value: Any = None
    has_self: bool = False
    self_schema: Any = None
    skip: str | None = None
    source: str = ""  # a group heading: "TestQuantity", 'TestValidationExpressions "maps"'
    notes: list[str] = field(default_factory=list)
    group_notes: list[str] = field(default_factory=list)  # written once, under the heading
    anchor_hint: str = ""

    def mapping(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = [("expr", self.expr)]
        if self.has_self:
            out.append(("self", self.self_value))
        if self.self_schema is not None:
            out.append(("self_schema", self.self_schema))
        out.append((self.outcome, self.expected))
        if self.skip:
            out.append(("skip", self.skip))
        return out


def expected_case(expr: str, expected: Any, **kw: Any) -> Case:
    if isinstance(expected, CelExpr):
        return Case(expr, "value_expr", str(expected), **kw)
    return Case(expr, "value", expected, **kw)


# ---------------------------------------------------------------------------------------------
# kubernetes/apiserver pkg/cel/library/*_test.go

LIBRARY_TESTS = [
    # (file, test function, output file)
    ("quantity_test.go", "TestQuantity", "quantity"),
    ("ip_test.go", "TestIP", "ip"),
    ("cidr_test.go", "TestCIDR", "cidr"),
    ("semver_test.go", "TestSemver", "semver"),
    ("format_test.go", "TestFormat", "format"),
]

_EXPECT_VALUE = ("expectValue", "expectResult")
_EXPECT_COMPILE = ("expectedCompileErr", "expectCompileErrs")
_EXPECT_RUNTIME = ("expectedRuntimeErr", "expectRuntimeErr")


def library_test_cases(repo: Repo, filename: str, func: str) -> list[Case]:
    src = repo.show(f"{LIB}/{filename}")
    ev = library_evaluator(src)
    scan_locals(ev, src, func)
    table = ev.ev(table_node(src, func, "cases"))
    cases = []
    for st in table:
        assert isinstance(st, Struct)
        name = ev.ev(st["name"])
        expr = ev.ev(st["expr"])
        source = f"{func} ({filename})"
        notes = [f"{func}: {name}"]
        if "version" in st:
            notes.append(f"K8s runs this one with SemverVersion({ev.ev(st['version'])})")
        value_field = next((f for f in _EXPECT_VALUE if f in st), None)
        compile_field = next((f for f in _EXPECT_COMPILE if f in st), None)
        runtime_field = next((f for f in _EXPECT_RUNTIME if f in st), None)
        if compile_field:
            patterns = ev.ev(st[compile_field])
            c = Case(expr, "compile_error", "; ".join(patterns), source=source, notes=notes)
            notes.append("K8s' expected message is a regular expression")
        elif runtime_field:
            c = Case(expr, "runtime_error", ev.ev(st[runtime_field]), source=source, notes=notes)
            if filename in ("quantity_test.go", "semver_test.go"):
                notes.append("K8s' expected message is a regular expression")
        elif value_field:
            expected = ev.ev(st[value_field])
            if isinstance(expected, CelExpr) and "apiservercel." in ev.text(st[value_field]):
                notes.append(f"expected in Go: {field_text(ev, st, value_field)}")
            c = expected_case(expr, expected, source=source, notes=notes)
        else:
            raise GoError(f"{func} {name}: no expectation")
        cases.append(c)
    if func == "TestFormat":
        cases += format_generated_cases(repo)
    return cases


def format_generated_cases(repo: Repo) -> list[Case]:
    """TestFormat appends cases for every name of library.ConstantFormats (format.go)."""
    src = repo.show(f"{LIB}/format.go")
    m = re.search(
        r"^var ConstantFormats = map\[string\]apiservercel\.Format\{\n(.*?)^\}", src, re.M | re.S
    )
    if not m:
        raise GoError("no ConstantFormats in format.go")
    names = re.findall(r'^\t"(\w+)": \{', m.group(1), re.M)
    source = "TestFormat (format_test.go): cases generated from library.ConstantFormats (format.go)"
    cases = []
    for lhs in names:
        cases.append(Case(f'format.named("{lhs}").hasValue()', "value", True, source=source))
        cases.append(
            Case(f'format.named("{lhs}").value() == format.{lhs}()', "value", True, source=source)
        )
        for rhs in names:
            if rhs != lhs:
                cases.append(
                    Case(f"format.{lhs}() == format.{rhs}()", "value", False, source=source)
                )
    return cases


# ---------------------------------------------------------------------------------------------
# Doc comment examples of kubernetes/apiserver pkg/cel/library/*.go (by hand: they are prose)

INT_LIST = {"type": "array", "items": {"type": "integer"}}
NUMBER_LIST = {"type": "array", "items": {"type": "number"}}


def _obj_schema(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


@dataclass
class Doc:
    """One example line of a doc comment. `doc` is the example as written (checked to be in the
    comment); the case is `expr` (default: `doc`) with one expectation."""

    doc: str
    value: Any = None
    value_expr: str | None = None
    compile_error: str | None = None
    runtime_error: str | None = None
    expr: str | None = None
    self_value: Any = None
    self_schema: Any = None
    note: str = ""


def same(doc: str, note: str = "") -> Doc:
    """An example whose comment says only "returns a <Type>": it must evaluate, to itself."""
    return Doc(doc, value_expr=doc, note=note or "the comment says only that it returns a value")


DOC_EXAMPLES: dict[str, tuple[str, str, list[Doc]]] = {
    # output file: (source file, what the comment documents, examples)
    "lists": (
        "lists.go",
        "the Lists library",
        [
            Doc("[1, 2, 3].isSorted()", True),
            Doc("['a', 'b', 'b', 'c'].isSorted()", True),
            Doc("[2.0, 1.0].isSorted()", False),
            Doc("[1].isSorted()", True),
            Doc("[].isSorted()", True),
            Doc("[1, 3].sum()", 4),
            Doc("[1.0, 3.0].sum()", 4.0),
            Doc(
                "['1m', '1s'].sum()",
                compile_error="found no matching overload for 'sum' applied to 'list(string).()'",
                note="the comment says \"returns '1m1s'\", meaning durations; as written the list "
                "holds strings, and sum has no list(string) overload (validation_test.go pins "
                "['a', 'b'].sum() as this compile error)",
            ),
            Doc(
                "['1m', '1s'].sum()",
                expr="[duration('1m'), duration('1s')].sum()",
                value_expr="duration('1m1s')",
                note="the durations the comment means",
            ),
            Doc(
                "emptyIntList.sum()",
                0,
                expr="self.emptyIntList.sum()",
                self_value={"emptyIntList": []},
                self_schema=_obj_schema(emptyIntList=INT_LIST),
                note="the comment's emptyIntList is an empty list of int, bound here as a field "
                "of self",
            ),
            Doc(
                "emptyDoubleList.sum()",
                0.0,
                expr="self.emptyDoubleList.sum()",
                self_value={"emptyDoubleList": []},
                self_schema=_obj_schema(emptyDoubleList=NUMBER_LIST),
                note="the comment's emptyDoubleList is an empty list of double, bound here as a "
                "field of self",
            ),
            Doc("[].sum()", 0),
            Doc("[1, 3].min()", 1),
            Doc("[1, 3].max()", 3),
            Doc("[].min()", runtime_error="min called on empty list"),
            Doc("[1].min()", 1),
            Doc(
                "([0] + emptyList).min()",
                0,
                expr="([0] + self.emptyList).min()",
                self_value={"emptyList": []},
                self_schema=_obj_schema(emptyList=INT_LIST),
                note="the comment's emptyList is an empty list of int, bound here as a field of "
                "self",
            ),
            Doc("[1, 2, 2, 3].indexOf(2)", 1),
            Doc("['a', 'b', 'b', 'c'].lastIndexOf('b')", 2),
            Doc("[1.0].indexOf(1.1)", -1),
            Doc("[].indexOf('string')", -1),
            Doc("[1, 2, 3].includes(2)", True),
            Doc("[1, 2, 3].includes(4)", False),
            Doc("'model-a'.includes('model-a')", True),
            Doc("'model-a'.includes('model-b')", False),
        ],
    ),
    "regex": (
        "regex.go",
        "the Regex library",
        [
            Doc(
                "\"abc 123\".find('[0-9]*')",
                "",
                note="the comment says '123', but find is Go's Regexp.FindString, whose "
                "leftmost match here is the empty one at offset 0",
            ),
            Doc("\"abc 123\".find('xyz')", ""),
            Doc(
                "\"123 abc 456\".findAll('[0-9]*')",
                ["123", "", "", "", "", "456"],
                note="the comment says ['123', '456'], but findAll is Go's "
                "Regexp.FindAllString, which also returns the empty matches at offsets 4 to 7 "
                "(not the one right after '123', nor the one at the end)",
            ),
            Doc("\"123 abc 456\".findAll('[0-9]*', 1)", ["123"]),
            Doc("\"123 abc 456\".findAll('xyz')", []),
        ],
    ),
    "urls": (
        "urls.go",
        "the URLs library",
        [
            same("url('https://user:pass@example.com:80/path?query=val#fragment')"),
            same("url('/absolute-path')"),
            Doc("url('https://a:b:c/')", runtime_error="URL parse error during conversion"),
            Doc("url('../relative-path')", runtime_error="URL parse error during conversion"),
            Doc("isURL('https://user:pass@example.com:80/path?query=val#fragment')", True),
            Doc("isURL('/absolute-path')", True),
            Doc("isURL('https://a:b:c/')", False),
            Doc("isURL('../relative-path')", False),
            Doc("url('/path').getScheme()", ""),
            Doc("url('https://example.com/').getScheme()", "https"),
            Doc("url('https://example.com:80/').getHost()", "example.com:80"),
            Doc("url('https://example.com/').getHost()", "example.com"),
            Doc("url('https://[::1]:80/').getHost()", "[::1]:80"),
            Doc("url('https://[::1]/').getHost()", "[::1]"),
            Doc("url('/path').getHost()", ""),
            Doc("url('https://example.com:80/').getHostname()", "example.com"),
            Doc("url('https://127.0.0.1:80/').getHostname()", "127.0.0.1"),
            Doc("url('https://[::1]:80/').getHostname()", "::1"),
            Doc("url('/path').getHostname()", ""),
            Doc("url('https://example.com:80/').getPort()", "80"),
            Doc("url('https://example.com/').getPort()", ""),
            Doc("url('/path').getPort()", ""),
            Doc("url('https://example.com/path').getEscapedPath()", "/path"),
            Doc(
                "url('https://example.com/path with spaces/').getEscapedPath()",
                "/path%20with%20spaces/",
            ),
            Doc("url('https://example.com').getEscapedPath()", ""),
            Doc(
                "url('https://example.com/path?k1=a&k2=b&k2=c').getQuery()",
                {"k1": ["a"], "k2": ["b", "c"]},
            ),
            Doc(
                "url('https://example.com/path?key with spaces=value with spaces').getQuery()",
                {"key with spaces": ["value with spaces"]},
            ),
            Doc("url('https://example.com/path?').getQuery()", {}),
            Doc("url('https://example.com/path').getQuery()", {}),
        ],
    ),
    "quantity": (
        "quantity.go",
        "the Quantity library",
        [
            same("quantity('1.5G')"),
            same("quantity('200k')"),
            Doc(
                "quantity('200K')",
                runtime_error="unable to parse quantity's suffix",
                note="K passes the regular expression of quantities, not the suffix check",
            ),
            Doc("quantity('Three')", runtime_error="quantities must match the regular expression"),
            Doc("quantity('Mi')", runtime_error="quantities must match the regular expression"),
            Doc("isQuantity('1.3G')", True),
            Doc("isQuantity('1.3Gi')", True),
            Doc("isQuantity('1,3G')", False),
            Doc("isQuantity('10000k')", True),
            Doc("isQuantity('200K')", False),
            Doc("isQuantity('Three')", False),
            Doc("isQuantity('Mi')", False),
            Doc('quantity("50000000G").isInteger()', True),
            Doc('quantity("50k").isInteger()', True),
            Doc(
                'quantity("9999999999999999999999999999999999999G").asInteger()',
                runtime_error="cannot convert value to integer",
            ),
            Doc('quantity("9999999999999999999999999999999999999G").isInteger()', False),
            Doc('quantity("50k").asInteger() == 50000', True),
            Doc(
                'quantity("50k").sub(20000).asApproximateFloat() == 30000',
                True,
                note="a double compared with an int: true in the base environment, which "
                "enables cross-type numeric comparisons",
            ),
            Doc(
                'quantity("50k").add("20k") == quantity("70k")',
                compile_error="found no matching overload for 'add'",
                note="the comment says true, but add takes a quantity or an int, not a string",
            ),
            Doc('quantity("50k").add(20) == quantity("50020")', True),
            Doc(
                'quantity("50k").sub("20k") == quantity("30k")',
                compile_error="found no matching overload for 'sub'",
                note="the comment says true, but sub takes a quantity or an int, not a string",
            ),
            Doc('quantity("50k").sub(20000) == quantity("30k")', True),
            Doc(
                'quantity("50k").add(20).sub(quantity("100k")).sub(-50000) == quantity("20")',
                True,
            ),
            Doc('quantity("200M").compareTo(quantity("0.2G"))', 0),
            Doc('quantity("50M").compareTo(quantity("50Mi"))', -1),
            Doc('quantity("50Mi").compareTo(quantity("50M"))', 1),
            Doc('quantity("150Mi").isGreaterThan(quantity("100Mi"))', True),
            Doc('quantity("50Mi").isGreaterThan(quantity("100Mi"))', False),
            Doc('quantity("50M").isLessThan(quantity("100M"))', True),
            Doc('quantity("100M").isLessThan(quantity("50M"))', False),
        ],
    ),
    "ip": (
        "ip.go",
        "the IP library",
        [
            same("ip('127.0.0.1')"),
            same("ip('::1')"),
            Doc("ip('127.0.0.256')", runtime_error="parse error during conversion from string"),
            Doc("ip(':::1')", runtime_error="parse error during conversion from string"),
            Doc("isIP('127.0.0.1')", True),
            Doc("isIP('::1')", True),
            Doc("isIP('127.0.0.256')", False),
            Doc("isIP(':::1')", False),
            Doc("ip.isCanonical('127.0.0.1')", True),
            Doc("ip.isCanonical('2001:db8::abcd')", True),
            Doc("ip.isCanonical('2001:DB8::ABCD')", False),
            Doc("ip.isCanonical('2001:db8::0:0:0:abcd')", False),
            Doc("ip('127.0.0.1').family()", 4, note="the comment writes the 4 as a string"),
            Doc("ip('::1').family()", 6, note="the comment writes the 6 as a string"),
            Doc("ip('127.0.0.1').family() == 4", True),
            Doc("ip('::1').family() == 6", True),
            Doc("ip('0.0.0.0').isUnspecified()", True),
            Doc("ip('127.0.0.1').isUnspecified()", False),
            Doc("ip('::').isUnspecified()", True),
            Doc("ip('::1').isUnspecified()", False),
            Doc("ip('127.0.0.1').isLoopback()", True),
            Doc("ip('192.168.0.1').isLoopback()", False),
            Doc("ip('::1').isLoopback()", True),
            Doc("ip('2001:db8::abcd').isLoopback()", False),
            Doc("ip('224.0.0.1').isLinkLocalMulticast()", True),
            Doc("ip('224.0.1.1').isLinkLocalMulticast()", False),
            Doc("ip('ff02::1').isLinkLocalMulticast()", True),
            Doc("ip('fd00::1').isLinkLocalMulticast()", False),
            Doc("ip('169.254.169.254').isLinkLocalUnicast()", True),
            Doc("ip('192.168.0.1').isLinkLocalUnicast()", False),
            Doc("ip('fe80::1').isLinkLocalUnicast()", True),
            Doc("ip('fd80::1').isLinkLocalUnicast()", False),
            Doc("ip('192.168.0.1').isGlobalUnicast()", True),
            Doc("ip('255.255.255.255').isGlobalUnicast()", False),
            Doc("ip('2001:db8::abcd').isGlobalUnicast()", True),
            Doc("ip('ff00::1').isGlobalUnicast()", False),
        ],
    ),
    "cidr": (
        "cidr.go",
        "the CIDR library",
        [
            same("cidr('192.168.0.0/16')"),
            same("cidr('::1/128')"),
            Doc("cidr('192.168.0.0/33')", runtime_error="network address parse error"),
            Doc("cidr('::1/129')", runtime_error="network address parse error"),
            same(
                "cidr('192.168.0.1/16')",
                note="the comment says error (non-0 bits after the prefix), but cidr() is Go's "
                'netip.ParsePrefix, which keeps them; cidr_test.go\'s "masks unmasked ipv4" '
                'evaluates cidr("192.168.0.1/24").masked()',
            ),
            Doc("isCIDR('192.168.0.0/16')", True),
            Doc("isCIDR('::1/128')", True),
            Doc("isCIDR('192.168.0.0/33')", False),
            Doc("isCIDR('::1/129')", False),
            Doc("cidr('192.168.0.0/24').containsIP(ip('192.168.0.1'))", True),
            Doc("cidr('192.168.0.0/24').containsIP(ip('192.168.1.1'))", False),
            Doc("cidr('192.168.0.0/24').containsIP('192.168.0.1')", True),
            Doc("cidr('192.168.0.0/24').containsIP('192.168.1.1')", False),
            Doc("cidr('192.168.0.0/16').containsCIDR(cidr('192.168.10.0/24'))", True),
            Doc("cidr('192.168.1.0/24').containsCIDR(cidr('192.168.2.0/24'))", False),
            Doc("cidr('192.168.0.0/16').containsCIDR('192.168.10.0/24')", True),
            Doc("cidr('192.168.1.0/24').containsCIDR('192.168.2.0/24')", False),
            Doc("cidr('192.168.0.1/24').ip()", value_expr="ip('192.168.0.1')"),
            Doc("cidr('192.168.0.1/24').ip().family()", 4, note="the comment writes '4'"),
            Doc("cidr('::1/128').ip()", value_expr="ip('::1')"),
            Doc("cidr('::1/128').ip().family()", 6, note="the comment writes '6'"),
            Doc("cidr('192.168.0.0/24').masked()", value_expr="cidr('192.168.0.0/24')"),
            Doc("cidr('192.168.0.1/24').masked()", value_expr="cidr('192.168.0.0/24')"),
            Doc("cidr('192.168.0.0/24') == cidr('192.168.0.0/24').masked()", True),
            Doc("cidr('192.168.0.1/24') == cidr('192.168.0.1/24').masked()", False),
            Doc("cidr('192.168.0.0/16').prefixLength()", 16),
            Doc("cidr('::1/128').prefixLength()", 128),
        ],
    ),
    "semver": (
        "semverlib.go",
        "the Semver library",
        [
            same("semver('1.0.0')"),
            same("semver('0.1.0-alpha.1')"),
            Doc("semver('200K')", runtime_error="No Major.Minor.Patch elements found"),
            Doc("semver('Three')", runtime_error="No Major.Minor.Patch elements found"),
            Doc("semver('Mi')", runtime_error="No Major.Minor.Patch elements found"),
            Doc("semver('v1.0.0', true)", value_expr="semver('1.0.0')"),
            Doc("semver('1.0', true)", value_expr="semver('1.0.0')"),
            Doc("semver('01.01.01', true)", value_expr="semver('1.1.1')"),
            Doc("isSemver('1.0.0')", True),
            Doc("isSemver('hello')", False),
            Doc("isSemver('v1.0')", False),
            Doc("isSemver('v1.0', true)", True),
            Doc(
                "semver('1.0', true)",
                value_expr="semver('1.0.0')",
                note='listed under isSemver with "Returns true"; as written it calls semver()',
            ),
            Doc(
                "semver('01.01.01', true)",
                value_expr="semver('1.1.1')",
                note='listed under isSemver with "Returns true"; as written it calls semver()',
            ),
            Doc('semver("1.2.3").major()', 1),
            Doc('semver("1.2.3").compareTo(semver("1.2.3"))', 0),
            Doc('semver("1.2.3").compareTo(semver("2.0.0"))', -1),
            Doc('semver("1.2.3").compareTo(semver("0.1.2"))', 1),
        ],
    ),
    "format": (
        "format.go",
        "the Format library",
        [
            Doc(f"format.{x}", value_expr="optional.none()", note="a valid string: optional.none")
            for x in (
                'dns1123Label().validate("my-label-name")',
                'dns1123Subdomain().validate("apiextensions.k8s.io")',
                'dns1035Label().validate("my-label-name")',
                'qualifiedName().validate("apiextensions.k8s.io/v1beta1")',
                'dns1123LabelPrefix().validate("my-label-prefix-")',
                'dns1123SubdomainPrefix().validate("mysubdomain.prefix.-")',
                'dns1035LabelPrefix().validate("my-label-prefix-")',
                'uri().validate("http://example.com")',
                'uuid().validate("123e4567-e89b-12d3-a456-426614174000")',
                'byte().validate("aGVsbG8=")',
                'date().validate("2021-01-01")',
                'datetime().validate("2021-01-01T00:00:00Z")',
            )
        ],
    ),
}


def doc_cases(repo: Repo, out_name: str) -> list[Case]:
    filename, what, docs = DOC_EXAMPLES[out_name]
    src = repo.show(f"{LIB}/{filename}")
    comment = "\n".join(line[2:].strip() for line in src.splitlines() if line.startswith("//"))
    source = f"doc comment of {what} ({filename}): its examples, converted by hand"
    cases = []
    for d in docs:
        if d.doc not in comment:
            raise GoError(f"{filename}: the example {d.doc!r} is no longer in the doc comment")
        expr = d.expr or d.doc
        notes = ["by hand" + (f": {d.note}" if d.note else "")]
        kw: dict[str, Any] = {"source": source, "notes": notes}
        if d.self_value is not None:
            kw.update(self_value=d.self_value, has_self=True, self_schema=d.self_schema)
        if d.value_expr:
            cases.append(Case(expr, "value_expr", d.value_expr, **kw))
        elif d.compile_error:
            cases.append(Case(expr, "compile_error", d.compile_error, **kw))
        elif d.runtime_error:
            cases.append(Case(expr, "runtime_error", d.runtime_error, **kw))
        else:
            cases.append(Case(expr, "value", d.value, **kw))
    return cases


# ---------------------------------------------------------------------------------------------
# kubernetes/apiextensions-apiserver: structural schemas as JSON Schema

SCHEMA_KEY_ORDER = [
    "type", "format", "nullable", "default", "enum", "maxLength", "maxItems", "maxProperties",
    "properties", "items", "additionalProperties",
    "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type", "x-kubernetes-validations", "allOf", "anyOf", "oneOf", "not",
]  # fmt: skip

_GO_FIELD_TO_SCHEMA = {
    "Type": "type",
    "Nullable": "nullable",
    "Default": "default",
    "Format": "format",
    "Enum": "enum",
    "MaxLength": "maxLength",
    "MaxItems": "maxItems",
    "MaxProperties": "maxProperties",
    "AllOf": "allOf",
    "AnyOf": "anyOf",
    "OneOf": "oneOf",
    "Not": "not",
    "Properties": "properties",
    "Items": "items",
    "AdditionalProperties": "additionalProperties",
    "XPreserveUnknownFields": "x-kubernetes-preserve-unknown-fields",
    "XEmbeddedResource": "x-kubernetes-embedded-resource",
    "XIntOrString": "x-kubernetes-int-or-string",
    "XListType": "x-kubernetes-list-type",
    "XListMapKeys": "x-kubernetes-list-map-keys",
    "XMapType": "x-kubernetes-map-type",
    "XValidations": "x-kubernetes-validations",
}
_EMBEDDED = {"Generic", "Extensions", "ValueValidation", "ValidationExtensions"}
_RULE_FIELDS = {
    "Rule": "rule",
    "Message": "message",
    "MessageExpression": "messageExpression",
    "Reason": "reason",
    "FieldPath": "fieldPath",
    "OptionalOldSelf": "optionalOldSelf",
}


def order_schema(s: Any) -> Any:
    if isinstance(s, list):
        return [order_schema(x) for x in s]
    if not isinstance(s, dict) or "rule" in s:
        return s
    known = [k for k in SCHEMA_KEY_ORDER if k in s]
    unknown = [k for k in s if k not in SCHEMA_KEY_ORDER]
    if unknown:
        raise GoError(f"schema keys {unknown}")
    out: dict[str, Any] = {}
    for k in known:
        v = s[k]
        if k == "properties":
            v = {name: order_schema(p) for name, p in v.items()}
        elif k in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            v = order_schema(v)
        out[k] = v
    return out


def build_schema(ev: Evaluator, fields: list[tuple[str, Node]]) -> dict[str, Any]:
    """schema.Structural, schema.NestedValueValidation and their embedded parts, as one JSON
    Schema mapping (the form a CRD's openAPIV3Schema writes them in)."""
    out: dict[str, Any] = {}
    for name, node in fields:
        value = ev.ev(node)
        if name in _EMBEDDED:
            if value is not None:
                out.update(value)
            continue
        if name not in _GO_FIELD_TO_SCHEMA:
            raise GoError(f"schema field {name}")
        if value is None or value is False or value == "":
            continue
        out[_GO_FIELD_TO_SCHEMA[name]] = value
    return out


def build_rule(ev: Evaluator, fields: list[tuple[str, Node]]) -> dict[str, Any]:
    return {_RULE_FIELDS[name]: ev.ev(node) for name, node in fields}


def build_structural_or_bool(ev: Evaluator, fields: list[tuple[str, Node]]) -> Any:
    values = {name: ev.ev(node) for name, node in fields}
    if values.get("Structural") is not None:
        return values["Structural"]
    return bool(values.get("Bool"))


def primitive_type(typ: str, fmt: str = "") -> dict[str, Any]:
    return {"type": typ, "format": fmt} if fmt else {"type": typ}


def array_type(list_type: str, keys: list[str] | None, items: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "array", "items": items, "x-kubernetes-list-type": list_type}
    if keys and list_type == "map":
        out["x-kubernetes-list-map-keys"] = keys
    return out


def object_type(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props}


def with_rule(s: dict[str, Any], rule: str) -> dict[str, Any]:
    s = copy.deepcopy(s)
    s["x-kubernetes-validations"] = [{"rule": rule}]
    return s


def with_key(key: str) -> Callable[[Any, dict[str, Any]], dict[str, Any]]:
    def f(value: Any, s: dict[str, Any]) -> dict[str, Any]:
        s = copy.deepcopy(s)
        if value is not False:
            s[key] = value
        return s

    return f


def gen_match_selector_schema(rule: str) -> dict[str, Any]:
    # validation_test.go genMatchSelectorSchema, transcribed.
    item = object_type(
        {
            "key": primitive_type("string"),
            "operator": primitive_type("string"),
            "values": array_type("atomic", None, primitive_type("string")),
        }
    )
    return with_rule(object_type({"matchExpressions": array_type("atomic", None, item)}), rule)


def ext_evaluator(src: str) -> Evaluator:
    names: dict[str, Any] = {
        "math.MaxInt64": 2**63 - 1,
        "math.MaxInt32": 2**31 - 1,
        "math.MaxFloat64": sys.float_info.max,
        "math.MaxFloat32": float.fromhex("0x1.fffffep+127"),
        "math.MaxInt": 2**63 - 1,
    }
    for name, typ, fmt in [
        ("integerType", "integer", ""),
        ("int32Type", "integer", "int32"),
        ("int64Type", "integer", "int64"),
        ("numberType", "number", ""),
        ("floatType", "number", "float"),
        ("doubleType", "number", "double"),
        ("stringType", "string", ""),
        ("byteType", "string", "byte"),
        ("booleanType", "boolean", ""),
        ("durationFormat", "string", "duration"),
        ("dateFormat", "string", "date"),
        ("dateTimeFormat", "string", "date-time"),
    ]:
        names[name] = primitive_type(typ, fmt)
    # The package variables above must be what validation_test.go declares.
    for name, value in list(names.items()):
        if name.endswith(("Type", "Format")):
            fmt = value.get("format", "")
            decl = f'{name} = primitiveType("{value["type"]}", "{fmt}")'
            if not re.search(re.escape(decl).replace(r"\ =\ ", r"\s+=\s+"), src):
                raise GoError(f"validation_test.go no longer declares {decl}")
    if m := re.search(r"^const maxValidDepth = (\d+)$", src, re.M):
        names["maxValidDepth"] = int(m.group(1))

    def objs(*vals: Any) -> dict[str, Any]:
        return {f"val{i + 1}": v for i, v in enumerate(vals)}

    def schemas(*vals: Any) -> dict[str, Any]:
        return object_type({f"val{i + 1}": copy.deepcopy(v) for i, v in enumerate(vals)})

    def vals_equal(val1: str, val2: str, literal: str) -> str:
        return go_sprintf(
            "%s == %s && %s == %s && %s == %s", val1, literal, literal, val1, val1, val2
        )

    def map_type(value_schema: Any) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": value_schema}

    funcs: dict[str, Callable[..., Any]] = {
        "int64": int,
        "int32": int,
        "int": int,
        "float64": float,
        "float32": float,
        "fmt.Sprintf": go_sprintf,
        "strings.Repeat": lambda s, n: s * n,
        "ptr.To": lambda v: v,
        "objs": objs,
        "schemas": schemas,
        "ValsEqualThemselvesAndDataLiteral": vals_equal,
        "primitiveType": primitive_type,
        "listType": lambda items: array_type("atomic", None, items),
        "listTypePtr": lambda items: array_type("atomic", None, items),
        "listSetType": lambda items: array_type("set", None, items),
        "listMapType": lambda keys, items: array_type("map", keys, items),
        "listMapTypePtr": lambda keys, items: array_type("map", keys, items),
        "objectType": object_type,
        "objectTypePtr": object_type,
        "mapType": map_type,
        "mapTypePtr": map_type,
        "intOrStringType": lambda: {"x-kubernetes-int-or-string": True},
        "withRule": with_rule,
        "withRulePtr": with_rule,
        "cloneWithRule": with_rule,
        "withNullable": with_key("nullable"),
        "withNullablePtr": with_key("nullable"),
        "withDefault": with_key("default"),
        "nilInterfaceOfStringSlice": lambda: None,
        "genMatchSelectorSchema": gen_match_selector_schema,
    }
    return Evaluator(
        src=src,
        names=names,
        funcs=funcs,
        structs={
            "schema.Structural": build_schema,
            "schema.NestedValueValidation": build_schema,
            "schema.Generic": build_schema,
            "schema.Extensions": build_schema,
            "schema.ValueValidation": build_schema,
            "schema.ValidationExtensions": build_schema,
            "schema.JSON": lambda ev, fs: ev.ev(dict(fs)["Object"]),
            "schema.StructuralOrBool": build_structural_or_bool,
            "apiextensions.ValidationRule": build_rule,
        },
        slices={"apiextensions.ValidationRules": "apiextensions.ValidationRule"},
    )


# ---------------------------------------------------------------------------------------------
# kubernetes/apiextensions-apiserver validation_test.go: valid / errors tables

COMPILE_MARKERS = (
    "compile error",
    "compilation failed",
    "undefined field",
    "no matching overload",
    "expected type",
    "undeclared reference",
    "mismatched input",
    "Syntax error",
    "invalid matches argument",
    "max recursion depth exceeded",
)
RUNTIME_MARKERS = (
    "no such key",
    "index out of bounds",
    "integer overflow",
    "division by zero",
    "cannot slice",
    "level must be non-negative",
    "called on empty list",
    "invalid data",
)


def error_stage(message: str) -> str:
    """Whether K8s' error for a rule is raised when compiling it or when evaluating it."""
    if any(m in message for m in COMPILE_MARKERS):
        return "compile_error"
    if any(m in message for m in RUNTIME_MARKERS):
        return "runtime_error"
    raise GoError(f"cannot tell the stage of the error {message!r}: add it to convert.py")


# Which file a K8s test group's cases go to (default: validation-rules).
GROUP_FILE = {
    "integers": "numeric",
    "numbers": "numeric",
    "numeric comparisons": "numeric",
    "unicode strings": "strings",
    "escaped strings": "strings",
    "string lists": "strings",
    "ext lists version 3": "ext-lists",
    "stdlib list functions": "lists",
    "stdlib regex functions": "regex",
    "URL parsing": "urls",
    "optionals": "optional",
    "quantity": "quantity",
    "format": "format",
    "cost for extended lib calculated correctly: isSorted": "lists",
    "cost for extended lib calculated correctly: url": "urls",
    "cost for extended lib calculated correctly: split": "strings",
    "cost for extended lib calculated correctly: join": "strings",
    "IP and CIDR": "ip",
}
# Which file a case goes to by its expression, whatever its group (first match).
EXPR_FILE = [
    (re.compile(r"\bsets\.(contains|equivalent|intersects)\("), "sets"),
    (re.compile(r"\.(all|exists|existsOne)\(\s*\w+\s*,\s*\w+\s*,"), "comprehensions"),
    (re.compile(r"\.transform(List|Map|MapEntry)\("), "comprehensions"),
    (re.compile(r"\.join\("), "strings"),
    (re.compile(r"\bcidr\("), "cidr"),
]
# Only for these groups: EXPR_FILE's cidr rule (the other groups' cidr uses stay put).
CIDR_GROUPS = {"IP and CIDR"}


def route(group: str, expr: str) -> str:
    for pattern, name in EXPR_FILE:
        if name == "cidr" and group not in CIDR_GROUPS:
            continue
        if pattern.search(expr):
            return name
    return GROUP_FILE.get(group, "validation-rules")


# What K8s does with a group's schema that the case alone does not say (notes for humans).
_EMBEDDED_NOTE = (
    "K8s: an object with x-kubernetes-embedded-resource also declares apiVersion, kind, "
    "metadata.name and metadata.generateName"
)
GROUP_NOTES = {
    "bytes": "K8s: a string of format byte is CEL bytes (its base64 decoded)",
    "duration format": "K8s: a string of format duration is a CEL duration",
    "date format": "K8s: a string of format date is a CEL timestamp",
    "date-time format": "K8s: a string of format date-time is a CEL timestamp",
    "conversions": "K8s: strings of format byte, duration, date and date-time are CEL bytes, "
    "duration and timestamps",
    "stdlib list functions": "K8s: strings of format duration and date are CEL durations and "
    "timestamps",
    "listSets": "K8s: lists of x-kubernetes-list-type set compare as sets",
    "listMaps": "K8s: lists of x-kubernetes-list-type map compare by their keys, in any order, "
    "and + merges them",
    "escaping": "K8s: a property named as a CEL keyword, or with characters out of "
    "[a-zA-Z0-9_], is written escaped: __true__, __dot__, __dash__, __slash__, __underscores__",
    "listMaps with unsupported identity characters in property names": "K8s: list-map keys "
    "compare in any order; '.' in a property name is written __dot__",
    "invalid data": "K8s checks the data against the schema before evaluating: these errors "
    "come from that check",
    "field nullability": "K8s: a field set to null is absent",
    "null in intOrString": "K8s: a field set to null is absent",
    "typemeta and objectmeta access specified": "K8s: metadata.name and metadata.generateName "
    "are the only fields of metadata that rules may use",
}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def validation_table_cases(repo: Repo, func: str) -> list[tuple[str, Case]]:
    """(output file, case) for every rule of a `valid` / `errors` table."""
    src = repo.show(VALIDATION_TEST)
    ev = ext_evaluator(src)
    table = ev.ev(table_node(src, func, "tests"))
    out: list[tuple[str, Case]] = []
    for st in table:
        assert isinstance(st, Struct)
        group = ev.ev(st["name"])
        obj = ev.ev(st["obj"]) if "obj" in st else None
        schema = order_schema(ev.ev(st["schema"])) if "schema" in st else None
        source = f'{func} "{group}" ({Path(VALIDATION_TEST).name})'
        notes: list[str] = []
        if "isRoot" in st and ev.ev(st["isRoot"]):
            notes.append(
                "K8s: self is a resource's root (isRoot), where K8s also declares apiVersion, "
                "kind, metadata.name and metadata.generateName"
            )
        if group in GROUP_NOTES:
            notes.append(GROUP_NOTES[group])
        if "x-kubernetes-embedded-resource" in json.dumps(schema):
            notes.append(_EMBEDDED_NOTE)
        if "expectedCost" in st:
            notes.append(f"K8s also checks that its cost is {ev.ev(st['expectedCost'])}")
        if "expectSkipped" in st and ev.ev(st["expectSkipped"]):
            notes.append("K8s does not evaluate it: there is no old object")

        rules: list[tuple[str, str, Any]] = [
            (rule, "value", True) for rule in (ev.ev(st["valid"]) if "valid" in st else [])
        ]
        for rule, message in (ev.ev(st["errors"]) if "errors" in st else {}).items():
            rules.append((rule, error_stage(message), message))
        for expr, outcome, expected in rules:
            c = Case(
                expr,
                outcome,
                expected,
                self_value=obj,
                has_self=True,
                self_schema=schema,
                source=source,
                group_notes=notes,
                skip=OLDSELF_SKIP if "oldSelf" in expr else None,
                anchor_hint=slug(group),
            )
            out.append((route(group, expr), c))
    return out


def context_cancellation_cases(repo: Repo) -> list[tuple[str, Case]]:
    """TestCELValidationContextCancellation: its rule must first validate without error."""
    src = repo.show(VALIDATION_TEST)
    ev = ext_evaluator(src)
    ev.names["items"] = list(range(1000))  # built by a loop in the test
    out = []
    for st in ev.ev(table_node(src, "TestCELValidationContextCancellation", "tests")):
        out.append(
            (
                "validation-rules",
                Case(
                    ev.ev(st["rule"]),
                    "value",
                    True,
                    self_value=ev.ev(st["obj"]),
                    has_self=True,
                    self_schema=order_schema(ev.ev(st["schema"])),
                    source='TestCELValidationContextCancellation "'
                    f'{ev.ev(st["name"])}" ({Path(VALIDATION_TEST).name})',
                    notes=[
                        "by hand: obj.array is 0..999, built by a loop; the test then cancels "
                        "the context, which does not apply here"
                    ],
                ),
            )
        )
    return out


# TestValidationExpressionsAtSchemaLevels: its rules sit inside the schema, each bound to the
# value at its place. The rules and values are read from the table; what each rule gives is
# written here by hand from the test's `errors` (a message means that rule was false there;
# "failed rule" names none). Key: (test name, rule, JSON path of self) -> outcome.
SchemaLevelOutcome = tuple[str, Any]  # (value | compile_error, expected)
_NO_OVERLOAD = "found no matching overload for '_==_' applied to '(int, string)"
SCHEMA_LEVEL_OUTCOMES: dict[tuple[str, str, str], SchemaLevelOutcome] = {}
for _name in [
    "invalid rule under array items",
    "invalid rule under array items, parent has rule",
]:
    SCHEMA_LEVEL_OUTCOMES[(_name, "self == 'abc'", "f[0]")] = ("compile_error", _NO_OVERLOAD)
for _name in [
    "invalid rule under additionalProperties",
    "invalid rule under additionalProperties, parent has rule",
]:
    SCHEMA_LEVEL_OUTCOMES[(_name, "self == 'abc'", "f[k]")] = ("compile_error", _NO_OVERLOAD)
for _name, _path in [
    ("invalid rule under unescaped field name", "f"),
    ("invalid rule under unescaped field name, parent has rule", "f"),
    ("invalid rule under escaped field name", "f/2"),
    ("invalid rule under escaped field name, parent has rule", "f/2"),
    ("invalid rule under unescapable field name", "a@b"),
    ("invalid rule under unescapable field name, parent has rule", "f@2"),
]:
    SCHEMA_LEVEL_OUTCOMES[(_name, "self.m == 'abc'", _path)] = ("compile_error", _NO_OVERLOAD)
for _name, _path in [
    ("invalid rule under array items, parent has rule", "f"),
    ("invalid rule under additionalProperties, parent has rule", "f"),
    ("invalid rule under unescaped field name, parent has rule", ""),
    ("invalid rule under escaped field name, parent has rule", ""),
    ("invalid rule under unescapable field name, parent has rule", ""),
]:
    SCHEMA_LEVEL_OUTCOMES[(_name, "1 == 1", _path)] = ("value", True)
SCHEMA_LEVEL_OUTCOMES.update(
    {
        ("failing rule under escaped field name", "self.m == 2", "f/2"): ("value", False),
        ("failing rule under unescapable field name", "self.m == 2", "a@b"): ("value", False),
        ("allOf rule", "self.key == 'value' && self.key2 == 'value2'", ""): ("value", False),
        ("allOf rule", "self.key != self.key2", ""): ("value", False),
        ("anyOf rule ignored", "true", ""): ("value", True),
        ("oneOf rule ignored", "true", ""): ("value", True),
        ("not rule ignored", "true", ""): ("value", True),
        ("allOf.items", "self.size() == 5", "myList[0]"): ("value", True),
        ("allOf.items", "self.size() == 5", "myList[1]"): ("value", False),
        ("allOf.items", 'self == "value2" || self != "value"', "myList[0]"): ("value", False),
        ("allOf.items", 'self == "value2" || self != "value"', "myList[1]"): ("value", True),
        ("allOf.items.allOf", "self.size() == 5", "myList[0]"): ("value", True),
        ("allOf.items.allOf", "self.size() == 5", "myList[1]"): ("value", False),
        ("allOf.items.allOf", 'self == "value2" || self != "value"', "myList[0]"): (
            "value",
            False,
        ),
        ("allOf.items.allOf", 'self == "value2" || self != "value"', "myList[1]"): (
            "value",
            True,
        ),
        ("allOf.additionalProperties", 'self == "value2" || self != "value"', "myProperty[key]"): (
            "value",
            False,
        ),
        ("allOf.additionalProperties", 'self == "value2" || self != "value"', "myProperty[key2]"): (
            "value",
            True,
        ),
        ("allOf.additionalProperties", "self.size() == 5", "myProperty[key]"): ("value", True),
        ("allOf.additionalProperties", "self.size() == 5", "myProperty[key2]"): ("value", False),
        ("allOf.properties", 'self == "value2" || self != "value"', "key"): ("value", False),
        ("allOf.properties", "self.size() == 5", "key2"): ("value", False),
        (
            "properties.allOf.additionalProperties.allOf.properties",
            'self == "value2" || self != "value"',
            "myProperty[randomKey].key",
        ): ("value", False),
        (
            "properties.allOf.additionalProperties.allOf.properties",
            "self.size() == 5",
            "myProperty[randomKey].key2",
        ): ("value", False),
    }
)
for _name in [
    "matchExpressions - 'values' must be specified when 'operator' is 'In' or 'NotIn'",
    "matchExpressions - 'values' may not be specified when 'operator' is 'Exists' or "
    "'DoesNotExist'",
    "matchExpressions - invalid selector operator",
    "matchExpressions - invalid label value",
]:
    SCHEMA_LEVEL_OUTCOMES[(_name, "*", "")] = ("value", False)

_VALIDATION_ONLY = ("x-kubernetes-validations", "allOf", "anyOf", "oneOf", "not")


def strip_validations(s: Any) -> Any:
    if isinstance(s, list):
        return [strip_validations(x) for x in s]
    if not isinstance(s, dict):
        return s
    out = {}
    for k, v in s.items():
        if k in _VALIDATION_ONLY:
            continue
        if k == "properties":
            v = {n: strip_validations(p) for n, p in v.items()}
        elif k in ("items", "additionalProperties"):
            v = strip_validations(v)
        out[k] = v
    return out


@dataclass
class PlacedRule:
    rule: str
    message: str
    path: str
    value: Any
    schema: Any
    ignored_by: str = ""  # "anyOf" / "oneOf" / "not" when K8s ignores the rule there


def placed_rules(schema: Any, value: Any, path: str = "") -> list[PlacedRule]:
    """Every rule of `schema`, with the value at its place, as K8s binds `self` to it."""
    out: list[PlacedRule] = []

    def walk(struct: Any, overlays: list[Any], val: Any, p: str) -> None:
        layers = [struct, *overlays]
        # allOf entries validate the same value; their own allOf too.
        i = 0
        while i < len(layers):
            layers.extend(layers[i].get("allOf", []))
            i += 1
        bare = strip_validations(struct)
        for layer in layers:
            for r in layer.get("x-kubernetes-validations", []):
                out.append(PlacedRule(r["rule"], r.get("message", ""), p, val, bare))
            for kind in ("anyOf", "oneOf"):
                for sub in layer.get(kind, []):
                    for r in sub.get("x-kubernetes-validations", []):
                        out.append(PlacedRule(r["rule"], r.get("message", ""), p, val, bare, kind))
            if "not" in layer:
                for r in layer["not"].get("x-kubernetes-validations", []):
                    out.append(PlacedRule(r["rule"], r.get("message", ""), p, val, bare, "not"))
        if isinstance(val, dict):
            for name, prop in struct.get("properties", {}).items():
                if name in val:
                    subs = [
                        lay["properties"][name]
                        for lay in layers[1:]
                        if name in lay.get("properties", {})
                    ]
                    walk(prop, subs, val[name], f"{p}.{name}" if p else name)
            add = struct.get("additionalProperties")
            if isinstance(add, dict):
                subs = [
                    lay["additionalProperties"]
                    for lay in layers[1:]
                    if "additionalProperties" in lay
                ]
                for k, v in val.items():
                    walk(add, subs, v, f"{p}[{k}]")
        if isinstance(val, list) and isinstance(struct.get("items"), dict):
            subs = [lay["items"] for lay in layers[1:] if "items" in lay]
            for n, v in enumerate(val):
                walk(struct["items"], subs, v, f"{p}[{n}]")

    walk(schema, [], value, path)
    return out


def schema_level_cases(repo: Repo) -> list[tuple[str, Case]]:
    src = repo.show(VALIDATION_TEST)
    ev = ext_evaluator(src)
    func = "TestValidationExpressionsAtSchemaLevels"
    out = []
    used: set[tuple[str, str, str]] = set()
    for st in ev.ev(table_node(src, func, "tests")):
        name = ev.ev(st["name"])
        schema = ev.ev(st["schema"])
        obj = ev.ev(st["obj"])
        errors = ev.ev(st["errors"]) if "errors" in st else []
        source = f'{func} "{name}" ({Path(VALIDATION_TEST).name})'
        for pr in placed_rules(schema, obj):
            notes = [
                "by hand: the rule sits at "
                + (f"`{pr.path}`" if pr.path else "the root")
                + " of the test's schema, where K8s binds self to the value below"
                + (f"; K8s expects the errors {errors}" if errors else "; K8s expects no error")
            ]
            if pr.message:
                notes.append(f"the rule's message: {pr.message!r}")
            kw: dict[str, Any] = {
                "self_value": pr.value,
                "has_self": True,
                "self_schema": order_schema(pr.schema),
                "source": source,
                "notes": notes,
                "anchor_hint": slug(name),
            }
            if pr.ignored_by:
                out.append(
                    (
                        "validation-rules",
                        Case(
                            pr.rule,
                            "value",
                            False,
                            skip=f"K8s ignores rules under {pr.ignored_by} (CRD schema placement, "
                            "not expression meaning)",
                            **kw,
                        ),
                    )
                )
                continue
            key = (name, pr.rule, pr.path)
            if key not in SCHEMA_LEVEL_OUTCOMES:
                key = (name, "*", pr.path)
            if key not in SCHEMA_LEVEL_OUTCOMES:
                raise GoError(f"{func}: no outcome written for {(name, pr.rule, pr.path)}")
            used.add(key)
            outcome, expected = SCHEMA_LEVEL_OUTCOMES[key]
            out.append(("validation-rules", Case(pr.rule, outcome, expected, **kw)))
    unused = set(SCHEMA_LEVEL_OUTCOMES) - used
    if unused:
        raise GoError(f"{func}: outcomes written for rules not in the table: {sorted(unused)}")
    return out


def compilation_cases(repo: Repo) -> list[tuple[str, Case]]:
    """TestCelCompilation (compilation_test.go), by hand: its cases that state an error. The
    schemas are copied from the table; the rules are checked to be there."""
    src = repo.show(COMPILATION_TEST)
    source = f"TestCelCompilation ({Path(COMPILATION_TEST).name})"
    nested = {"type": "array", "items": {"type": "array", "items": {"type": "string"}}}
    escaping = object_type(
        {"namespace": nested, "if": {"type": "integer"}, "self": {"type": "integer"}}
    )
    scalars = {"i": {"type": "integer"}, "b": {"type": "boolean"}, "s": {"type": "string"}}
    int_list = {"type": "array", "items": {"type": "integer"}}
    complex_schema = object_type(
        {
            **scalars,
            "a": int_list,
            "o": object_type({**scalars, "a": int_list, "o": {"type": "object"}}),
        }
    )
    items: list[tuple[str, str, Any, str, str, str | None]] = [
        # (test name, rule, schema of self, outcome, K8s message, skip)
        ("invalid checking for number", "size(self) == 10", {"type": "number"},
         "compile_error", "compilation failed", None),
        ("compilation failure", "size(self) == 10", {"type": "integer"},
         "compile_error", "compilation failed", None),
        ("invalid for escaping", "self == 10", escaping,
         "compile_error", "found no matching overload", None),
        ("expression must evaluate to bool", "42", {"type": "object"},
         "compile_error", "must evaluate to a bool",
         "K8s refuses a rule whose type is not bool; run_expression evaluates any expression "
         "(the condition checker refuses a non-bool condition on its own)"),
        ("modified expressions may not use CEL environment features planned to be added in "
         "future releases", "fakeFunction('abc') == 'ABC'", {"type": "object"},
         "compile_error", "undeclared reference to 'fakeFunction'", None),
        ("optional complex transition rule type checking", "self.o.i >= oldSelf.o.i",
         complex_schema, "compile_error", "optional", OLDSELF_SKIP),
        ("optional complex transition rule type checking", "self.o.i >= oldSelf.o.s.orValue(0)",
         complex_schema, "compile_error", "orValue", OLDSELF_SKIP),
        ("optional primitive transition rule type checking", "self >= oldSelf",
         {"type": "integer"}, "compile_error", "optional", OLDSELF_SKIP),
        ("optional primitive transition rule type checking", "self >= oldSelf.orValue('')",
         {"type": "integer"}, "compile_error", "orValue", OLDSELF_SKIP),
    ]  # fmt: skip
    out = []
    for name, rule, schema, outcome, message, skip in items:
        if f'name: "{name}"' not in src.replace("\t", "") or f'"{rule}"' not in src:
            raise GoError(f"compilation_test.go: {name!r} / {rule!r} not found")
        out.append(
            (
                "validation-rules",
                Case(
                    rule,
                    outcome,
                    message,
                    self_schema=schema,
                    source=source,
                    notes=[f'by hand: "{name}"; the table gives a schema but no value of self'],
                    skip=skip,
                    anchor_hint=slug(name),
                ),
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# YAML output


_SINGLE_QUOTABLE = re.compile(r"[^\x00-\x1f\x7f\x85\u2028\u2029\ufeff]*")


def yaml_scalar_str(s: str) -> str:
    """A string as a YAML double-quoted scalar (JSON's escapes), or single-quoted (no escapes,
    ' doubled) when that is shorter and the string has no control character."""
    double = json.dumps(s, ensure_ascii=False)
    if _SINGLE_QUOTABLE.fullmatch(s) and s.strip() == s:
        single = "'" + s.replace("'", "''") + "'"
        if len(single) < len(double):
            return single
    return double


def flow(v: Any) -> str:
    """A value in YAML flow style (JSON, with floats written so that YAML 1.1 reads them as
    floats: PyYAML takes 1e+300 for a string)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return ".nan"
        if math.isinf(v):
            return ".inf" if v > 0 else "-.inf"
        text = repr(v)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(v, str):
        return yaml_scalar_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(flow(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{yaml_scalar_str(str(k))}: {flow(x)}" for k, x in v.items()) + "}"
    raise GoError(f"no YAML for {v!r}")


def render(name: str, header: list[str], cases: list[Case], kept_tail: str) -> str:
    lines = [f"# {h}" if h else "#" for h in header]
    lines.append("cases:")
    # A self or schema that several cases share is written once, with a YAML anchor.
    counts: dict[str, int] = {}
    for c in cases:
        for key, v in (("self", c.self_value), ("schema", c.self_schema)):
            if isinstance(v, dict | list) and len(flow(v)) > 30:
                counts[key + flow(v)] = counts.get(key + flow(v), 0) + 1
    anchors: dict[str, str] = {}
    taken: set[str] = set()
    group = None
    for c in cases:
        if c.source != group:
            group = c.source
            lines.append(f"  # --- {group}")
            for note in c.group_notes:
                lines.append("  # " + " ".join(note.split()))
        for note in c.notes:
            lines.append("  # " + " ".join(note.split()))
        first = True
        for key, v in c.mapping():
            if key in ("self", "self_schema") and isinstance(v, dict | list):
                kind = "self" if key == "self" else "schema"
                fv = flow(v)
                k = kind + fv
                if k in anchors:
                    text = f"*{anchors[k]}"
                elif counts.get(k, 0) > 1:
                    base = f"{kind}-{c.anchor_hint or 'case'}"
                    anchor = base
                    n = 2
                    while anchor in taken:
                        anchor = f"{base}-{n}"
                        n += 1
                    taken.add(anchor)
                    anchors[k] = anchor
                    text = f"&{anchor} {fv}"
                else:
                    text = fv
            else:
                text = flow(v)
            lines.append(f"  {'- ' if first else '  '}{key}: {text}")
            first = False
    lines.append(KEEP_MARKER)
    body = "\n".join(lines) + "\n"
    return body + kept_tail


def kept_tail(path: Path) -> str:
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8")
    i = text.find(KEEP_MARKER + "\n")
    return "" if i < 0 else text[i + len(KEEP_MARKER) + 1 :]


FILE_TITLES = {
    "quantity": "the Quantity library (quantity, isQuantity, compareTo, add, …)",
    "ip": "the IP library (ip, isIP, ip.isCanonical, family, is…)",
    "cidr": "the CIDR library (cidr, isCIDR, containsIP, containsCIDR, masked, …)",
    "urls": "the URLs library (url, isURL, getScheme, getHost, …)",
    "semver": "the Semver library (semver, isSemver, major, compareTo, …)",
    "format": "the Format library (format.named, format.<name>(), validate)",
    "regex": "the Regex library (find, findAll) and matches",
    "lists": "Kubernetes' lists library (isSorted, sum, min, max, indexOf, lastIndexOf, includes)",
    "ext-lists": "cel-go's lists extension (lists.range, slice, flatten, sort, sortBy, distinct, "
    "reverse)",
    "sets": "cel-go's sets extension (sets.contains, sets.intersects, sets.equivalent)",
    "strings": "cel-go's strings extension (charAt, indexOf, replace, split, join, format, …) and "
    "string basics",
    "optional": "optional types (a.?b, m[?k], optional.of/none/ofNonZeroValue, orValue, or, …)",
    "comprehensions": "two-variable comprehensions (all, exists, existsOne, transformList, "
    "transformMap, transformMapEntry)",
    "numeric": "numbers: int and double semantics, and comparisons across int, uint and double",
    "validation-rules": "CRD validation rules that belong to no one library: self bound to a "
    "typed object (schemas, escaping, nulls, int-or-string, …)",
}
FILE_ORDER = list(FILE_TITLES)


def convert(api: Repo, ext: Repo) -> dict[str, tuple[list[str], list[Case]]]:
    files: dict[str, list[Case]] = {name: [] for name in FILE_ORDER}
    sources: dict[str, list[str]] = {name: [] for name in FILE_ORDER}

    def note_source(name: str, text: str) -> None:
        if text not in sources[name]:
            sources[name].append(text)

    for filename, func, out in LIBRARY_TESTS:
        files[out] += library_test_cases(api, filename, func)
        note_source(out, f"{api.name} {LIB}/{filename} at {api.sha}: {func}")
    for out in DOC_EXAMPLES:
        files[out] += doc_cases(api, out)
        note_source(
            out,
            f"{api.name} {LIB}/{DOC_EXAMPLES[out][0]} at {api.sha}: doc comment examples (by hand)",
        )
    ext_parts: list[tuple[str, list[tuple[str, Case]]]] = [
        ("TestValidationExpressions", validation_table_cases(ext, "TestValidationExpressions")),
        ("TestValidationExpressionsAtSchemaLevels", schema_level_cases(ext)),
        ("TestCELMaxRecursionDepth", validation_table_cases(ext, "TestCELMaxRecursionDepth")),
        ("TestCELValidationContextCancellation", context_cancellation_cases(ext)),
    ]
    for func, pairs in ext_parts:
        for out, c in pairs:
            files[out].append(c)
            note_source(out, f"{ext.name} {VALIDATION_TEST} at {ext.sha}: {func}")
    for out, c in compilation_cases(ext):
        files[out].append(c)
        note_source(
            out, f"{ext.name} {COMPILATION_TEST} at {ext.sha}: TestCelCompilation (by hand)"
        )

    result = {}
    for name in FILE_ORDER:
        header = [
            f"Kubernetes' own CEL test cases for {FILE_TITLES[name]}.",
            "Where these come from:",
            *(f"  {s}" for s in sources[name]),
            "Written by convert.py (see README.md); regenerate rather than edit above the marker "
            "at the end.",
        ]
        result[name] = (header, files[name])
    return result


def write_counts(readme: Path, counts: dict[str, int], check: bool) -> bool:
    text = readme.read_text(encoding="utf-8")
    table = ["| file | cases |", "| --- | ---: |"]
    for name, n in counts.items():
        table.append(f"| {name}.yaml | {n} |")
    table.append(f"| **total** | **{sum(counts.values())}** |")
    new_block = f"{COUNTS_BEGIN}\n" + "\n".join(table) + f"\n{COUNTS_END}"
    pattern = re.compile(re.escape(COUNTS_BEGIN) + ".*?" + re.escape(COUNTS_END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{readme}: no case-count markers")
    new = pattern.sub(lambda _m: new_block, text)
    if new == text:
        return True
    if not check:
        readme.write_text(new, encoding="utf-8")
    return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--apiserver", default="/work/.mirror/kubernetes+apiserver/repo")
    p.add_argument("--apiserver-rev", default="HEAD")
    p.add_argument(
        "--apiextensions", default="/work/.mirror/kubernetes+apiextensions-apiserver/repo"
    )
    p.add_argument("--apiextensions-rev", default="HEAD")
    p.add_argument("--check", action="store_true", help="compare, do not write")
    args = p.parse_args(argv)
    api = Repo(APISERVER, args.apiserver, args.apiserver_rev)
    ext = Repo(APIEXT, args.apiextensions, args.apiextensions_rev)
    same_files = True
    counts: dict[str, int] = {}
    for name, (header, cases) in convert(api, ext).items():
        path = HERE / f"{name}.yaml"
        tail = kept_tail(path)
        text = render(name, header, cases, tail)
        counts[name] = len(yaml.safe_load(text)["cases"])
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old != text:
            same_files = False
            if args.check:
                print(f"{path.name}: differs", file=sys.stderr)
            else:
                path.write_text(text, encoding="utf-8")
    if not write_counts(HERE / "README.md", counts, args.check):
        same_files = False
        if args.check:
            print("README.md: case counts differ", file=sys.stderr)
    return 0 if same_files or not args.check else 1


if __name__ == "__main__":
    raise SystemExit(main())
