"""Typed resources (docs/contract.md section 8): a repository's `resource-schemas/<kind>.json` (or
`.yaml`), JSON Schemas of the documents of each kind, read once (`ResourceSchemas.load`); and
`resource`'s one typed declaration for a policy's target kinds: their schemas merged
structurally, then made protobuf messages in the process's pool for the checking environment.

Only the checker sees these types: the running environment keeps `resource` as dyn, so a program
checked against them runs over the JSON document as it is (a missing field is an evaluation
error, `has()` tests presence, proto3's default values never appear).

From JSON Schema to CEL, as Kubernetes types a structural schema:
- `string`, `integer`, `number`, `boolean` are `string`, `int`, `double`, `bool`; one of them
  that may also be `null` (`type: [integer, "null"]`, `nullable`) is its wrapper (`int` that
  compares to `null`); `format` changes nothing (evaluation sees the JSON string);
- an array is a list of its `items`; an object with `properties` is a message with those
  fields; an object with only `additionalProperties` is `map(string, T)` (`true`: dyn values);
  with both, the map of whatever the properties and `additionalProperties` agree on;
- an open object (`type: object`, neither) is `map(string, dyn)`; a schema with no type (`{}`,
  `oneOf`s that disagree), `x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields`,
  and a `$ref` back into itself (recursion) are `dyn`;
- an object with a property that cannot be written after a `.` in CEL (`a-b`, `in`, `true`,
  `false`, `null`) is `map(string, dyn)`: `resource.labels['a-b']` reads it.

Inside a message, what protobuf cannot nest is the nearest well-known type: a list of lists is a
list of `google.protobuf.ListValue` (`list(list(dyn))`), a list or map of maps holds
`google.protobuf.Struct` (`map(string, dyn)`), and a dyn field is `google.protobuf.Value`,
which the checker types `dyn`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import re
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from policy_checks.cel import messages
from policy_checks.jsonpath import Path as JsonPath
from policy_checks.jsonpath import format_path
from policy_checks.loading import Document, load_json, load_yaml

if TYPE_CHECKING:
    import jsonschema

RESOURCE_SCHEMAS_DIR = "resource-schemas"
_LOADERS: dict[str, Callable[[bytes, str], Document]] = {
    ".json": load_json,
    ".yaml": load_yaml,
    ".yml": load_yaml,
}
# A kind as a file name can hold it: `storage.bucket`, `network.load-balancer`, `Deployment`.
KIND_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
# The words CEL's grammar reads as something else after a `.`: `resource.in` is a syntax error.
# The other reserved words (`namespace`, `as`, ...) are fields like any other for the engine.
_UNSELECTABLE = frozenset({"true", "false", "null", "in"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TYPE_PREFIX = "policyhub.resource."
# Past this many shapes one file's schema is refused: references that recurse into one another
# must not take the run's time and memory (a Kubernetes kind needs far fewer).
MAX_SHAPES = 200_000
# More `$ref`s inside one another than this is refused, far inside Python's recursion limit.
MAX_REFS = 64
# How many fields a *did you mean* message lists at most.
SHOWN_FIELDS = 25
SIZE_HINT = "keep only the schemas the kind uses, compact: jq -c (see the README's typed resources)"
# A validation message quotes the value it is about: a whole object must not flood the report.
MAX_MESSAGE = 300


# Why the readers of the folder (working tree, commit) refuse an entry of it.
LINK_REFUSED = "is a symbolic link; links are never followed"
FOLDER_REFUSED = f"is a folder; {RESOURCE_SCHEMAS_DIR}/ holds only <kind>.json or <kind>.yaml files"


class ResourceSchemaError(ValueError):
    """A file of resource-schemas/ that cannot be used: the message names the file and says what
    is wrong, in one line (a configuration error: exit 4)."""


def schema_file_ignored(name: str) -> bool:
    """A file of resource-schemas/ that is no schema: a README, a dotfile (`.gitkeep`)."""
    return name.startswith(".") or name.upper().startswith("README")


# -- shapes: the CEL type of a schema, before it is declared --------------------------------------


@dataclass(frozen=True, eq=False)
class Shape:
    """What a schema says of a value's type: `kind` is `dyn`, `null`, `string`, `int`, `double`,
    `bool`, `list` (of `item`), `map` (string keys, `item` values) or `object` (`fields`, sorted
    by name); `nullable` for a scalar that may also be null."""

    kind: str
    item: Shape | None = None
    fields: tuple[tuple[str, Shape], ...] = ()
    nullable: bool = False

    @functools.cached_property
    def key(self) -> str:
        """Equal shapes, equal keys (and one message). An object's key is a digest of its
        fields' keys, so that a key stays short however large the type it stands for (a
        Kubernetes kind reaches one shape by many paths)."""
        if self.kind in ("list", "map"):
            assert self.item is not None
            return f"{self.kind}({self.item.key})"
        if self.kind == "object":
            content = ",".join(f"{name}:{shape.key}" for name, shape in self.fields)
            return "#" + hashlib.sha256(content.encode()).hexdigest()[:32]
        return self.kind + ("?" if self.nullable else "")

    @property
    def text(self) -> str:
        """The shape written out (`{a:int,b:list(string)}`), for tests and reading."""
        if self.kind in ("list", "map"):
            assert self.item is not None
            return f"{self.kind}({self.item.text})"
        if self.kind == "object":
            return "{" + ",".join(f"{name}:{shape.text}" for name, shape in self.fields) + "}"
        return self.key


DYN = Shape("dyn")
NULL = Shape("null")
SCALARS = {"string": "string", "integer": "int", "number": "double", "boolean": "bool"}


def merge(a: Shape, b: Shape) -> Shape:
    """One shape for a value that either shape may describe: a field either declares exists,
    the same type stays, different types are dyn."""
    if a.key == b.key:
        return a
    if a.kind == "dyn" or b.kind == "dyn":
        return DYN
    if a.kind == "null" or b.kind == "null":
        other = b if a.kind == "null" else a
        if other.kind == "object":  # a message compares to null as it is
            return other
        if other.kind in SCALARS.values():
            return Shape(other.kind, nullable=True)
        return DYN
    if a.kind != b.kind:
        return DYN
    if a.kind in ("list", "map"):
        assert a.item is not None and b.item is not None
        return Shape(a.kind, merge(a.item, b.item))
    if a.kind == "object":
        fields = dict(a.fields)
        for name, shape in b.fields:
            fields[name] = merge(fields[name], shape) if name in fields else shape
        return Shape("object", fields=tuple(sorted(fields.items())))
    return Shape(a.kind, nullable=a.nullable or b.nullable)  # one scalar, null on one side


def merge_all(shapes: Iterable[Shape]) -> Shape:
    return functools.reduce(merge, shapes)


def selectable(name: str) -> bool:
    """Whether `resource.<name>` can be written in CEL."""
    return _IDENTIFIER.fullmatch(name) is not None and name not in _UNSELECTABLE


class _Reader:
    """The shape of one schema file, `$ref`s resolved within it (a JSON pointer, `#/$defs/X` or
    `#/components/schemas/X`), each reached target checked as a JSON Schema."""

    def __init__(self, document: Any, file: str, *, check: bool = True) -> None:
        self.document = document
        self.file = file
        self.check = check
        self._memo: dict[str, Shape] = {}
        self._checked = {"#"}  # `shape_of` has checked the whole file
        # The outermost place on the stack that a recursion point cut back to, since the
        # current reference began: a shape whose cuts all go back to its own reference is the
        # same wherever it is met, and is made once.
        self._lowest = sys.maxsize
        self._count = 0

    def read(self) -> Shape:
        try:
            return self._shape(self.document, "#", ("#",))
        except RecursionError:
            raise self._fail("#", "the schema is nested too deeply") from None

    def _fail(self, at: str, why: str) -> ResourceSchemaError:
        return ResourceSchemaError(f"{self.file}: {why} (at {at})")

    def _shape(self, node: Any, at: str, stack: tuple[str, ...]) -> Shape:
        self._count += 1
        if self._count > MAX_SHAPES:
            raise self._fail(at, f"the schema expands to more than {MAX_SHAPES} types")
        if not isinstance(node, dict):
            return DYN  # `true`, `false`: no type to speak of
        if node.get("x-kubernetes-int-or-string") is True:
            return DYN
        if node.get("x-kubernetes-preserve-unknown-fields") is True:
            return DYN
        if node.get("format") == "int-or-string":  # OpenAPI v2's IntOrString
            return DYN
        ref = node.get("$ref")
        if isinstance(ref, str):
            # The reference gives the type; its siblings (description, default) do not.
            return self._ref(ref, at, stack)
        shapes = self._own(node, at, stack)
        for keyword in ("allOf", "anyOf", "oneOf"):
            parts = node.get(keyword)
            # anyOf and oneOf beside a type only constrain values (Kubernetes' structural
            # schemas); alone they say the type, as allOf does always.
            if isinstance(parts, list) and parts and (keyword == "allOf" or not shapes):
                shapes.append(
                    merge_all(
                        self._shape(part, f"{at}/{keyword}/{index}", stack)
                        for index, part in enumerate(parts)
                    )
                )
        if node.get("nullable") is True:  # OpenAPI 3.0
            shapes.append(NULL)
        return merge_all(shapes) if shapes else DYN

    def _own(self, node: dict[str, Any], at: str, stack: tuple[str, ...]) -> list[Shape]:
        """The shapes of a node's `type` (each of a list), or the type its keywords imply."""
        declared = node.get("type")
        types = declared if isinstance(declared, list) else [declared] if declared else []
        if not types:
            if "properties" in node or "additionalProperties" in node:
                types = ["object"]
            elif "items" in node or "prefixItems" in node:
                types = ["array"]
            else:
                values = node.get("enum", [node["const"]] if "const" in node else None)
                if isinstance(values, list) and values:
                    return [merge_all(_value_shape(value) for value in values)]
        shapes = []
        for name in types:
            if name in SCALARS:
                shapes.append(Shape(SCALARS[name]))
            elif name == "null":
                shapes.append(NULL)
            elif name == "array":
                items = node.get("items")
                item = self._shape(items, f"{at}/items", stack) if items else DYN
                shapes.append(Shape("list", item))
            elif name == "object":
                shapes.append(self._object(node, at, stack))
        return shapes

    def _object(self, node: dict[str, Any], at: str, stack: tuple[str, ...]) -> Shape:
        properties = node.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        extra = node.get("additionalProperties")
        others: Shape | None = None
        if extra is True:
            others = DYN
        elif isinstance(extra, dict):
            others = self._shape(extra, f"{at}/additionalProperties", stack)
        fields = {
            name: self._shape(value, f"{at}/properties/{_escape(name)}", stack)
            for name, value in properties.items()
        }
        if not fields:
            return Shape("map", others or DYN)  # only additionalProperties, or an open object
        if others is not None:
            # Any key may be there: a map, of what every value agrees on.
            return Shape("map", merge_all([others, *fields.values()]))
        if not all(selectable(name) for name in fields):
            return Shape("map", DYN)
        return Shape("object", fields=tuple(sorted(fields.items())))

    def _ref(self, ref: str, at: str, stack: tuple[str, ...]) -> Shape:
        if ref in stack:
            self._lowest = min(self._lowest, stack.index(ref))
            return DYN  # recursion: the type stops here
        memo = self._memo.get(ref)
        if memo is not None:
            return memo
        if len(stack) > MAX_REFS:
            raise self._fail(at, f"more than {MAX_REFS} references inside one another")
        target = self._resolve(ref, at)
        outer, self._lowest = self._lowest, sys.maxsize
        shape = self._shape(target, ref, (*stack, ref))
        if self._lowest >= len(stack):  # cut back to `ref` itself, or never
            self._memo[ref] = shape
        self._lowest = min(outer, self._lowest)
        return shape

    def _resolve(self, ref: str, at: str) -> Any:
        if ref != "#" and not ref.startswith("#/"):
            raise self._fail(
                at,
                f"$ref {ref!r} is not a reference within the file: write a JSON pointer "
                "such as #/$defs/Name",
            )
        node = self.document
        for raw in ref[2:].split("/") if ref != "#" else []:
            token = urllib.parse.unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                raise self._fail(at, f"$ref {ref!r} does not resolve within the file")
        covered = ref.split("/")[1:2] in (["$defs"], ["definitions"])
        if self.check and ref not in self._checked and not covered:
            # The file's own check covers its `$defs`, but not `components` or another keyword
            # JSON Schema does not know.
            _check_schema(node, self.file, ref)
            self._checked.add(ref)
        return node


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _value_shape(value: Any) -> Shape:
    """The shape of an `enum` or `const` value."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return Shape("bool")
    if isinstance(value, int):
        return Shape("int")
    if isinstance(value, float):
        return Shape("double")
    if isinstance(value, str):
        return Shape("string")
    return DYN


def _check_schema(schema: Any, file: str, at: str = "#") -> None:
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = at + "".join(f"/{_escape(str(p))}" for p in exc.absolute_path)
        raise ResourceSchemaError(
            f"{file}: not a valid JSON Schema: {exc.message} (at {where})"
        ) from None


def shape_of(schema: Any, file: str = "<schema>", *, check: bool = True) -> Shape:
    """The shape of one schema document; raises ResourceSchemaError. Without `check`, the
    document and what its references reach are not checked as JSON Schemas (another process
    has: jsonschema's meta-validation takes seconds on a large OpenAPI document)."""
    if check:
        _check_schema(schema, file)
    return _Reader(schema, file, check=check).read()


# -- declaring shapes as protobuf messages -------------------------------------------------------

_declared: dict[str, str] = {}  # shape key -> its CEL type word
_verified: set[str] = set()
_lock = threading.RLock()
_FIELD = None  # descriptor_pb2.FieldDescriptorProto, once imported


def _proto() -> Any:
    global _FIELD
    if _FIELD is None:
        from google.protobuf import descriptor_pb2, wrappers_pb2

        # The wrappers (nullable scalars) beside struct.proto, which the pool always has.
        messages.add_file(
            descriptor_pb2.FileDescriptorProto.FromString(wrappers_pb2.DESCRIPTOR.serialized_pb)
        )
        _FIELD = descriptor_pb2.FieldDescriptorProto
    return _FIELD


_WRAPPERS = {
    "string": ".google.protobuf.StringValue",
    "int": ".google.protobuf.Int64Value",
    "double": ".google.protobuf.DoubleValue",
    "bool": ".google.protobuf.BoolValue",
}


def _camel(name: str, *, upper_first: bool) -> str:
    """protobuf's ToCamelCase / ToJsonName: `_x` becomes `X`."""
    out, upper = [], upper_first
    for char in name:
        if char == "_":
            upper = True
        elif upper:
            out.append(char.upper())
            upper = False
        else:
            out.append(char)
    return "".join(out)


def _map_entry(name: str) -> str:
    # protobuf requires this very name of a map field's entry message.
    return _camel(name, upper_first=True) + "Entry"


def _clashes(shape: Shape) -> bool:
    """Whether protobuf would refuse these field names in one message: two with one JSON name
    (`a_b`, `aB`), or a map field's entry message named like another name of the message."""
    json_names = [_camel(name, upper_first=False) for name, _ in shape.fields]
    entries = [_map_entry(name) for name, field_shape in shape.fields if field_shape.kind == "map"]
    names = [name for name, _ in shape.fields] + entries
    return len(set(json_names)) < len(json_names) or len(set(names)) < len(names)


def type_word_of(shape: Shape) -> str:
    """The CEL type word of a shape (`policy_checks.cel.types`), its messages declared."""
    with _lock:
        word = _declared.get(shape.key)
        if word is None:
            word = _declared[shape.key] = _word(shape)
        return word


def _word(shape: Shape) -> str:
    if shape.kind in ("list", "map"):
        assert shape.item is not None
        inner = type_word_of(shape.item)
        return f"list({inner})" if shape.kind == "list" else f"map(string, {inner})"
    if shape.kind == "object":
        return _message(shape) or "map(string, dyn)"
    if shape.kind in _WRAPPERS and not shape.nullable:
        return shape.kind
    return "dyn"  # dyn, null, and a nullable scalar on its own


def _message(shape: Shape) -> str | None:
    """The full name of the message of an object shape, declared once in its own file named
    by a digest of the shape; None when protobuf cannot hold its names (it is a map then)."""
    if _clashes(shape):
        return None
    field_proto = _proto()
    from google.protobuf import descriptor_pb2

    digest = shape.key.removeprefix("#")[:24]
    package = f"{TYPE_PREFIX}t{digest}"
    full = f"{package}.Object"
    file = descriptor_pb2.FileDescriptorProto(
        name=f"policyhub/resource/{digest}.proto", package=package, syntax="proto3"
    )
    dependencies = {"google/protobuf/struct.proto", "google/protobuf/wrappers.proto"}
    message = file.message_type.add(name="Object")
    for number, (name, value) in enumerate(shape.fields, start=1):
        if value.kind == "map":
            assert value.item is not None
            entry = message.nested_type.add(name=_map_entry(name))
            entry.options.map_entry = True
            optional = field_proto.LABEL_OPTIONAL
            entry.field.add(name="key", number=1, type=field_proto.TYPE_STRING, label=optional)
            element = entry.field.add(name="value", number=2, label=optional)
            _element(element, value.item, dependencies)
            message.field.add(
                name=name,
                number=number,
                label=field_proto.LABEL_REPEATED,
                type=field_proto.TYPE_MESSAGE,
                type_name=f".{full}.{entry.name}",
            )
        elif value.kind == "list":
            assert value.item is not None
            repeated = message.field.add(name=name, number=number)
            _element(repeated, value.item, dependencies)
            repeated.label = field_proto.LABEL_REPEATED
        elif value.kind in _WRAPPERS and value.nullable:
            message.field.add(
                name=name,
                number=number,
                type=field_proto.TYPE_MESSAGE,
                type_name=_WRAPPERS[value.kind],
            )
        else:
            _element(message.field.add(name=name, number=number), value, dependencies)
    file.dependency.extend(sorted(dependencies))
    messages.add_file(file)
    return full


def _element(proto: Any, shape: Shape, dependencies: set[str]) -> None:
    """Types `proto` (a field, a list's element, a map's value) as `shape`, as near as a
    protobuf field can: what cannot nest is a well-known type the checker knows."""
    field_proto = _proto()
    scalars = {
        "string": field_proto.TYPE_STRING,
        "int": field_proto.TYPE_INT64,
        "double": field_proto.TYPE_DOUBLE,
        "bool": field_proto.TYPE_BOOL,
    }
    if shape.kind in scalars and not shape.nullable:
        proto.type = scalars[shape.kind]
        return
    proto.type = field_proto.TYPE_MESSAGE
    if shape.kind == "object":
        full = _declared_message(shape)
        if full is not None:
            proto.type_name = f".{full}"
            dependencies.add(messages.pool().FindMessageTypeByName(full).file.name)
            return
        proto.type_name = ".google.protobuf.Struct"
    elif shape.kind == "list":
        proto.type_name = ".google.protobuf.ListValue"
    elif shape.kind == "map":
        proto.type_name = ".google.protobuf.Struct"
    else:
        proto.type_name = ".google.protobuf.Value"


def _declared_message(shape: Shape) -> str | None:
    word = type_word_of(shape)
    return None if word.startswith("map(") else word


def _verify(word: str, shape: Shape) -> None:
    """The engine must know a declared message: a descriptor protobuf's C++ side refuses is
    only logged there, and every field of it would then read as unknown."""
    if shape.kind != "object" or not word.startswith(TYPE_PREFIX) or word in _verified:
        return
    from cel_expr_python import cel

    env = cel.NewEnv(descriptor_pool=messages.pool(), variables={"r": cel.Type(word)})
    try:
        env.compile(f"has(r.{shape.fields[0][0]})")
    except Exception as exc:
        raise RuntimeError(f"the engine does not know the declared type {word}: {exc}") from None
    _verified.add(word)


def declare(shape: Shape) -> str:
    """`shape` as a CEL type word for `resource`, its messages in the pool and known to the
    engine."""
    with _lock:
        word = type_word_of(shape)
        _verify(word, shape)
        return word


def type_word(schemas: Sequence[Any]) -> str:
    """The type word of a value any of `schemas` (JSON Schema documents) describes, as a
    variable is declared: `policy_checks.cel.environment.run_expression` types its variables so."""
    return declare(merge_all(shape_of(schema) for schema in schemas))


def fields_of(type_name: str) -> list[str] | None:
    """The fields of a declared resource message, for *did you mean*; None for another type."""
    if not type_name.startswith(TYPE_PREFIX):
        return None
    try:
        descriptor = messages.pool().FindMessageTypeByName(type_name)
    except KeyError:
        return None
    return sorted(f.name for f in descriptor.fields)


def nearest(name: str, candidates: Sequence[str]) -> str | None:
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return match[0] if match else None


def operand_at(text: str, offset: int) -> str:
    """The expression whose field is selected at `offset` (its `.`): `resource.spec`,
    `c`, `resource.items[0]`; "" when it is not that simple."""
    if offset > 0 and text[offset:].startswith("(") and text[:offset].endswith("has"):
        # The engine points at the macro's `(`: the select is its argument's last `.`.
        inner, depth = offset + 1, 0
        for end in range(inner, len(text)):
            depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(text[end], 0)
            if depth < 0:
                offset = text.rfind(".", inner, end)
                break
    if not 0 < offset <= len(text) or not text[offset:].startswith("."):
        return ""
    start, depth = offset, 0
    while start > 0:
        char = text[start - 1]
        if char in ")]":
            depth += 1
        elif char in "([":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and not (char.isalnum() or char in "_.?"):
            break
        start -= 1
    operand = text[start:offset].strip()
    return operand if len(operand) <= 80 and "\n" not in operand else ""


def readable(text: str) -> str:
    """An engine message with each resource message's full name as `object`."""
    return re.sub(r"policyhub\.resource\.t[0-9a-f]+\.Object", "object", text)


# -- a repository's schemas -----------------------------------------------------------------------


def _nothing_conforms(resource: Any) -> bool:
    return False


@dataclass
class ResourceSchemas:
    """The schemas of resource-schemas/, by kind: each one's document and shape, read and
    checked once; `type_word` gives `resource`'s declaration for a set of target kinds."""

    documents: dict[str, Any] = field(default_factory=dict)  # kind -> the schema document
    files: dict[str, str] = field(default_factory=dict)  # kind -> its file, as messages name it
    shapes: dict[str, Shape] = field(default_factory=dict)
    _words: dict[tuple[str, ...], str] = field(default_factory=dict, repr=False)
    _validators: dict[str, jsonschema.protocols.Validator] = field(default_factory=dict, repr=False)
    _predicates: dict[str, Callable[[Any], bool]] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, files: Mapping[str, bytes], *, checked: bool = False) -> ResourceSchemas:
        """From file name (`resource-schemas/<kind>.json`, as messages show it) to bytes; raises
        ResourceSchemaError on the first file that is not a schema of a kind. `checked`: the
        same bytes have passed this process's controller, which checked them as JSON Schemas."""
        schemas = cls()
        for path in sorted(files):
            name = PurePosixPath(path).name
            if schema_file_ignored(name):
                continue
            stem, dot, suffix = name.rpartition(".")
            loader = _LOADERS.get(f"{dot}{suffix}".lower())
            if loader is None or not KIND_RE.fullmatch(stem):
                raise ResourceSchemaError(
                    f"{path}: not a schema file name: {RESOURCE_SCHEMAS_DIR}/ holds <kind>.json or "
                    "<kind>.yaml, the kind as resources write it (storage.bucket.json, "
                    "Deployment.yaml)"
                )
            if stem in schemas.files:
                raise ResourceSchemaError(
                    f"{path}: a second schema of kind {stem} (and {schemas.files[stem]}): keep one"
                )
            document = loader(files[path], path)
            if not document.ok:
                first, more = document.findings[0], len(document.findings) - 1
                if first.rule == "file-size":  # the loader's hint speaks of policy files
                    first = dataclasses.replace(first, hint=SIZE_HINT)
                raise ResourceSchemaError(first.render() + (f" (and {more} more)" if more else ""))
            if not isinstance(document.value, dict):
                raise ResourceSchemaError(f"{path}: a JSON Schema must be an object")
            schemas.files[stem] = path
            schemas.documents[stem] = document.value
            schemas.shapes[stem] = shape_of(document.value, path, check=not checked)
        return schemas

    @property
    def kinds(self) -> list[str]:
        return sorted(self.files)

    def type_word(self, kinds: Sequence[str]) -> str | None:
        """`resource`'s type word for a policy whose targets are `kinds`: their schemas merged;
        None (resource stays dyn) when there are none or any kind lacks a schema."""
        wanted = tuple(sorted(set(kinds)))
        if not wanted or any(kind not in self.shapes for kind in wanted):
            return None
        word = self._words.get(wanted)
        if word is None:
            word = self._words[wanted] = declare(merge_all(self.shapes[k] for k in wanted))
        return word

    def validate(self, resource: Any) -> list[tuple[JsonPath, str]]:
        """(JSON path, message) of each way `resource` breaks its kind's schema; [] when it
        conforms or its `kind` has no schema."""
        kind = resource.get("kind") if isinstance(resource, dict) else None
        if not isinstance(kind, str) or kind not in self.documents:
            return []
        if self._conforms(kind)(resource):
            return []  # the common case, without jsonschema (a third of a case's cost)
        from jsonschema.exceptions import best_match

        problems: list[tuple[JsonPath, str]] = []
        for error in self._validator(kind).iter_errors(resource):
            # best_match descends into anyOf/oneOf to the most relevant cause.
            error = best_match([error]) or error
            path: JsonPath = tuple(error.absolute_path)
            schema = error.schema if isinstance(error.schema, dict) else {}
            known = [str(key) for key in schema.get("properties", {})]
            unknown = (
                [str(key) for key in error.instance if key not in known]
                if isinstance(error.instance, dict)
                else []
            )
            if error.validator == "additionalProperties":
                # At the key itself, with the field it was likely meant to be.
                for key in unknown:
                    match = nearest(key, known)
                    problems.append(
                        (
                            (*path, key),
                            f"unknown field {key!r}"
                            + (f"; did you mean {match!r}?" if match else ""),
                        )
                    )
                continue
            wanted = re.fullmatch(r"'(.+)' is a required property", error.message)
            misspelt = (
                nearest(wanted[1], unknown) if error.validator == "required" and wanted else None
            )
            if wanted and misspelt:
                # One mistake, not two: the required field is there, misspelt.
                message = (
                    f"unknown field {misspelt!r}; did you mean {wanted[1]!r} (required, missing)?"
                )
                problems.append(((*path, misspelt), message))
                continue
            message = error.message
            if len(message) > MAX_MESSAGE:
                message = message[: MAX_MESSAGE - 1] + "…"
            problems.append((path, message))
        return sorted(problems, key=lambda problem: format_path(problem[0]))

    def _conforms(self, kind: str) -> Callable[[Any], bool]:
        """A fast predicate equal to jsonschema's verdict where it accepts (policy_checks.
        fastschema); a schema beyond its subset gets one that sends every resource to
        jsonschema."""
        predicate = self._predicates.get(kind)
        if predicate is None:
            from policy_checks.fastschema import OutsideSubset, compile_predicate

            try:
                predicate = compile_predicate(self.documents[kind], f"{kind}.schema")
            except OutsideSubset:
                predicate = _nothing_conforms
            self._predicates[kind] = predicate
        return predicate

    def _validator(self, kind: str) -> jsonschema.protocols.Validator:
        validator = self._validators.get(kind)
        if validator is None:
            import jsonschema

            validator = jsonschema.Draft202012Validator(self.documents[kind])
            self._validators[kind] = validator
        return validator
