"""Kubernetes' regex library (policy_checks/cel/library/regex.py) against Kubernetes' own tests:
the rule table "stdlib regex functions" of apiextensions-apiserver
`pkg/apiserver/schema/cel/validation_test.go` at 1aa2717a552ee6ca1e2a18f1f8ffccde981db923 and
the regex cases of k8s.io/apiserver `pkg/cel/library/cost_test.go` at
24a394e516bfda066d7e2221d7d92c052de27c54; Go's regexp tables (`regexp/find_test.go` findTests,
`regexp/all_test.go` badRe) for FindString/FindAllString and the syntax errors Kubernetes shows;
linear time on a pattern that makes a backtracking engine take exponential time; hostile inputs.
"""

from __future__ import annotations

import pytest

from policy_checks.cel.environment import ENVIRONMENTS
from policy_checks.cel.library import regex
from tests.celcases import plain, run

pytestmark = pytest.mark.fast

STR = "this is a 123 string 456"

# validation_test.go, "stdlib regex functions" (self.str is the variable `s`): valid rules.
KUBERNETES_CRD_VALID = [
    "s.find('[0-9]+') == '123'",
    "s.find('[0-9]+') != '456'",
    "s.find('xyz') == ''",
    "s.findAll('[0-9]+') == ['123', '456']",
    "s.findAll('[0-9]+', 0) == []",
    "s.findAll('[0-9]+', 1) == ['123']",
    "s.findAll('[0-9]+', 2) == ['123', '456']",
    "s.findAll('[0-9]+', 3) == ['123', '456']",
    "s.findAll('[0-9]+', -1) == ['123', '456']",
    "s.findAll('xyz') == []",
    "s.findAll('xyz', 1) == []",
]

# ... and its errors: a constant pattern that does not compile is refused when the policy is
# created ("compile error: program instantiation failed: " + Go's error); here when compiling.
KUBERNETES_CRD_ERRORS = [
    ("s.find(')') == ''", "error parsing regexp: unexpected ): `)`"),
    ("s.findAll(')') == []", "error parsing regexp: unexpected ): `)`"),
    ("s.findAll(')', 1) == []", "error parsing regexp: unexpected ): `)`"),
]


@pytest.mark.parametrize("rule", KUBERNETES_CRD_VALID)
def test_kubernetes_crd_rules(rule: str) -> None:
    outcome = run(rule, s=STR)
    assert (outcome.stage, outcome.value) == ("value", True), outcome


@pytest.mark.parametrize(("rule", "message"), KUBERNETES_CRD_ERRORS)
def test_kubernetes_crd_errors(rule: str, message: str) -> None:
    outcome = run(rule, s=STR)
    assert (outcome.stage, outcome.message) == ("compile", message)
    # The same pattern from the data: Kubernetes' runtime wording.
    dynamic = run(rule.replace("')'", "p"), s=STR, p=")")
    assert dynamic.stage == "runtime"
    assert plain(dynamic.message) == "Illegal regex: " + message


# cost_test.go's regex expressions, and regex.go's doc examples as its code answers them (the
# doc comment says '123' and ['123', '456'] for '[0-9]*', which matches the empty string first:
# Go's FindString gives '' and FindAllString keeps the empty matches between).
KUBERNETES_EXPRESSIONS = [
    ("'abc 123 def 123'.find('123')", "123"),
    ("'abc 123 def 123'.findAll('123')", ["123", "123"]),
    ("'abc 123 def 123'.findAll('123', 1)", ["123"]),
    ("\"abc 123\".find('[0-9]*')", ""),
    ("\"abc 123\".find('[0-9]+')", "123"),
    ("\"abc 123\".find('xyz')", ""),
    ("\"123 abc 456\".findAll('[0-9]*')", ["123", "", "", "", "", "456"]),
    ("\"123 abc 456\".findAll('[0-9]*', 1)", ["123"]),
    ("\"123 abc 456\".findAll('[0-9]+')", ["123", "456"]),
    ("\"123 abc 456\".findAll('xyz')", []),
]


@pytest.mark.parametrize(("expression", "expected"), KUBERNETES_EXPRESSIONS)
def test_kubernetes_expressions(expression: str, expected: object) -> None:
    outcome = run(expression)
    assert (outcome.stage, outcome.value) == ("value", expected)


