"""Kubernetes' format library: `format.named()`, one `format.<name>()` a named format, and
`<NamedFormat>.validate()`, ported from k8s.io/apiserver `pkg/cel/library/format.go` and
`pkg/cel/format.go` (commit 24a394e516bf), with the validations it names ported word for word:
k8s.io/apimachinery `pkg/api/validation/generic.go`, `pkg/util/validation/validation.go` and
`pkg/api/validate/content` (commit eed236ceee2c); k8s.io/kube-openapi
`pkg/validation/strfmt` (commit d427ff9ee9ad) for uuid, byte, date and datetime; Go's
`url.ParseRequestURI` for uri (`policy_checks.cel.library.urls`).

`format.named()` and `validate()` return optionals, which a Python implementation cannot make:
each returns the value or its zero value (an empty list, a format without a name) and the program
wraps the call in `optional.ofNonZeroValue` (`policy_checks.cel.types`), which is exactly
Kubernetes' none for "no such format" and for "no errors". A format's value is its Kubernetes
name (`DNS1123Label`), which is also what its equality compares.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from policy_checks.cel import messages
from policy_checks.cel.library import Function, Library, function, member
from policy_checks.cel.library.urls import URLError, parse_request_uri

NAMED_FORMAT = "kubernetes.NamedFormat"

# -- the validations, apimachinery's word for word ----------------------------------------------


def _regex_error(message: str, regex: str, *examples: str) -> str:
    """validation.RegexError (content.RegexError is the same text)."""
    if not examples:
        return f"{message} (regex used for validation is '{regex}')"
    quoted = "".join(f"{' or ' if i else ''}'{e}', " for i, e in enumerate(examples))
    return f"{message} (e.g. {quoted}regex used for validation is '{regex}')"


def _max_len_characters(length: int) -> str:
    return f"must be no more than {length} characters"  # validation.MaxLenError


def _max_len_bytes(length: int) -> str:
    return f"must be no more than {length} bytes"  # content.MaxLenError


_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + "(\\." + _DNS1123_LABEL + ")*"
_DNS1123_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character"
)
_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)
_LABEL_KEY = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_KEY_MESSAGE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_LABEL_VALUE = "(" + _LABEL_KEY + ")?"
_LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character"
)


def _matcher(regex: str) -> Callable[[bytes], bool]:
    """Go's `^regex$` over a string's bytes: every class here is ASCII, which a byte of a
    non-ASCII rune (or of a string a mask cut in two) never is, as in Go; `fullmatch`, since
    Python's `$` would also match before a final newline."""
    compiled = re.compile(regex.encode())
    return lambda value: compiled.fullmatch(value) is not None


_is_dns1123_label = _matcher(_DNS1123_LABEL)
_is_dns1123_subdomain = _matcher(_DNS1123_SUBDOMAIN)
_is_dns1035_label = _matcher(_DNS1035_LABEL)
_is_label_key = _matcher(_LABEL_KEY)
_is_label_value = _matcher(_LABEL_VALUE)


def is_dns1123_label(value: bytes) -> list[str]:
    """validation.IsDNS1123Label."""
    errors = []
    if len(value) > 63:
        errors.append(_max_len_characters(63))
    if not _is_dns1123_label(value):
        if _is_dns1123_subdomain(value):
            errors.append("must not contain dots")
        else:
            errors.append(
                _regex_error(_DNS1123_LABEL_MESSAGE, _DNS1123_LABEL, "my-name", "123-abc")
            )
    return errors


def is_dns1123_subdomain(value: bytes, max_len: Callable[[int], str]) -> list[str]:
    """validation.IsDNS1123Subdomain (`max_len` _max_len_characters) and
    content.IsDNS1123Subdomain (_max_len_bytes): the same but for that word."""
    errors = []
    if len(value) > 253:
        errors.append(max_len(253))
    if not _is_dns1123_subdomain(value):
        errors.append(_regex_error(_DNS1123_SUBDOMAIN_MESSAGE, _DNS1123_SUBDOMAIN, "example.com"))
    return errors


