"""Kubernetes' format library (policy_checks/cel/library/format.py) through the whole environment:
the cases of k8s.io/apiserver `pkg/cel/library/format_test.go`, the good and bad values of
apimachinery's validation tests, kube-openapi's strfmt formats, Go's url.ParseRequestURI errors,
the optional results, and hostile inputs.
"""

from __future__ import annotations

import json

import pytest

from policy_checks.cel.environment import run_expression
from policy_checks.cel.library.format import FORMATS
from policy_checks.cel.library.gotext import quote
from tests.celcases import value

pytestmark = pytest.mark.fast

MIB = 1 << 20

LABEL_ERROR = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
SUBDOMAIN_ERROR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS1035_ERROR = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
NAME_PART_ERROR = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_ERROR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def errors(format_name: str, text: str) -> list[str] | None:
    """What `format.<name>().validate(text)` gives: None for optional.none(), else the list."""
    if value(f"format.{format_name}().validate(s).hasValue()", s=text) is False:
        return None
    found = value(f"format.{format_name}().validate(s).value()", s=text)
    assert isinstance(found, list)
    return found


# format_test.go TestFormat: expression, and the errors of the optional (None for none).
KUBERNETES = [
    ("dns1123Label", "my-label-name", None),
    ("dns1123Subdomain", "apiextensions.k8s.io", None),
    ("qualifiedName", "apiextensions.k8s.io/v1beta1", None),
    ("dns1123LabelPrefix", "my-label-prefix-", None),
    ("dns1123SubdomainPrefix", "mysubdomain.prefix.-", None),
    ("dns1035LabelPrefix", "my-label-prefix-", None),
    ("uri", "http://example.com", None),
    ("uuid", "123e4567-e89b-12d3-a456-426614174000", None),
    ("byte", "aGVsbG8=", None),
    ("date", "2021-01-01", None),
    ("datetime", "2021-01-01T00:00:00Z", None),
    ("dns1123Label", "contains a space", [LABEL_ERROR]),
    ("dns1123Subdomain", "contains a space", [SUBDOMAIN_ERROR]),
    ("dns1035Label", "contains a space", [DNS1035_ERROR]),
    ("qualifiedName", "contains a space", [NAME_PART_ERROR]),
    ("dns1123LabelPrefix", "contains a space-", [LABEL_ERROR]),
    ("dns1123SubdomainPrefix", "contains a space-", [SUBDOMAIN_ERROR]),
    ("dns1035LabelPrefix", "contains a space-", [DNS1035_ERROR]),
    ("dns1123Label", "my-label-name", None),
    ("dns1123Subdomain", "example.com", None),
    ("dns1035Label", "my-label-name", None),
    ("qualifiedName", "my.name", None),
    ("byte", "aGVsbG8=", None),
    ("byte", "aGVsbG8", ["invalid base64"]),
    ("date", "2020-01-01", None),
    ("date", "2020-01-32", ["invalid date"]),
    ("datetime", "2020-01-01T00:00:00Z", None),
    ("datetime", "2020-01-32T00:00:00Z", ["invalid datetime"]),
    ("labelValue", "my-cool-label-Value", None),
    ("labelValue", "my-cool-label-Value!!\n\n!!!", [LABEL_VALUE_ERROR]),
]


@pytest.mark.parametrize(("name", "text", "expected"), KUBERNETES)
def test_kubernetes_cases(name: str, text: str, expected: list[str] | None) -> None:
    assert errors(name, text) == expected
    # The same through format.named().
    named = f"format.named('{name}').value().validate(s)"
    assert value(f"{named}.hasValue()", s=text) is (expected is not None)


def test_the_optional_is_kubernetes_optional() -> None:
    assert value("format.dns1123Label().validate('my-name') == optional.none()")
    assert value(
        f"format.dns1123Label().validate('a b') == optional.of([{json.dumps(LABEL_ERROR)}])"
    )
    assert value("format.dns1123Label().validate('a b').orValue([]).size()") == 1
    assert value("format.dns1123Label().validate('ok').orValue(['none']) == ['none']")
    assert value("format.named('unknown').hasValue()") is False
    assert value("format.named('dns1123subdomain').hasValue()") is False  # names are exact
    assert value("format.named('uri').or(optional.of(format.uuid())).value() == format.uri()")
    assert value("type(format.uuid()) == kubernetes.NamedFormat")
    # A message expression's usual shape.
    text = value("format.dns1123Label().validate('A_B').value().join('\\n')")
    assert text == LABEL_ERROR
    assert value("['a', 'B'].map(n, format.dns1123Label().validate(n).hasValue()) == [false, true]")