# Go's findTests (regexp/find_test.go): pattern, text, max, the byte spans of the whole matches.
# (The cases whose text is not UTF-8 are left out: a CEL string cannot hold such bytes.)
GO_FIND_TESTS: list[tuple[str, str, int, list[tuple[int, int]]]] = [
    ("", "", -1, [(0, 0)]),
    ("^abcdefg", "abcdefg", -1, [(0, 7)]),
    ("a+", "baaab", -1, [(1, 4)]),
    ("a", "bababaab", -1, [(1, 2), (3, 4), (5, 6), (6, 7)]),
    ("a", "bababaab", 0, []),
    ("a", "bababaab", 1, [(1, 2)]),
    ("a", "bababaab", 2, [(1, 2), (3, 4)]),
    ("a", "bababaab", 3, [(1, 2), (3, 4), (5, 6)]),
    ("a", "bababaab", 4, [(1, 2), (3, 4), (5, 6), (6, 7)]),
    ("a", "bababaab", 5, [(1, 2), (3, 4), (5, 6), (6, 7)]),
    ("abcd..", "abcdef", -1, [(0, 6)]),
    ("a", "a", -1, [(0, 1)]),
    ("x", "y", -1, []),
    ("b", "abc", -1, [(1, 2)]),
    (".", "a", -1, [(0, 1)]),
    (".*", "abcdef", -1, [(0, 6)]),
    ("^", "abcde", -1, [(0, 0)]),
    ("$", "abcde", -1, [(5, 5)]),
    ("^abcd$", "abcd", -1, [(0, 4)]),
    ("^bcd'", "abcdef", -1, []),
    ("^abcd$", "abcde", -1, []),
    ("a*", "baaab", -1, [(0, 0), (1, 4), (5, 5)]),
    ("[a-z]+", "abcd", -1, [(0, 4)]),
    ("[^a-z]+", "ab1234cd", -1, [(2, 6)]),
    (r"[a\-\]z]+", "az]-bcz", -1, [(0, 4), (6, 7)]),
    (r"[^\n]+", "abcd\n", -1, [(0, 4)]),
    ("[日本語]+", "日本語日本語", -1, [(0, 18)]),
    ("日本語+", "日本語", -1, [(0, 9)]),
    ("日本語+", "日本語語語語", -1, [(0, 18)]),
    ("()", "", -1, [(0, 0)]),
    ("(a)", "a", -1, [(0, 1)]),
    ("(.)(.)", "日a", -1, [(0, 4)]),
    ("(.*)", "", -1, [(0, 0)]),
    ("(.*)", "abcd", -1, [(0, 4)]),
    ("(..)(..)", "abcd", -1, [(0, 4)]),
    ("(([^xyz]*)(d))", "abcd", -1, [(0, 4)]),
    ("((a|b|c)*(d))", "abcd", -1, [(0, 4)]),
    ("(((a|b|c)*)(d))", "abcd", -1, [(0, 4)]),
    (r"\a\f\n\r\t\v", "\a\f\n\r\t\v", -1, [(0, 6)]),
    (r"[\a\f\n\r\t\v]+", "\a\f\n\r\t\v", -1, [(0, 6)]),
    ("a*(|(b))c*", "aacc", -1, [(0, 4)]),
    ("(.*).*", "ab", -1, [(0, 2)]),
    ("[.]", ".", -1, [(0, 1)]),
    ("/$", "/abc/", -1, [(4, 5)]),
    ("/$", "/abc", -1, []),
    (".", "abc", -1, [(0, 1), (1, 2), (2, 3)]),
    ("(.)", "abc", -1, [(0, 1), (1, 2), (2, 3)]),
    (".(.)", "abcd", -1, [(0, 2), (2, 4)]),
    ("ab*", "abbaab", -1, [(0, 3), (3, 4), (4, 6)]),
    ("a(b*)", "abbaab", -1, [(0, 3), (3, 4), (4, 6)]),
    ("ab$", "cab", -1, [(1, 3)]),
    ("axxb$", "axxcb", -1, []),
    ("data", "daXY data", -1, [(5, 9)]),
    ("da(.)a$", "daXY data", -1, [(5, 9)]),
    ("zx+", "zzx", -1, [(1, 3)]),
    ("ab$", "abcab", -1, [(3, 5)]),
    ("(aa)*$", "a", -1, [(1, 1)]),
    ("(?:.|(?:.a))", "", -1, []),
    ("(?:A(?:A|a))", "Aa", -1, [(0, 2)]),
    ("(?:A|(?:A|a))", "a", -1, [(0, 1)]),
    ("(a){0}", "", -1, [(0, 0)]),
    ("(?-s)(?:(?:^).)", "\n", -1, []),
    ("(?s)(?:(?:^).)", "\n", -1, [(0, 1)]),
    ("(?:(?:^).)", "\n", -1, []),
    (r"\b", "x", -1, [(0, 0), (1, 1)]),
    (r"\b", "xx", -1, [(0, 0), (2, 2)]),
    (r"\b", "x y", -1, [(0, 0), (1, 1), (2, 2), (3, 3)]),
    (r"\b", "xx yy", -1, [(0, 0), (2, 2), (3, 3), (5, 5)]),
    (r"\B", "x", -1, []),
    (r"\B", "xx", -1, [(1, 1)]),
    (r"\B", "x y", -1, []),
    (r"\B", "xx yy", -1, [(1, 1), (4, 4)]),
    ("(|a)*", "aa", -1, [(0, 0), (1, 1), (2, 2)]),
    ("0A|0[aA]", "0a", -1, [(0, 2)]),
    ("0[aA]|0A", "0a", -1, [(0, 2)]),
    (r"[^\S\s]", "abcd", -1, []),
    (r"[^\S[:space:]]", "abcd", -1, []),
    (r"[^\D\d]", "abcd", -1, []),
    (r"[^\D[:digit:]]", "abcd", -1, []),
    (r"(?i)\W", "x", -1, []),
    (r"(?i)\W", "k", -1, []),
    (r"(?i)\W", "s", -1, []),
    (
        r"\!\"\#\$\%\&\'\(\)\*\+\,\-\.\/\:\;\<\=\>\?\@\[\\\]\^\_\{\|\}\~",
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_{|}~",
        -1,
        [(0, 31)],
    ),
    (
        r"[\!\"\#\$\%\&\'\(\)\*\+\,\-\.\/\:\;\<\=\>\?\@\[\\\]\^\_\{\|\}\~]+",
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_{|}~",
        -1,
        [(0, 31)],
    ),
    ("\\`", "`", -1, [(0, 1)]),
    ("[\\`]+", "`", -1, [(0, 1)]),
    (".", "qwertyuiopasdfghjklzxcvbnm1234567890", -1, [(i, i + 1) for i in range(36)]),
]


