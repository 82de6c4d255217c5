"""Safe loading, line maps, names and the content digest of policy_checks.

Unit tests below the acceptance cases of test_checks_examples.py.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_checks import (
    NAME_RE,
    SEMVER_RE,
    Finding,
    PolicyChecker,
    PolicyFiles,
    parse_version_dir,
    policy_digest,
)
from policy_checks.loading import (
    load_json,
    load_yaml,
    load_yaml_documents,
    scalar_position,
)
from policy_checks.loading.yaml_errors import yaml_error
from tests.schemadocs import examples, paths

pytestmark = pytest.mark.fast

CONTRACT_METADATA = {
    "name": "require-tags",
    "version": "1.2.0",
    "title": "Require cost-center tags",
    "description": "Resources must carry a cost-center tag.",
    "owner": "platform-security",
    "tags": ["tagging", "cost"],
}
CONTRACT_DEFINITION_YAML = b"""\
apiVersion: policyhub/v1
kind: PolicyDefinition
spec:
  severity: high              # low | medium | high | critical
  enforcement: deny           # audit | warn | deny; optional, default audit
  targets:                    # optional
    - kind: storage.bucket
  parameters:                 # optional: name -> {type, default, description}
    tag:
      type: string
      default: cost-center
  rules:                      # at least one; ids unique within the policy
    - id: has-cost-center
      description: Every bucket carries the tag
      condition: "params.tag in resource.tags"