@pytest.mark.parametrize("left", sorted(FORMATS))
def test_every_named_format_is_itself_and_no_other(left: str) -> None:
    assert value(f"format.named('{left}').hasValue()")
    assert value(f"format.named('{left}').value() == format.{left}()")
    others = [f"format.{right}()" for right in sorted(FORMATS) if right != left]
    assert value(f"[{', '.join(others)}].all(f, f != format.{left}())")


# apimachinery validation_test.go / content/kube_test.go: good and bad values.
GOOD = {
    "dns1123Label": ["a", "ab", "abc", "a1", "a-1", "a--1--2--b", "0", "01", "012", "1a", "1-a",
                     "1--a--b--2", "a" * 63],
    "dns1123Subdomain": ["a", "a.a", "a--1--2--b.1", "0.1", "a.b.c.d.e", "1.2.3.4.5",
                         "11.22.33.44.55", "a" * 253],
    "dns1035Label": ["a", "ab", "abc", "a1", "a-1", "a--1--2--b", "a" * 63],
    "qualifiedName": ["simple", "now-with-dashes", "1-starts-with-num", "1234", "simple/simple",
                      "now.with.dots/simple", "1-num.2-num/3-num", "1234/5678", "1.2.3.4/5678",
                      "Uppercase_Is_OK_123", "example.com/Uppercase_Is_OK_123",
                      "requests.storage-foo", "a" * 63, "a" * 253 + "/" + "b" * 63],
    "labelValue": ["simple", "now-with-dashes", "1-starts-with-num", "end-with-num-1", "1234",
                   "a" * 63, ""],
}  # fmt: skip
BAD = {
    "dns1123Label": ["", "A", "aBc", "1-A", "-", "a-", "-a", "_", "a_b", ".", "a.", ".a", "a.b",
                     " ", "a b", "a" * 64, "a\n"],
    "dns1123Subdomain": ["", "A", "-", "a-", "a..b", ".a", "a.", "A.a", "a.B.c.d.e", "a@b", "a,b",
                         "a:b", "a%b", "a?b", "a$b", "a" * 254, "a\n"],
    "dns1035Label": ["0", "01", "1a", "1-a", "", "A", "-", "a-", "_", "a.b", " ", "a" * 64],
    "qualifiedName": ["nospecialchars%^=@", "cantendwithadash-", "-cantstartwithadash-",
                      "only/one/slash", "Example.com/abc", "example_com/abc", "example.com/",
                      "/simple", "a" * 64, "a" * 254 + "/abc"],
    "labelValue": ["nospecialchars%^=@", "Tama-nui-te-rā.is.Māori.sun", "\\backslashes\\are\\bad",
                   "-starts-with-dash", "ends-with-dash-", ".starts.with.dot", "ends.with.dot.",
                   "a" * 64, "a\n"],
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "text"), [(name, text) for name, texts in GOOD.items() for text in texts]
)
def test_good_values(name: str, text: str) -> None:
    assert errors(name, text) is None