@pytest.mark.parametrize(("pattern", "text", "limit", "spans"), GO_FIND_TESTS)
def test_go_find_tests(pattern: str, text: str, limit: int, spans: list[tuple[int, int]]) -> None:
    data = text.encode()
    expected = [data[a:b].decode() for a, b in spans]
    found = run("t.findAll(p, n)", t=text, p=pattern, n=limit)
    assert (found.stage, found.value) == ("value", expected)
    first = run("t.find(p)", t=text, p=pattern)
    assert first.value == (expected[0] if expected and limit != 0 else first.value)
    if limit == -1:
        assert run("t.findAll(p)", t=text, p=pattern).value == expected
        assert first.value == (expected[0] if expected else "")


# Go's badRe (regexp/all_test.go) and other refusals: Go's words, which Kubernetes shows.
GO_REFUSED = [
    ("*", "missing argument to repetition operator: `*`"),
    ("+", "missing argument to repetition operator: `+`"),
    ("?", "missing argument to repetition operator: `?`"),
    ("(abc", "missing closing ): `(abc`"),
    ("abc)", "unexpected ): `abc)`"),
    ("x[a-z", "missing closing ]: `[a-z`"),
    ("[z-a]", "invalid character class range: `z-a`"),
    ("abc\\", "trailing backslash at end of expression: ``"),
    ("a**", "invalid nested repetition operator: `**`"),
    ("a*+", "invalid nested repetition operator: `*+`"),
    ("\\x", "invalid escape sequence: `\\x`"),
    ("\\pL" * 27000, "expression too large: `" + "\\pL" * 27000 + "`"),
    ("x{1001}", "invalid repeat count: `{1001}`"),
    ("(?:x{1000}){2}", "invalid repeat count: `{2}`"),
    ("a{2}{2}", "invalid nested repetition operator: `{2}{2}`"),
    ("(?P<n!>a)", "invalid named capture: `(?P<n!>`"),
    ("[[:foo:]]", "invalid character class range: `[:foo:]`"),
    ("\\p{Foo}", "invalid character class range: `\\p{Foo}`"),
    ("(?i", "invalid or unsupported Perl syntax: `(?i`"),
    # What Python's `re` would take, and Go's RE2 syntax does not.
    ("(a)\\1", "invalid escape sequence: `\\1`"),
    ("(?=a)", "invalid or unsupported Perl syntax: `(?=`"),
    # Go reads "(?<" as a named group: no '>' after it, all the rest is the bad name.
    ("(?<!a)b", "invalid named capture: `(?<!a)b`"),
    ("(?<=a)>b", "invalid named capture: `(?<=a)>`"),
    ("(?P=n)", "invalid or unsupported Perl syntax: `(?P`"),
    ("a\\Z", "invalid escape sequence: `\\Z`"),
    ("(?#c)", "invalid or unsupported Perl syntax: `(?#`"),
    # C++ RE2 takes \C (any byte), Go does not.
    ("a\\C", "invalid escape sequence: `\\C`"),
    ("[\\C]", "invalid escape sequence: `\\C`"),
]


