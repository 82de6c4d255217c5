"""Typed resources (docs/contract.md section 8, "Typed resources"): how a JSON Schema becomes
`resource`'s CEL type (the mapping, the merge of the target kinds' schemas, the messages the
checker sees), what the engine then refuses and still accepts, reading resource-schemas/ (a bad
file is exit 4 naming it), checking test resources against their kind's schema, and where a run
reads the schemas from (the release commit in release mode). Messages an author sees are pinned
by tests/example-files (`cel-resource-*`, `tests-resource-breaks-schema`, `cel-typed-resource`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy_checks import ResourceSchemaError, ResourceSchemas, read_resource_schema_files
from policy_checks.cel import messages, resources
from policy_checks.cel.environment import ENVIRONMENTS, run_expression
from policy_checks.cel.resources import merge, shape_of
from policy_checks.checks.conditions import compile_conditions
from policy_checks.loading import SourceMap
from publisher.repo.layout import CommitSource
from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo, metadata
from tests.test_policy_behaviour import policyhub_eval

pytestmark = pytest.mark.fast

DEPLOYMENT = json.loads(
    (Path(__file__).parent / "example-files/resource-schemas/Deployment.json").read_text()
)


def obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


STR, INT, NUM, BOOL = ({"type": t} for t in ("string", "integer", "number", "boolean"))

# -- JSON Schema to CEL ---------------------------------------------------------------------------

# schema -> the shape's canonical key: `{a:int}` a message, `map(string)` map(string, string)
MAPPING = [
    (STR, "string"),
    (INT, "int"),
    (NUM, "double"),
    (BOOL, "bool"),
    ({"type": "array", "items": INT}, "list(int)"),
    ({"type": "array"}, "list(dyn)"),
    ({"type": "array", "items": {"type": "array", "items": STR}}, "list(list(string))"),
    (obj(a=INT, b=STR), "{a:int,b:string}"),
    ({"type": "object", "additionalProperties": STR}, "map(string)"),
    ({"type": "object", "additionalProperties": True}, "map(dyn)"),
    ({"type": "object"}, "map(dyn)"),  # open: its fields are dyn
    ({"type": "object", "properties": {}}, "map(dyn)"),
    ({**obj(a=STR), "additionalProperties": STR}, "map(string)"),  # they agree
    ({**obj(a=INT), "additionalProperties": STR}, "map(dyn)"),
    ({**obj(a=INT), "additionalProperties": False}, "{a:int}"),
    ({"properties": {"a": INT}}, "{a:int}"),  # an object by its keywords
    ({"items": STR}, "list(string)"),
    (obj(**{"a-b": STR}), "map(dyn)"),  # `resource.x.a-b` cannot be written
    (obj(**{"in": STR}), "map(dyn)"),  # nor `resource.x.in`
    (obj(namespace=STR, package=STR), "{namespace:string,package:string}"),  # these can
    ({"type": ["integer", "null"]}, "int?"),
    ({"type": "integer", "nullable": True}, "int?"),
    ({"type": ["object", "null"], "properties": {"a": INT}}, "{a:int}"),
    ({"type": ["array", "null"], "items": INT}, "dyn"),
    ({"type": ["string", "integer"]}, "dyn"),
    ({"type": "null"}, "null"),
    ({}, "dyn"),
    ({"enum": ["a", "b"]}, "string"),
    ({"enum": [1, 2, None]}, "int?"),
    ({"enum": ["a", 1]}, "dyn"),
    ({"const": True}, "bool"),
    ({"oneOf": [INT, STR]}, "dyn"),  # Kubernetes' IntOrString in OpenAPI v3
    ({"anyOf": [STR, {"type": "string", "maxLength": 3}]}, "string"),
    ({"type": "string", "anyOf": [{"maxLength": 3}, {"pattern": "x"}]}, "string"),
    ({"allOf": [obj(a=INT), obj(b=STR)]}, "{a:int,b:string}"),
    ({"x-kubernetes-int-or-string": True, "anyOf": [INT, STR]}, "dyn"),
    ({**obj(a=INT), "x-kubernetes-preserve-unknown-fields": True}, "dyn"),
    ({"type": "string", "format": "int-or-string"}, "dyn"),  # OpenAPI v2's IntOrString
    ({"type": "string", "format": "date-time"}, "string"),  # evaluation sees the string
]


@pytest.mark.parametrize(("schema", "key"), MAPPING, ids=[k for _, k in MAPPING])
def test_a_schema_maps_to_its_cel_type(schema: dict[str, Any], key: str) -> None:
    assert shape_of(schema).text == key


def test_refs_resolve_within_the_file_and_recursion_stops_at_dyn() -> None:
    schema = {
        "$defs": {
            "Node": obj(value=INT, children={"type": "array", "items": {"$ref": "#/$defs/Node"}}),
            "Pair": {"allOf": [{"$ref": "#/components/schemas/a~1b"}], "default": {}},
        },
        "components": {"schemas": {"a/b": obj(left=STR)}},
        **obj(tree={"$ref": "#/$defs/Node"}, pair={"$ref": "#/$defs/Pair"}, me={"$ref": "#"}),
    }
    assert shape_of(schema).text == (
        "{me:dyn,pair:{left:string},tree:{children:list(dyn),value:int}}"
    )


def test_a_type_reached_by_many_paths_is_read_once() -> None:
    """Kubernetes reaches ObjectMeta, Container... by many paths: 2**40 of them here."""
    chain = {
        f"T{i}": obj(left={"$ref": f"#/$defs/T{i + 1}"}, right={"$ref": f"#/$defs/T{i + 1}"})
        for i in range(40)
    }
    chain["T40"] = obj(leaf=INT)
    shape = shape_of({"$defs": chain, "$ref": "#/$defs/T0"})
    assert len(shape.key) < 64
    assert resources.fields_of(resources.declare(shape)) == ["left", "right"]


def test_references_that_recurse_into_one_another_are_bounded() -> None:
    names = [f"T{i}" for i in range(9)]
    tangle = {n: obj(**{m.lower(): {"$ref": f"#/$defs/{m}"} for m in names}) for n in names}
    with pytest.raises(ResourceSchemaError, match="expands to more than 200000 types"):
        shape_of({"$defs": tangle, "$ref": "#/$defs/T0"}, "resource-schemas/tangle.json")
    # One type that holds itself (JSONSchemaProps) is read once.
    props = obj(properties={"additionalProperties": {"$ref": "#/$defs/P"}}, type=STR)
    assert shape_of({"$defs": {"P": props}, "$ref": "#/$defs/P"}).text == (
        "{properties:map(dyn),type:string}"
    )


MERGES = [
    (STR, STR, "string"),
    (INT, NUM, "dyn"),  # different types
    (obj(a=INT), obj(b=STR), "{a:int,b:string}"),  # a field any kind declares exists
    (obj(a=INT), obj(a=STR), "{a:dyn}"),
    (obj(a=obj(x=INT)), obj(a=obj(y=BOOL)), "{a:{x:int,y:bool}}"),
    (
        {"type": "array", "items": obj(a=INT)},
        {"type": "array", "items": obj(b=INT)},
        "list({a:int,b:int})",
    ),
    ({"additionalProperties": STR}, {"additionalProperties": INT}, "map(dyn)"),
    (obj(a=INT), {"type": "object"}, "dyn"),  # a message and a map
    ({"type": "null"}, INT, "int?"),
    ({"type": "null"}, obj(a=INT), "{a:int}"),
    ({}, INT, "dyn"),
]


@pytest.mark.parametrize(("a", "b", "key"), MERGES, ids=[k for _, _, k in MERGES])
def test_the_target_kinds_schemas_merge_structurally(
    a: dict[str, Any], b: dict[str, Any], key: str
) -> None:
    assert merge(shape_of(a), shape_of(b)).text == key
    assert merge(shape_of(b), shape_of(a)).text == key


# -- what the engine does with the declaration ------------------------------------------------

TYPED = {
    "type": "object",
    "properties": {
        "kind": STR,
        "metadata": obj(
            name=STR, labels={"type": "object", "additionalProperties": STR}, namespace=STR
        ),
        "spec": obj(
            replicas=INT,
            paused=BOOL,
            ratio={"type": ["number", "null"]},
            containers={"type": "array", "items": obj(name=STR, image=STR)},
            matrix={"type": "array", "items": {"type": "array", "items": INT}},
            selectors={"type": "array", "items": {"additionalProperties": STR}},
            port={"x-kubernetes-int-or-string": True},
            extra={"type": "object"},
        ),
    },
}

CHECKS = [
    ("resource.spec.contianers.size() > 0", "undefined field 'contianers'"),
    ("resource.spec.replicas == '3'", "no matching overload for '_==_' applied to '(int, string)'"),
    ("size(resource.spec.paused) > 0", "no matching overload for 'size' applied to '(bool)'"),
    ("resource.spec.containers.all(c, c.imag != '')", "undefined field 'imag'"),
    ("resource.spec.containers.all(c, c.image > 1)", "applied to '(string, int)'"),
    ("resource.?spec.?contianers.hasValue()", "undefined field 'contianers'"),
    ("has(resource.spec.x)", "undefined field 'x'"),
    ("resource.spec.ratio + resource.spec.replicas > 1.0", "applied to '(wrapper(double), int)'"),
    ("has(resource.spec.replicas) && resource.spec.replicas > 1", None),
    ("resource.metadata.labels['app'] == 'web'", None),
    ("'app' in resource.metadata.labels", None),
    ("resource.metadata.namespace == 'shop'", None),
    ("resource.spec.containers.all(c, c.image.startsWith('registry/'))", None),
    ("resource.spec.containers.exists(c, c.name == 'web')", None),
    ("resource.?spec.?replicas.orValue(1) > 0", None),
    ("resource.spec.ratio == null || resource.spec.ratio < 0.5", None),
    ("resource.spec.replicas < 2.5", None),  # cross-type comparisons, as everywhere
    ("resource.spec.matrix[0][0] == 1", None),
    ("resource.spec.selectors[0]['zone'] == 'a'", None),
    ("resource.spec.port == 80 || resource.spec.port == 'http'", None),  # dyn
    ("resource.spec.extra.anything.deeper == 1", None),  # an open object
    ("resource.kind == 'Deployment'", None),
]


@pytest.mark.parametrize(("text", "error"), CHECKS, ids=[t for t, _ in CHECKS])
def test_the_checker_knows_the_declared_fields_and_types(text: str, error: str | None) -> None:
    word = resources.type_word([TYPED])
    compiled = ENVIRONMENTS.compile((), text, word)
    if error is None:
        assert compiled.program is not None, compiled.error
        assert compiled.result_type == "BOOL"
    else:
        assert compiled.program is None
        assert error in compiled.error


EVALUATIONS = [
    # Evaluation keeps JSON's meaning: no proto3 defaults, has() is presence, a missing field is
    # an error, an integer where the schema says number stays an int.
    ("has(resource.spec.replicas)", {"spec": {}}, ("value", False)),
    ("resource.spec.replicas == 0", {"spec": {}}, ("runtime", "key not found")),
    ("resource.?spec.?replicas.orValue(7) == 7", {"spec": {}}, ("value", True)),
    (
        "resource.spec.containers.all(c, c.image != '')",
        {"spec": {"containers": []}},
        ("value", True),
    ),
    ("resource.spec.ratio == null", {"spec": {"ratio": None}}, ("value", True)),
    ("resource.spec.ratio < 2.5", {"spec": {"ratio": 2}}, ("value", True)),
    ("resource.spec.port == 80", {"spec": {"port": 80}}, ("value", True)),
]


@pytest.mark.parametrize(
    ("text", "resource", "outcome"), EVALUATIONS, ids=[e[0] for e in EVALUATIONS]
)
def test_a_typed_program_runs_over_the_json_document(
    text: str, resource: Any, outcome: tuple[str, Any]
) -> None:
    result = run_expression(text, {"resource": resource}, {"resource": TYPED})
    stage, expected = outcome
    assert result.stage == stage, result.message
    if stage == "value":
        assert result.value is expected
    else:
        assert expected in result.message.lower()


WORDED = [
    (
        "resource.spce.replicas > 1",
        "resource has no field `spce`; did you mean `spec`? (fields: kind, metadata, spec)",
    ),
    (
        "resource.spec.containers.all(c, c.imag != '')",
        "c has no field `imag`; did you mean `image`? (fields: image, name)",
    ),
    ("resource.spec.containers[0].imag == ''", "resource.spec.containers[0] has no field `imag`"),
    (
        "resource.?spec.?contianers.hasValue()",
        "resource.?spec has no field `contianers`; did you mean `containers`?",
    ),
    (
        "has(resource.metadata.lables)",
        "resource.metadata has no field `lables`; did you mean "
        "`labels`? (fields: labels, name, namespace)",
    ),
    ("resource.spec", "the condition is of type object, not bool"),
    ("resource.spec == {}", "no overload of == for the argument types (object, map("),
]


@pytest.mark.parametrize(("text", "message"), WORDED, ids=[t for t, _ in WORDED])
def test_a_condition_on_a_typed_resource_is_one_finding_in_the_authors_words(
    text: str, message: str
) -> None:
    schemas = load(**{"Deployment.json": json.dumps(TYPED)})
    definition = {
        "spec": {"targets": [{"kind": "Deployment"}], "rules": [{"id": "r", "condition": text}]}
    }
    policy, findings = compile_conditions(
        definition, "p.yaml", SourceMap({}, {}), lambda: None, schemas
    )
    assert policy is not None and policy.uncompiled == ("r",)  # the rule does not run
    assert len(findings) == 1, [f.render() for f in findings]  # no follow-up on `*error*`
    assert message in findings[0].message


def test_a_kubernetes_openapi_document_with_a_top_level_ref_types_the_kind() -> None:
    word = resources.type_word([DEPLOYMENT])
    for text in (
        "resource.spec.template.spec.containers.all(c, c.image.contains('@sha256:'))",
        "resource.metadata.labels['app'] == 'web' && resource.metadata.namespace != ''",
        "resource.spec.strategy.rollingUpdate.maxSurge == 1",  # IntOrString: dyn
        "resource.spec.template.spec.containers.all(c, c.resources.limits['cpu'] == '1')",
        "resource.spec.template.spec.containers.all(c, c.ports.all(p, p.containerPort > 1024))",
    ):
        compiled = ENVIRONMENTS.compile((), text, word)
        assert compiled.program is not None, (text, compiled.error)
    wrong = ENVIRONMENTS.compile((), "resource.spec.template.spec.nodeSelecter['a'] == 'b'", word)
    assert "undefined field 'nodeSelecter'" in wrong.error


# -- the messages, as the checker sees them ------------------------------------------------------


def test_identical_shapes_are_one_message_and_differences_are_others() -> None:
    first = resources.type_word([obj(a=INT, b={"type": "array", "items": obj(c=STR)})])
    again = resources.type_word(
        [
            {
                "$defs": {"C": obj(c=STR)},
                **obj(b={"type": "array", "items": {"$ref": "#/$defs/C"}}, a=INT),
            }
        ]
    )
    other = resources.type_word([obj(a=INT, b={"type": "array", "items": obj(c=INT)})])
    assert first == again != other
    assert first.startswith(resources.TYPE_PREFIX)
    assert resources.fields_of(first) == ["a", "b"]
    assert resources.fields_of("policyhub.params.Params") is None


@pytest.mark.parametrize(
    "schema",
    [
        obj(a_b=STR, aB=STR),  # one JSON name: protobuf refuses the pair
        obj(labels={"additionalProperties": STR}, LabelsEntry=STR),  # the map's entry message
    ],
    ids=["json-name", "map-entry"],
)
def test_names_protobuf_cannot_hold_in_one_message_make_a_map(schema: dict[str, Any]) -> None:
    word = resources.type_word([obj(outer=schema)])
    assert resources.fields_of(word) == ["outer"]
    assert ENVIRONMENTS.compile((), "resource.outer['aB'] == 'x'", word).program is not None
    assert resources.type_word([schema]) == "map(string, dyn)"


def test_every_declared_message_is_known_to_the_engine() -> None:
    """The C++ side refuses a descriptor only by logging it; each emitted file must build."""
    word = resources.type_word([DEPLOYMENT])
    pool = messages.pool()
    names = [word]
    seen = set()
    while names:
        name = names.pop()
        if name in seen:
            continue
        seen.add(name)
        for found in pool.FindMessageTypeByName(name).fields:
            if found.message_type is not None and found.message_type.full_name.startswith(
                resources.TYPE_PREFIX
            ):
                names.append(found.message_type.full_name)
    assert len(seen) > 5
    for name in seen:
        first = resources.fields_of(name)
        assert first
        compiled = ENVIRONMENTS.compile((), f"has(resource.{first[0]})", name)
        assert compiled.program is not None, (name, compiled.error)


# -- a repository's resource-schemas/ -------------------------------------------------------------


def load(**files: str) -> ResourceSchemas:
    return ResourceSchemas.load({f"resource-schemas/{n}": t.encode() for n, t in files.items()})


def test_type_word_merges_the_target_kinds_and_is_none_without_a_schema_for_each() -> None:
    schemas = load(
        **{
            "storage.bucket.json": json.dumps(obj(kind=STR, tags={"additionalProperties": STR})),
            "compute.instance.yaml": "type: object\nproperties:\n  kind: {type: string}\n"
            "  vcpus: {type: integer}\n",
            "README.md": "not a schema",
            ".gitkeep": "",
        }
    )
    assert schemas.kinds == ["compute.instance", "storage.bucket"]
    word = schemas.type_word(["storage.bucket", "compute.instance", "storage.bucket"])
    assert word is not None and resources.fields_of(word) == ["kind", "tags", "vcpus"]
    assert schemas.type_word(["compute.instance", "storage.bucket"]) == word
    assert schemas.type_word(["storage.bucket", "iam.role"]) is None  # resource stays dyn
    assert schemas.type_word([]) is None


BAD_FILES = [
    ({"bucket.txt": "{}"}, "resource-schemas/bucket.txt: not a schema file name"),
    ({"-x.json": "{}"}, "resource-schemas/-x.json: not a schema file name"),
    (
        {"a.json": "{}", "a.yaml": "{}"},
        "resource-schemas/a.yaml: a second schema of kind a (and resource-schemas/a.json)",
    ),
    ({"a.json": "{"}, "resource-schemas/a.json:1: invalid JSON"),
    ({"a.json": '{"type": "object", "type": "string"}'}, 'duplicate key "type"'),
    ({"a.yaml": "type: [unclosed\n"}, "resource-schemas/a.yaml:"),
    ({"a.json": "[]"}, "resource-schemas/a.json: a JSON Schema must be an object"),
    (
        {"a.json": " " * (1 << 20) + "{}"},
        "resource-schemas/a.json: file is larger than 1 MiB (the limit is 1048576 bytes) "
        "(hint: keep only the schemas the kind uses, compact: jq -c",
    ),
    (
        {"a.json": '{"type": "strin"}'},
        "resource-schemas/a.json: not a valid JSON Schema: 'strin' is not valid under any of "
        "the given schemas (at #/type)",
    ),
    (
        {
            "a.json": '{"$ref": "#/components/schemas/X", "components": {"schemas": {"X": '
            '{"properties": {"a": {"type": 3}}}}}}'
        },
        "resource-schemas/a.json: not a valid JSON Schema: 3 is not valid under any of the given "
        "schemas (at #/components/schemas/X/properties/a/type)",
    ),
    (
        {"a.json": '{"$ref": "#/$defs/Missing"}'},
        "resource-schemas/a.json: $ref '#/$defs/Missing' does not resolve within the file (at #)",
    ),
    (
        {"a.json": '{"properties": {"b": {"$ref": "other.json#/X"}}}'},
        "resource-schemas/a.json: $ref 'other.json#/X' is not a reference within the file",
    ),
]


@pytest.mark.parametrize(("files", "message"), BAD_FILES, ids=[m for _, m in BAD_FILES])
def test_a_file_that_is_no_usable_schema_is_refused_naming_it(
    files: dict[str, str], message: str
) -> None:
    with pytest.raises(ResourceSchemaError) as raised:
        load(**files)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_worker_does_not_check_again_what_the_controller_checked() -> None:
    files = {
        "resource-schemas/a.json": b'{"properties": {"n": {"type": "integer"}, "x": {"type": 3}}}'
    }
    with pytest.raises(ResourceSchemaError, match="not a valid JSON Schema"):
        ResourceSchemas.load(files)
    # An xdist worker reads the bytes the controller refused or accepted: never a crash.
    assert ResourceSchemas.load(files, checked=True).shapes["a"].text == "{n:int,x:dyn}"


def test_the_working_tree_reader_refuses_links_and_folders(tmp_path: Path) -> None:
    folder = tmp_path / "resource-schemas"
    assert read_resource_schema_files(tmp_path) == {}
    folder.mkdir()
    (folder / "a.json").write_text("{}")
    (folder / "README.md").write_text("notes")
    assert read_resource_schema_files(tmp_path) == {"resource-schemas/a.json": b"{}"}
    (folder / "b.json").symlink_to("a.json")
    with pytest.raises(ResourceSchemaError, match=r"resource-schemas/b.json: is a symbolic link"):
        read_resource_schema_files(tmp_path)
    (folder / "b.json").unlink()
    (folder / "nested").mkdir()
    with pytest.raises(ResourceSchemaError, match=r"resource-schemas/nested: is a folder"):
        read_resource_schema_files(tmp_path)


@pytest.mark.process
def test_the_commit_reader_refuses_what_the_working_tree_reader_does(tmp_path: Path) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.write("resource-schemas/a.json", "{}")
    repo.write("resource-schemas/README.md", "notes")
    first = repo.commit()
    (repo.path / "resource-schemas/b.json").symlink_to("a.json")
    linked = repo.commit()
    (repo.path / "resource-schemas/b.json").unlink()
    repo.write("resource-schemas/nested/c.json", "{}")
    nested = repo.commit()
    assert CommitSource(repo.path, first, []).resource_schema_files() == {
        "resource-schemas/a.json": b"{}"
    }
    with pytest.raises(ResourceSchemaError, match=r"^resource-schemas/b.json: is a symbolic link"):
        CommitSource(repo.path, linked, []).resource_schema_files()
    with pytest.raises(ResourceSchemaError, match=r"^resource-schemas/nested: is a folder"):
        CommitSource(repo.path, nested, []).resource_schema_files()


VALIDATIONS = [
    ({"kind": "Deployment", "spec": {"replicas": 2, "template": {"spec": {"containers": []}}}}, []),
    ({"kind": "Service", "spec": {"replicas": "x"}}, []),  # no schema for its kind
    ({"spec": {"replicas": "x"}}, []),  # no kind
    (
        {"kind": "Deployment", "spec": {"replicas": "3", "paused": 1, "template": {}}},
        [
            ("$.spec.paused", "1 is not of type 'boolean'"),
            ("$.spec.replicas", "'3' is not of type 'integer'"),
        ],
    ),
    (
        {"kind": "Deployment", "spec": {"template": {"spec": {"contianers": []}}}},
        [
            (
                "$.spec.template.spec.contianers",
                "unknown field 'contianers'; did you mean 'containers' (required, missing)?",
            )
        ],
    ),
    (
        {"kind": "Deployment", "metadata": {"labels": {"app": 1}}},
        [("$.metadata.labels.app", "1 is not of type 'string'")],
    ),
]


@pytest.mark.parametrize(("resource", "problems"), VALIDATIONS)
def test_a_resource_is_validated_against_its_kinds_schema(
    resource: dict[str, Any], problems: list[tuple[str, str]]
) -> None:
    from policy_checks.jsonpath import format_path

    schemas = load(**{"Deployment.json": json.dumps(DEPLOYMENT)})
    assert [(format_path(p), m) for p, m in schemas.validate(resource)] == problems


def test_an_unknown_field_of_a_closed_object_is_named_at_its_key() -> None:
    schemas = load(**{"a.json": json.dumps({**obj(size=INT), "additionalProperties": False})})
    assert schemas.validate({"kind": "a", "sise": 1}) == [
        (("kind",), "unknown field 'kind'"),
        (("sise",), "unknown field 'sise'; did you mean 'size'?"),
    ]


# -- where a run reads them -----------------------------------------------------------------------

WIDGET_POLICY = """\
apiVersion: policyhub/v1
kind: PolicyDefinition
spec:
  severity: high
  targets:
    - kind: widget
  rules:
    - id: sized
      description: a widget has a size
      condition: "resource.size > 0"