@pytest.mark.parametrize(
    ("name", "text"), [(name, text) for name, texts in BAD.items() for text in texts]
)
def test_bad_values(name: str, text: str) -> None:
    assert errors(name, text)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("dns1123Label", "a.b", ["must not contain dots"]),
        ("dns1123Label", "a" * 64, ["must be no more than 63 characters"]),
        ("dns1123Label", "a." + "b" * 62, ["must be no more than 63 characters",
                                          "must not contain dots"]),
        ("dns1035Label", "a" * 64, ["must be no more than 63 characters"]),
        ("dns1123Subdomain", "a" * 254, ["must be no more than 253 characters"]),
        # content's messages count bytes.
        ("labelValue", "a" * 64, ["must be no more than 63 bytes"]),
        ("qualifiedName", "a" * 64, ["name part must be no more than 63 bytes"]),
        ("qualifiedName", "/a", ["prefix part must be non-empty"]),
        ("qualifiedName", "a/", ["name part must be non-empty", NAME_PART_ERROR]),
        ("qualifiedName", "a" * 254 + "/b", ["prefix part must be no more than 253 bytes"]),
        ("qualifiedName", "A/b", ["prefix part " + SUBDOMAIN_ERROR]),
        (
            "qualifiedName",
            "a/b/c",
            [
                "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and "
                "must start and end with an alphanumeric character (e.g. 'MyName',  or "
                "'my.name',  or '123-abc', regex used for validation is "
                "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain "
                "prefix and '/' (e.g. 'example.com/MyName')"
            ],
        ),
        # maskTrailingDash drops the dash and the byte before it: "ab-" is checked as "aa",
        # "a.-" as "a" (valid), "é-" as half a character and "a" (invalid).
        ("dns1123LabelPrefix", "ab-", None),
        ("dns1123LabelPrefix", "a.-", None),
        ("dns1123LabelPrefix", "a_-", None),
        ("dns1123LabelPrefix", "é-", [LABEL_ERROR]),
        ("dns1123LabelPrefix", "-", [LABEL_ERROR]),
        ("dns1035LabelPrefix", "1-", None),  # "a"
        ("dns1123SubdomainPrefix", "a..-", None),  # "a.a"
    ],
)  # fmt: skip
def test_exact_messages(name: str, text: str, expected: list[str] | None) -> None:
    assert errors(name, text) == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("http://example.com", None),
        ("/absolute/path", None),
        ("*", None),
        ("mailto:a@b", None),  # opaque
        ("http://[::1]:8080/x", None),
        ("http://[fe80::1%25en0]/", None),
        ("http://user:pass@host:80/p?q#f", None),
        ("", "empty url"),
        ("example.com", "invalid URI for request"),
        ("relative/path", "invalid URI for request"),
        ("://x", "missing protocol scheme"),
        ("http://a b/", 'invalid character " " in host name'),
        ("http://x/%zz", 'invalid URL escape "%zz"'),
        ("http://x/%zé", 'invalid URL escape "%z\\xc3"'),
        ("http://host:abc/", 'invalid port ":abc" after host'),
        # Go 1.26: colons in a host are strict, an IP literal is checked and only at the start.
        ("http://::1/", 'invalid port "::1" after host'),
        ("http://localhost:80:80/", 'invalid port ":80:80" after host'),
        ("http://[1.2.3.4]/", "invalid IP-literal"),
        ("http://a[::1]/", "invalid IP-literal"),
        ("http://[v1.x]/", 'invalid host: ParseAddr("v1.x"): unexpected character (at "v1.x")'),
        ("http://[::1/", "missing ']' in host"),
        ("http://[::1]x/", 'invalid port "x" after host'),
        (
            "http://[1::2::3]/",
            'invalid host: ParseAddr("1::2::3"): multiple :: in address (at ":3")',
        ),
        ("https://ü@example.com/", "net/url: invalid userinfo"),
        ("http://x\x7f", "net/url: invalid control character in URL"),
    ],
)  # fmt: skip
def test_uri_is_go_parse_request_uri(text: str, error: str | None) -> None:
    found = errors("uri", text)
    if error is None:
        assert found is None
    else:
        assert found == [f"parse {quote(text)}: {error}"]


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("http://x", '"http://x"'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("\x7f\n\t\x00", '"\\x7f\\n\\t\\x00"'),
        ("é\u00ad\U0001f600", '"é\\u00ad\U0001f600"'),  # printable as is, a format character not
        (b"%z\xc3", '"%z\\xc3"'),  # a byte that is not UTF-8
    ],
)
def test_go_quote(text: str | bytes, quoted: str) -> None:
    assert quote(text) == quoted


@pytest.mark.parametrize(
    ("name", "text", "valid"),
    [
        ("uuid", "123E4567E89B12D3A456426614174000", True),
        ("uuid", "123e4567-e89b-12d3-a456-42661417400", False),
        ("uuid", "123e4567-e89b-12d3-a456-426614174000\n", False),
        ("byte", "", False),
        ("byte", "aGk=", True),
        ("byte", "aGVsbG8gd29ybGQ=\n", False),
        ("byte", "a-b_", False),  # the standard alphabet only
        ("date", "2020-02-29", True),
        ("date", "2021-02-29", False),
        ("date", "0000-02-29", True),  # Go's proleptic year 0 is a leap year
        ("date", "2020-1-01", False),
        ("date", "2020-13-01", False),
        ("date", "2020-01-01 ", False),
        ("datetime", "1972-12-31T23:59:59.999Z", True),
        ("datetime", "1972-12-31t23:59:59+01:00", True),
        ("datetime", "1972-12-31T24:40:00.000Z", False),
        ("datetime", "1972-12-31T23:63:00.000Z", False),
        ("datetime", "1972-12-31T23:59:60.000Z", False),
        ("datetime", "1972-12-31Tx", False),
        ("datetime", "zorgTx", False),
        ("datetime", "2014-12-15T08:00:00", False),  # a zone is required
        # strfmt splits on every "t" and reads the second part only.
        ("datetime", "2020-01-01T00:00:00ZT garbage", True),
        ("datetime", "2020-01-01T00:00:00é5Z", True),  # its `.` is any character
    ],
)
def test_strfmt_formats(name: str, text: str, valid: bool) -> None:
    assert (errors(name, text) is None) is valid


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize(
    "text",
    ["a" * MIB, "-" * MIB, "a." * (MIB // 2), "/" * MIB, "0" * MIB, "é" * MIB, "1972-12-31T" * MIB],
    ids=lambda t: f"{t[:4]}...{len(t)}",
)
def test_hostile_values_return(name: str, text: str) -> None:
    outcome = run_expression(f"format.{name}().validate(s).hasValue()", {"s": text})
    assert outcome.stage == "value", outcome