@pytest.mark.parametrize(("pattern", "why"), GO_REFUSED, ids=lambda v: str(v)[:20])
def test_go_refused(pattern: str, why: str) -> None:
    message = "error parsing regexp: " + why
    assert regex.check_pattern(pattern) == message
    outcome = run("'x'.find(p)", p=pattern)
    assert (outcome.stage, plain(outcome.message)) == ("runtime", "Illegal regex: " + message)


GO_ACCEPTED = [
    r"\Q\C\E",  # \C inside \Q...\E is two literal characters
    r"\\C",
    r"a{,5}",  # not a repetition: literal braces, in both
    r"(?P<name>x)(?<other>y)",
    r"(?i)k",
    r"\p{Greek}\P{L}\pN",
    r"[[:alpha:]-z]",
    r"x{1000}",
    r"(?U)a+",
    r"(?s:.)",
    r"\x{10FFFF}",
    r"[^\x00-\x{10FFFF}]",
]


@pytest.mark.parametrize("pattern", GO_ACCEPTED)
def test_go_accepted(pattern: str) -> None:
    assert regex.check_pattern(pattern) is None


def test_semantics_are_go_regexps() -> None:
    cases = {
        # Leftmost-first, not leftmost-longest.
        "'abcd'.find('a|ab')": "a",
        "'abcd'.find('ab|a')": "ab",
        # $ is the end of the text only (no Perl-style final newline), ^ its start.
        "'ab\\n'.find('b$')": "",
        "'a\\nb'.findAll('(?m)^.')": ["a", "b"],
        "'a\\nb'.findAll('^.')": ["a"],
        # . does not match a newline unless (?s); \\s, \\d, \\w and \\b are ASCII.
        "'a\\nb'.find('a.b')": "",
        "'a\\nb'.find('(?s)a.b')": "a\nb",
        "'١٢٣ 123'.find('\\\\d+')": "123",
        "'é'.find('\\\\w')": "",
        "'é'.find('\\\\pL')": "é",
        # Case folding is Unicode's simple folding (the Kelvin sign folds to k).
        "'\\u212a'.find('(?i)k')": "\u212a",
        # Matches are characters, not bytes.
        "'日本語'.findAll('.')": ["日", "本", "語"],
        "'日本語'.findAll('')": ["", "", "", ""],
        "'héllo'.findAll('l*')": ["", "", "ll", ""],
        # A very large limit is no limit.
        "'aaa'.findAll('a', 9223372036854775807)": ["a", "a", "a"],
        "'aaa'.findAll('a', -9223372036854775808)": ["a", "a", "a"],
    }
    for expression, expected in cases.items():
        outcome = run(expression)
        assert (outcome.stage, outcome.value) == ("value", expected), expression


def test_catastrophic_backtracking_pattern_runs_in_linear_time() -> None:
    # (a+)+$ against 'aaa...a!' makes a backtracking engine (Python's `re`, PCRE) try every way
    # of splitting the a's between the two loops: 2^n steps; at n = 30 that is already minutes,
    # at a mebibyte it would never end. RE2 answers in one pass over the text, so the cases
    # below finishing at all is the proof (no clock is read: a backtracking engine would not
    # return, and the suite's own timeout would report it).
    for n in (30, 1000, 1 << 20):
        text = "a" * n + "!"
        assert run("t.find('(a+)+$')", t=text).value == ""
        assert run("t.find(p)", t=text, p="(a|a)*b").value == ""
        assert run("t.findAll('(a*)*$')", t=text).value == [""]
    assert run("t.find('(a+)+!')", t="a" * (1 << 20) + "!").value == "a" * (1 << 20) + "!"