"""


def widget_schema(*fields: str) -> str:
    return json.dumps(obj(kind=STR, **{name: INT for name in fields}))


@pytest.mark.process
def test_a_release_reads_the_schemas_of_the_release_commit_not_the_working_tree(
    tmp_path: Path, hub: HubProcess
) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("widgets", "1.0.0", definition_text=WIDGET_POLICY)
    repo.write("resource-schemas/widget.json", widget_schema("count"))  # no `size`
    repo.commit("a policy and the widget's schema")
    repo.write("resource-schemas/widget.json", widget_schema("count", "size"))  # not committed

    author = repo.pytest()
    assert author.returncode == 0, author.output  # the working tree's schema has `size`

    released = repo.release(hub, "-n", "2")
    assert released.returncode == 1, released.output
    assert "rule sized: resource has no field `size` (fields: count, kind)" in released.stdout
    assert hub.created("widgets", "1.0.0") == 0

    repo.write("resource-schemas/widget.json", '{"type": "strin"}')  # broken, not committed
    author = repo.pytest()
    assert author.returncode == 4
    assert author.stderr.strip().splitlines()[-1] == (
        "ERROR: resource-schemas/widget.json: not a valid JSON Schema: 'strin' is not valid "
        "under any of the given schemas (at #/type)"
    )
    again = repo.release(hub)  # the commit's schema, still: the same finding, no refusal
    assert again.returncode == 1, again.output
    assert "resource has no field `size`" in again.stdout

    repo.write("resource-schemas/widget.json", widget_schema("count", "size"))
    repo.commit("the widget's size")
    fixed = repo.release(hub, "-n", "2")
    assert fixed.returncode == 0, fixed.output
    assert hub.created("widgets", "1.0.0") == 1


@pytest.mark.process
def test_a_committed_bad_schema_refuses_the_release_before_the_hub_is_asked(
    tmp_path: Path, hub: HubProcess
) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("widgets", "1.0.0", definition_text=WIDGET_POLICY)
    repo.write("resource-schemas/widget.yaml", "type: object\nproperties: {size: {type: 3}}\n")
    repo.commit()
    result = repo.release(hub)
    assert result.returncode == 4, result.output
    assert "resource-schemas/widget.yaml: not a valid JSON Schema: 3 is not valid" in result.stderr
    assert "/policies" not in hub.stderr()


@pytest.mark.process
def test_policyhub_eval_types_resource_by_the_repositorys_schemas(tmp_path: Path) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy(
        "widgets", "1.0.0", meta=metadata("widgets", "1.0.0"), definition_text=WIDGET_POLICY
    )
    (repo.path / "w.yaml").write_text(yaml.safe_dump({"kind": "widget", "size": 3}))
    repo.write("resource-schemas/widget.json", widget_schema("size"))
    assert policyhub_eval(repo, "policies/widgets/v1.0.0", "w.yaml").stdout == (
        "w.yaml[0] widget\n  sized  pass\n"
    )
    repo.write("resource-schemas/widget.json", widget_schema("count"))
    invalid = policyhub_eval(repo, "policies/widgets/v1.0.0", "w.yaml")
    assert invalid.returncode == 1
    assert "resource has no field `size`" in invalid.stdout
    repo.write("resource-schemas/widget.json", "{")
    refused = policyhub_eval(repo, "policies/widgets/v1.0.0", "w.yaml")
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert refused.stderr == (
        "policyhub-eval: error: resource-schemas/widget.json:1: invalid JSON: Expecting property "
        "name enclosed in double quotes (column 2)\n"
    )