def is_dns1035_label(value: bytes) -> list[str]:
    """validation.IsDNS1035Label."""
    errors = []
    if len(value) > 63:
        errors.append(_max_len_characters(63))
    if not _is_dns1035_label(value):
        errors.append(_regex_error(_DNS1035_LABEL_MESSAGE, _DNS1035_LABEL, "my-name", "abc-123"))
    return errors


def is_label_key(value: bytes) -> list[str]:
    """content.IsLabelKey (validation.IsQualifiedName)."""
    errors: list[str] = []
    parts = value.split(b"/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors += ["prefix part " + m for m in is_dns1123_subdomain(prefix, _max_len_bytes)]
    else:
        return [
            "a valid label key "
            + _regex_error(_LABEL_KEY_MESSAGE, _LABEL_KEY, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part " + _max_len_bytes(63))
    if not _is_label_key(name):
        errors.append(
            "name part "
            + _regex_error(_LABEL_KEY_MESSAGE, _LABEL_KEY, "MyName", "my.name", "123-abc")
        )
    return errors


def is_label_value(value: bytes) -> list[str]:
    """content.IsLabelValue (validation.IsValidLabelValue)."""
    errors = []
    if len(value) > 63:
        errors.append(_max_len_bytes(63))
    if not _is_label_value(value):
        errors.append(
            _regex_error(_LABEL_VALUE_MESSAGE, _LABEL_VALUE, "MyValue", "my_value", "12345")
        )
    return errors


def _mask_trailing_dash(name: bytes) -> bytes:
    """generic.go's maskTrailingDash, as it is: it drops the two last bytes, not only the dash,
    and may cut a UTF-8 character in two."""
    if len(name) > 1 and name.endswith(b"-"):
        return name[:-2] + b"a"
    return name


# -- strfmt's formats ---------------------------------------------------------------------------

_UUID = re.compile(
    "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
_BASE64 = re.compile(
    "(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})"
)
# strfmt's DateTimePattern; its `.` is any character but a newline, as Go's.
_DATE_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))")


def _go_lower(text: str) -> str:
    """strings.ToLower: each rune's simple lower case (Python's own maps U+0130 to two)."""
    return text.lower() if text.isascii() else "".join(_lower_rune(c) for c in text)


def _lower_rune(char: str) -> str:
    lowered = char.lower()
    return lowered if len(lowered) == 1 else "i"  # U+0130 is the only one of its kind


def is_date_time(text: str) -> bool:
    """strfmt.IsDateTime, as it is: only the part after the first "t" (in any case) is matched,
    whatever follows a second one."""
    if len(text.encode()) < 4:
        return False
    parts = _go_lower(text).split("t")
    if len(parts) < 2 or not parses_as_full_date(parts[0]):
        return False
    match = _DATE_TIME.fullmatch(parts[1])
    if match is None:
        return False
    hours, minutes, seconds = match.group(1, 2, 3)
    return hours <= "23" and minutes <= "59" and seconds <= "59"


# -- the named formats (format.go's ConstantFormats) --------------------------------------------


def _bytes_of(
    validate: Callable[[bytes], list[str]], prefix: bool = False
) -> Callable[[str], list[str]]:
    """A validation of Go's bytes, for a string (with maskTrailingDash first for a prefix)."""

    def run(text: str) -> list[str]:
        raw = text.encode()
        return validate(_mask_trailing_dash(raw) if prefix else raw)

    return run


def _uri(text: str) -> list[str]:
    try:
        parse_request_uri(text.encode("utf-8", "surrogatepass"))
    except URLError as exc:
        return [str(exc)]
    return []


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def parses_as_full_date(text: str) -> bool:
    """Whether Go's time.Parse(RFC3339FullDate, text) succeeds: four digits of year, two of
    month (1-12) and two of day (in the month, a proleptic Gregorian year 0 being a leap year)."""
    raw = text.encode()
    if len(raw) != 10 or raw[4:5] != b"-" or raw[7:8] != b"-":
        return False
    digits = raw[:4] + raw[5:7] + raw[8:10]
    if not all(48 <= c <= 57 for c in digits):
        return False
    year, month, day = int(raw[:4]), int(raw[5:7]), int(raw[8:10])
    return 1 <= month <= 12 and 1 <= day <= _days_in(month, year)


def _uuid(text: str) -> list[str]:
    return [] if _UUID.fullmatch(text) else ["does not match the UUID format"]


def _byte(text: str) -> list[str]:
    return [] if _BASE64.fullmatch(text) else ["invalid base64"]


def _date(text: str) -> list[str]:
    return [] if parses_as_full_date(text) else ["invalid date"]


def _datetime(text: str) -> list[str]:
    return [] if is_date_time(text) else ["invalid datetime"]


def _subdomain(value: bytes) -> list[str]:
    return is_dns1123_subdomain(value, _max_len_characters)


# By the name `format.named()` takes: Kubernetes' Name of the format (what its equality compares)
# and its ValidateFunc.
FORMATS: dict[str, tuple[str, Callable[[str], list[str]]]] = {
    "dns1123Label": ("DNS1123Label", _bytes_of(is_dns1123_label)),
    "dns1123Subdomain": ("DNS1123Subdomain", _bytes_of(_subdomain)),
    "dns1035Label": ("DNS1035Label", _bytes_of(is_dns1035_label)),
    "qualifiedName": ("QualifiedName", _bytes_of(is_label_key)),
    "dns1123LabelPrefix": ("DNS1123LabelPrefix", _bytes_of(is_dns1123_label, prefix=True)),
    "dns1123SubdomainPrefix": ("DNS1123SubdomainPrefix", _bytes_of(_subdomain, prefix=True)),
    "dns1035LabelPrefix": ("DNS1035LabelPrefix", _bytes_of(is_dns1035_label, prefix=True)),
    "labelValue": ("LabelValue", _bytes_of(is_label_value)),
    "uri": ("URI", _uri),
    "uuid": ("uuid", _uuid),
    "byte": ("byte", _byte),
    "date": ("date", _date),
    "datetime": ("datetime", _datetime),
}
_BY_KUBERNETES_NAME = {name: validate for name, validate in FORMATS.values()}


# -- the functions ------------------------------------------------------------------------------


def _format_value(kubernetes_name: str) -> object:
    return messages.opaque(NAMED_FORMAT, kubernetes_name)


def _named_format(name: str) -> object:
    """format.named: the format, or the zero format (no name) for none."""
    found = FORMATS.get(name)
    return _format_value(found[0] if found else "")


def _validate(named_format: object, text: str) -> list[str]:
    """<NamedFormat>.validate: the errors, an empty list for none."""
    validate = _BY_KUBERNETES_NAME.get(messages.text_of(named_format))
    if validate is None:
        # The zero format cannot reach here: optional.none() has no value to call it on.
        raise ValueError("no such overload")
    return validate(text)


def _constant(kubernetes_name: str) -> Callable[[], object]:
    return lambda: _format_value(kubernetes_name)


LIBRARY = Library(
    "kubernetes.format",
    (
        Function(
            "validate",
            (
                member(
                    "format-validate",
                    NAMED_FORMAT,
                    ("string",),
                    "optional_type(list(string))",
                    _validate,
                ),
            ),
        ),
        Function(
            "format.named",
            (
                function(
                    "format-named",
                    ("string",),
                    f"optional_type({NAMED_FORMAT})",
                    _named_format,
                ),
            ),
        ),
        *(
            Function(
                f"format.{name}",
                (function(f"format.{name}", (), NAMED_FORMAT, _constant(kubernetes_name)),),
            )
            for name, (kubernetes_name, _validate_function) in FORMATS.items()
        ),
    ),
    opaque_types=(NAMED_FORMAT,),
)