"""
FOLDER = "policies/require-tags/v1.2.0"


@pytest.fixture(scope="module")
def checker() -> PolicyChecker:
    return PolicyChecker.load()


@pytest.mark.parametrize(
    ("dirname", "version"),
    [
        ("v1.2.3", "1.2.3"),
        ("v2.0.0-rc.1", "2.0.0-rc.1"),
        ("v1.0.0+build.5", "1.0.0+build.5"),
        ("v1.2", None),
        ("1.2.3", None),
        ("latest", None),
        ("V1.2.3", None),
        ("v01.2.3", None),
        ("v1.2.3\n", None),
        ("", None),
    ],
)
def test_parse_version_dir(dirname: str, version: str | None) -> None:
    assert parse_version_dir(dirname) == version


@pytest.mark.parametrize("name", ["a", "require-tags", "x1", "a" * 64])
def test_valid_names(name: str) -> None:
    assert NAME_RE.match(name)


@pytest.mark.parametrize("name", ["", "-a", "a-", "Bad", "a_b", "a.b", "a" * 65])
def test_invalid_names(name: str) -> None:
    assert not NAME_RE.match(name)


def test_semver_regex_is_the_official_one() -> None:
    assert SEMVER_RE.match("1.0.0-alpha.1+001")
    assert not SEMVER_RE.match("1.0.0-01")
    assert not SEMVER_RE.match("v1.0.0")


@pytest.mark.parametrize("version", ["1\u0661.0.0", "1.0.\u0968", "1.0.0-\uff11", "1.0.0+\u0661"])
def test_a_version_is_written_with_ascii_digits_only(version: str) -> None:
    assert SEMVER_RE.fullmatch(version) is None
    assert parse_version_dir(f"v{version}") is None


def test_the_schemas_name_pattern_is_the_contracts() -> None:
    rules = resources.files("policy_checks") / "rules"
    metadata = json.loads((rules / "metadata.schema.json").read_text(encoding="utf-8"))
    assert metadata["properties"]["name"]["pattern"] == NAME_RE.pattern


def test_finding_render() -> None:
    full = Finding("p/m.json", "bad", 3, "$.version", "quote it", "schema")
    assert full.render() == "p/m.json:3: $.version: bad (hint: quote it)"
    assert Finding("p/v1.0.0", "missing").render() == "p/v1.0.0: missing"


def test_yaml_line_map_points_at_keys_and_items() -> None:
    document = load_yaml(CONTRACT_DEFINITION_YAML, "d.yaml")
    assert document.ok
    assert document.source.line(()) == 1
    assert document.source.line(("spec", "severity")) == 4
    assert document.source.line(("spec", "targets", 0)) == 7
    assert document.source.line(("spec", "rules", 0, "condition")) == 15
    # A path that does not exist falls back to its nearest existing ancestor.
    assert document.source.line(("spec", "rules", 0, "missing", 3)) == 13


def test_json_line_map_and_raw_text() -> None:
    text = b'{\n\t"a":\t{"b" :[1,\n"\\ud83d\\ude00\\"",  1.10, {}, [],\n  {"q": [true]}]}}'
    document = load_json(text, "m.json")
    assert document.ok
    assert document.value == {"a": {"b": [1, '\U0001f600"', 1.1, {}, [], {"q": [True]}]}}
    assert document.source.line(("a",)) == 2
    assert document.source.line(("a", "b", 1)) == 3
    assert document.source.line(("a", "b", 5, "q", 0)) == 4
    assert document.source.raw_text(("a", "b", 2)) == "1.10"


@pytest.mark.parametrize(
    ("text", "rule", "line"),
    [
        (b'{"a": 1,\n "a": 2}', "duplicate-key", 2),
        (b'{"a": NaN}', "non-finite-number", 1),
        (b'{"a":\n 1e999}', "non-finite-number", 1),
        (b'{"a": 1,}', "json-trailing-comma", 1),
        (b"[" * 100_000 + b"]" * 100_000, "nesting-depth", None),
        (b"\xef\xbb\xbf{}", "utf-8", 1),
    ],
)
def test_json_rejections(text: bytes, rule: str, line: int | None) -> None:
    document = load_json(text, "m.json")
    assert [(f.rule, f.line) for f in document.findings] == [(rule, line)]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (b"a: 1\na: 2\n", "duplicate-key"),
        (b"? [a]\n: 1\n", "non-string-key"),
        (b"null: 1\n", "non-string-key"),
        (b"a: 2024-01-01\n", "yaml-type"),
        (b"a: !!binary aGk=\n", "yaml-type"),
        (b"a: !!set {x}\n", "yaml-type"),
        (b"a: !!omap [x: 1]\n", "yaml-type"),
        (b"a: !custom x\n", "yaml-type"),
        (b"base: &b {x: 1}\nother:\n  <<: *b\n", "yaml-type"),
        (b"a: -.inf\n", "non-finite-number"),
        (b"a: 1\n---\nb: 2\n", "multiple-documents"),
        (b"a: [\n", "yaml-syntax"),
        (b"a: " + b"[" * 900 + b"]" * 900 + b"\n", "nesting-depth"),
    ],
)
def test_yaml_rejections(text: bytes, rule: str) -> None:
    document = load_yaml(text, "d.yaml")
    assert not document.ok
    assert document.findings[0].rule == rule


def test_yaml_documents_are_read_one_by_one_with_their_lines() -> None:
    text = b"a: 1\n---\n# only a comment\n---\nb:\n  c: [x]\n--- 3\n---\n"
    document = load_yaml_documents(text, "m.yaml")
    assert document.ok, document.findings
    assert document.value == [{"a": 1}, None, {"b": {"c": ["x"]}}, 3, None]
    assert document.source.line((2, "b", "c", 0)) == 6
    assert document.source.line((3,)) == 7


@pytest.mark.parametrize(
    ("text", "rule", "line", "path"),
    [
        (b"a: 1\n---\nb: 1\nb: 2\n", "duplicate-key", 4, "$[1].b"),
        (b"a: 1\n---\nb: &x 1\nc: *x\n", "yaml-alias", 4, "$[1].c"),
        (b"a: 1\n---\nb: 2024-01-01\n", "yaml-type", 3, "$[1].b"),
        (b"a: 1\n---\nb: [\n", "yaml-syntax", 4, None),
        (b"---\n---\n", "empty-document", 1, None),
        (b"# nothing\n", "empty-document", 1, None),
        (b"a: " + b"x" * (1 << 20) + b"\n", "file-size", None, None),
    ],
)
def test_yaml_documents_keep_the_refusals_of_one_document(
    text: bytes, rule: str, line: int | None, path: str | None
) -> None:
    document = load_yaml_documents(text, "m.yaml")
    assert not document.ok
    finding = document.findings[0]
    assert (finding.rule, finding.line, finding.json_path) == (rule, line, path)


_BOTH_PARSERS = [yaml.SafeLoader, getattr(yaml, "CSafeLoader", yaml.SafeLoader)]


@pytest.mark.parametrize("loader", _BOTH_PARSERS, ids=["python", "libyaml"])
@pytest.mark.parametrize(
    ("text", "line", "message", "hint"),
    [
        (
            "apiVersion: a\n kind: b\n",
            2,
            "`kind:` is indented by 1 space, the key before it (`apiVersion:`, line 1) by 0",
            "align `kind:` with `apiVersion:` (0 spaces, line 1)",
        ),
        (  # between two levels: either may be meant
            "spec:\n  severity: low\n rules: []\n",
            3,
            "`rules:` is indented by 1 space, the key before it (`severity:`, line 2) by 2",
            "align `rules:` with `severity:` (2 spaces, line 2) or with `spec:` (0 spaces, line 1)",
        ),
        (  # a block scalar's text is no key
            "r:\n  - id: a\n    condition: |\n      true\n   description: x\n",
            5,
            "`description:` is indented by 3 spaces, the key before it (`condition:`, line 3) by 4",
            "align `description:` with `condition:` (4 spaces, line 3)",
        ),
        (
            "rules:\n  - id: a\n   - id: b\n",
            3,
            "`- id:` is indented by 3 spaces, the item before it (`- id:`, line 2) by 2",
            "align `- id:` with `- id:` (2 spaces, line 2): the items of one list",
        ),
        (  # what the file holds is shown escaped
            "spec:\n  a: 1\n   b\u202e: 2\n",
            3,
            "`b\\u202e:` is indented by 3 spaces",
            "align `b\\u202e:` with `a:`",
        ),
    ],
    ids=["top-level", "between-two-levels", "after-a-block-scalar", "list-item", "escaped"],
)
def test_a_misaligned_key_is_named_with_the_column_of_the_keys_around_it(
    loader: type, text: str, line: int, message: str, hint: str
) -> None:
    with pytest.raises(yaml.MarkedYAMLError) as raised:
        yaml.compose(text, Loader=loader)
    finding = yaml_error("d.yaml", text, raised.value)
    assert (finding.rule, finding.line) == ("yaml-indent", line), finding.render()
    assert finding.message.startswith("YAML syntax error: " + message), finding.message
    assert finding.hint is not None and finding.hint.startswith(hint), finding.hint


def test_a_syntax_error_that_is_no_misalignment_keeps_the_parsers_words() -> None:
    document = load_yaml(b"spec:\n  description: a: b\n", "d.yaml")
    assert document.findings[0].rule == "yaml-syntax"
    assert "mapping values are not allowed" in document.findings[0].message


def test_yaml_scalars_are_read_as_json_values() -> None:
    text = b"s: 'x'\ni: 0x1f\nf: 1.5e+3\nb: off\nn: ~\nq: !!str 12\nl: [1, two]\n"
    document = load_yaml(text, "d.yaml")
    assert document.value == {
        "s": "x",
        "i": 31,
        "f": 1500.0,
        "b": False,
        "n": None,
        "q": "12",
        "l": [1, "two"],
    }


def test_alias_bomb_is_refused_without_expansion() -> None:
    # 10 levels of 10 references each: 10**10 nodes if expanded.
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 11)]
    document = load_yaml("\n".join(lines).encode(), "d.yaml")
    assert [f.rule for f in document.findings] == ["yaml-alias"]
    assert "100 aliases" in document.findings[0].message


def test_findings_per_file_are_capped() -> None:
    text = "".join(f"k{i}: 2024-01-{i % 28 + 1:02d}\n" for i in range(500)).encode()
    assert len(load_yaml(text, "d.yaml").findings) == 20


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_check_never_raises(data: bytes) -> None:
    checker = PolicyChecker.load()
    result = checker.check(PolicyFiles("policies/x/v1.0.0", data, data))
    assert all(isinstance(f, Finding) for f in result.findings)
    assert all(f.rule != "internal" for f in result.findings)


def test_contract_digest_is_computed_the_documented_way(checker: PolicyChecker) -> None:
    metadata = json.dumps(CONTRACT_METADATA, indent=2).encode()
    result = checker.check(PolicyFiles(FOLDER, metadata, CONTRACT_DEFINITION_YAML))
    assert result.ok, [f.render() for f in result.findings]
    canonical = (
        '{"definition":{"apiVersion":"policyhub/v1","kind":"PolicyDefinition","spec":'
        '{"enforcement":"deny","parameters":{"tag":{"default":"cost-center","type":"string"}},'
        '"rules":[{"condition":"params.tag in resource.tags","description":'
        '"Every bucket carries the tag","id":"has-cost-center"}],"severity":"high",'
        '"targets":[{"kind":"storage.bucket"}]}},"metadata":{"description":'
        '"Resources must carry a cost-center tag.","name":"require-tags","owner":'
        '"platform-security","tags":["tagging","cost"],"title":"Require cost-center tags",'
        '"version":"1.2.0"}}'
    )
    assert result.digest == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert result.digest == policy_digest(result.metadata, result.definition)


def test_digest_ignores_formatting_key_order_and_comments(checker: PolicyChecker) -> None:
    compact = json.dumps(dict(reversed(CONTRACT_METADATA.items())), separators=(",", ":"))
    flow_yaml = (
        b"# the same definition in flow style\n"
        b"{spec: {rules: [{condition: 'params.tag in resource.tags', id: has-cost-center,\n"
        b"  description: Every bucket carries the tag}], severity: high, enforcement: deny,\n"
        b"  targets: [{kind: storage.bucket}],\n"
        b"  parameters: {tag: {default: cost-center, type: string}}},\n"
        b" kind: PolicyDefinition, apiVersion: policyhub/v1}\n"
    )
    pretty = checker.check(
        PolicyFiles(
            FOLDER, json.dumps(CONTRACT_METADATA, indent=4).encode(), CONTRACT_DEFINITION_YAML
        )
    )
    other = checker.check(PolicyFiles(FOLDER, compact.encode(), flow_yaml))
    assert pretty.ok and other.ok
    assert pretty.digest == other.digest


def test_digest_of_the_same_content_in_json_and_yaml_is_equal(checker: PolicyChecker) -> None:
    definition = load_yaml(CONTRACT_DEFINITION_YAML, "d.yaml").value
    as_json = json.dumps(definition, indent=1).encode()
    # JSON is YAML: the definition file may be written as JSON and digests the same.
    result = checker.check(PolicyFiles(FOLDER, json.dumps(CONTRACT_METADATA).encode(), as_json))
    assert result.ok
    assert result.digest == policy_digest(CONTRACT_METADATA, definition)


def test_digest_is_present_when_files_parse_but_fail_the_schema(checker: PolicyChecker) -> None:
    metadata = json.dumps({**CONTRACT_METADATA, "owner": ""}).encode()
    result = checker.check(PolicyFiles(FOLDER, metadata, CONTRACT_DEFINITION_YAML))
    assert not result.ok
    assert result.digest == policy_digest(result.metadata, result.definition)


def test_no_digest_when_a_file_does_not_parse(checker: PolicyChecker) -> None:
    result = checker.check(PolicyFiles(FOLDER, b"{", CONTRACT_DEFINITION_YAML))
    assert result.digest is None
    assert result.metadata is None
    assert result.definition is not None


def test_result_names_the_policy(checker: PolicyChecker) -> None:
    result = checker.check(PolicyFiles("policies/x/v2.0.0-rc.1", None, None))
    assert (result.name, result.version) == ("x", "2.0.0-rc.1")
    assert checker.check(PolicyFiles("policies/x/latest", None, None)).version == "latest"


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)  # the loaders accept 64-bit integers only
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=25,
)


@settings(max_examples=examples(200), deadline=None)
@given(_JSON_VALUES, st.sampled_from([None, 0, 2, "\t"]))
def test_json_line_map_covers_every_value(value: object, indent: int | str | None) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    document = load_json(text.encode(), "m.json")
    assert document.ok and document.value == value
    lines = text.split("\n")
    for path in paths(value):
        line = document.source.line(path)
        assert line is not None and 1 <= line <= len(lines)
        if path and isinstance(path[-1], str):
            assert json.dumps(path[-1], ensure_ascii=False) in lines[line - 1]


# YAML scalars as written, the irregular ones included: each needs a finding or a conversion.
_YAML_SCALARS = st.sampled_from(
    ["x", "'1.10'", "1.10", "yes", "~", ".inf", "0x1f", "-7", "2024-01-01", "!!binary aGk=",
     "!!str 12", "99999999999999999999", "&a x", "*a", "{}", "[]", '"q"', "!custom x", "<<"]
)  # fmt: skip
_YAML_TREES = st.recursive(
    _YAML_SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.lists(
            st.tuples(st.sampled_from(["a", "b", "c", "1", "null"]) | children, children)
        ).map(tuple)
    ),
    max_leaves=12,
)


def _flow(tree: Any) -> str:
    """A tree of written scalars as flow-style YAML, one mapping entry a line."""
    if isinstance(tree, tuple):
        return "{" + ",\n ".join(f"{_flow(key)}: {_flow(value)}" for key, value in tree) + "}"
    if isinstance(tree, list):
        return "[" + ", ".join(_flow(item) for item in tree) + "]"
    return str(tree)


@settings(max_examples=examples(400), deadline=None)
@given(_YAML_TREES)
def test_the_one_yaml_walk_places_every_string_it_reads(tree: Any) -> None:
    # One walk gives the value, the lines and each string's span; a column placed in a string
    # (a condition's error) is the character the value holds there.
    text = _flow(tree)
    document = load_yaml(text.encode(), "d.yaml")
    if not document.ok:
        return
    rows = text.split("\n")
    for path in paths(document.value):
        value: Any = document.value
        for key in path:
            value = value[key]
        assert document.source.line(path) is not None
        if isinstance(value, str) and value:
            span = document.source.span(path)
            assert span is not None, path
            line, column = scalar_position(text, span, value, 0)
            assert rows[line - 1][column - 1] == value[0], (path, line, column)
        elif not isinstance(value, str):
            assert document.source.span(path) is None


@settings(max_examples=examples(200), deadline=None)
@given(_YAML_TREES)
def test_the_c_and_python_composers_mark_the_same_characters(tree: Any) -> None:
    # The reader composes with libyaml; its marks must count characters as the Python one's.
    text = _flow(tree) + " # é😀"
    try:
        fast = yaml.compose(text, Loader=yaml.CSafeLoader)
        slow = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return

    def marks(node: Any) -> list[tuple[int, int]]:
        found = [(node.start_mark.index, node.end_mark.index)]
        if isinstance(node.value, list):
            for item in node.value:
                for part in item if isinstance(item, tuple) else (item,):
                    found += marks(part)
        return found

    assert fast is None or marks(fast) == marks(slow)