def test_constant_patterns_refused_at_their_offset() -> None:
    compiled = ENVIRONMENTS.compile((), "'x'.find('a') == 'x'.findAll('(', 2)[0]")
    assert [offset for offset, _ in compiled.bad_constants] == [29]
    assert compiled.bad_constants[0][1] == "error parsing regexp: missing closing ): `(`"
    # The receiver is the text, not a pattern: ')'.find('x') is fine.
    assert ENVIRONMENTS.compile((), "')'.find('x') == ''").bad_constants == ()


MEBIBYTE = 1 << 20
HOSTILE_PATTERNS = [
    "a" * MEBIBYTE,
    "(" * MEBIBYTE,
    ")" * MEBIBYTE,
    "\\" * MEBIBYTE,
    "\\pL" * (MEBIBYTE // 3),
    "[" * MEBIBYTE,
    "a|" * (MEBIBYTE // 2),
    "(?i)" + "k" * MEBIBYTE,
    "." * MEBIBYTE,
    "x{1000}" * (MEBIBYTE // 7),
    "[^a]" * (MEBIBYTE // 4),
    "\\Q" + "*" * MEBIBYTE,
]


@pytest.mark.parametrize("pattern", HOSTILE_PATTERNS, ids=lambda p: f"{p[:8]!r}x{len(p)}")
def test_a_mebibyte_pattern_returns(pattern: str) -> None:
    outcome = run("t.findAll(p)", t="a" * 1000, p=pattern)
    assert outcome.stage in ("value", "runtime")


def test_a_mebibyte_text_returns() -> None:
    text = "ab" * (MEBIBYTE // 2)
    assert len(run("t.findAll('')", t=text).value) == MEBIBYTE + 1
    assert len(run("t.findAll('b')", t=text).value) == MEBIBYTE // 2
    assert run("t.find('(a|b)*c')", t=text).value == ""
    assert run("t.findAll('[ab]+')", t=text).value == [text]


def test_go_size_bound() -> None:
    # Go's maxSize is 3,355,443 instructions: 3,356 times x{1000} is past it, 3,355 is not
    # (RE2 then compiles it, within its own budget).
    assert regex.check_pattern("x{1000}" * 3356) == (
        "error parsing regexp: expression too large: `" + "x{1000}" * 3356 + "`"
    )
    assert regex.check_pattern("\\{1000}" * 5000) is None  # escaped braces are no repetition
    assert regex.check_pattern("\\Qx{1000}\\E" * 5000) is None  # nor quoted ones


def test_through_the_evaluator() -> None:
    # The conditions of a policy, run in the evaluating child (its memory capped) as a version's
    # tests run: Kubernetes' libraries are there, and a pattern from the resource that would
    # make a backtracking engine run for ever is answered.
    from policy_checks.checks.conditions import compile_conditions
    from policy_checks.evaluator import ERROR, PASS, Evaluator
    from policy_checks.loading import load_yaml

    conditions = {
        "digits": "resource.name.find('[0-9]+') == '42'",
        "hostile": "resource.text.find(resource.pattern) == ''",
        "bad-pattern": "resource.name.find(resource.bad) == ''",
        "address": "cidr('10.0.0.0/8').containsIP(resource.ip) && isIP(resource.ip)",
        "url": "url(resource.url).getHostname() == 'example.com'",
        "url-query": "url(resource.url).getQuery()['a'] == ['1', '2']",
    }
    rules = "".join(
        f"    - id: {rid}\n      description: d\n      condition: {text!r}\n"
        for rid, text in conditions.items()
    )
    text = (
        "apiVersion: policyhub/v1\nkind: PolicyDefinition\nspec:\n  severity: low\n"
        f"  rules:\n{rules}"
    )
    document = load_yaml(text.encode(), "p.yaml")
    policy, findings = compile_conditions(document.value, "p.yaml", document.source, lambda: text)
    assert policy is not None, [f.render() for f in findings]
    resource = {
        "name": "item-42",
        "text": "a" * 100_000 + "!",
        "pattern": "(a+)+$",
        "bad": "(",
        "ip": "10.1.2.3",
        "url": "https://example.com:8443/p?a=1&a=2",
    }
    evaluator = Evaluator(timeout=10.0)
    try:
        results = {r.rule: (r.result, r.message) for r in evaluator.evaluate(policy, {}, resource)}
    finally:
        evaluator.close()
    assert results["digits"] == (PASS, None)
    assert results["hostile"] == (PASS, None)
    assert results["bad-pattern"][0] == ERROR
    assert "Illegal regex: error parsing regexp: missing closing ): `(`" in str(
        results["bad-pattern"][1]
    )
    assert results["address"] == (PASS, None)
    assert results["url"] == (PASS, None)
    assert results["url-query"] == (PASS, None)
