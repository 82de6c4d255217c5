"""A checked expression read back (cel.expr.CheckedExpr, what `Expression.serialize()` holds in
a google.protobuf.Any): the calls whose arguments are string literals, with their offsets, so
that a literal no library can parse (`'^[a-z'.matches(...)`, `quantity('1x')`) is refused when
compiling, at its column; and the program rewritten for the running environment, each call of
a library's function routed to the overload the checker resolved it to, and the calls of
overloads whose result is optional wrapped in `optional.ofNonZeroValue` (the engine's Python
binding cannot make an optional value: `policy_checks.cel.types`).

The message types are declared here with only the fields read (protobuf skips the others), in a
package of our own, so nothing depends on the cel-spec protos being importable; proto2, so that
a field's presence tells which kind of expression a node is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from policy_checks.cel import messages

_PACKAGE = "policyhub.celast"


@dataclass(frozen=True)
class LiteralArgument:
    function: str
    position: int  # 0 = the receiver of a member call, else the argument's index (from 0)
    member: bool
    text: str
    offset: int  # characters into the expression, of the literal (its opening quote)
    overload_ids: tuple[str, ...] = ()  # what the checker resolved the call to


@cache
def _declare() -> None:
    from google.protobuf import descriptor_pb2

    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="policyhub/celast.proto", package=_PACKAGE, syntax="proto2"
    )

    def message(name: str, *fields: tuple[str, int, int, str | None, bool]) -> Any:
        proto = file.message_type.add(name=name)
        for fname, number, ftype, type_name, repeated in fields:
            added = proto.field.add(
                name=fname,
                number=number,
                type=ftype,
                label=field.LABEL_REPEATED if repeated else field.LABEL_OPTIONAL,
            )
            if type_name:
                added.type_name = f".{_PACKAGE}.{type_name}"
        return proto

    msg, string, int64, int32 = (
        field.TYPE_MESSAGE,
        field.TYPE_STRING,
        field.TYPE_INT64,
        field.TYPE_INT32,
    )
    message("Any", ("value", 2, field.TYPE_BYTES, None, False))
    message(
        "Constant",
        ("null_value", 1, field.TYPE_INT32, None, False),
        ("bool_value", 2, field.TYPE_BOOL, None, False),
        ("int64_value", 3, int64, None, False),
        ("uint64_value", 4, field.TYPE_UINT64, None, False),
        ("double_value", 5, field.TYPE_DOUBLE, None, False),
        ("string_value", 6, string, None, False),
        ("bytes_value", 7, field.TYPE_BYTES, None, False),
    )
    message(
        "Call",
        ("target", 1, msg, "Expr", False),
        ("function", 2, string, None, False),
        ("args", 3, msg, "Expr", True),
    )
    message("Select", ("operand", 1, msg, "Expr", False))
    message("CreateList", ("elements", 1, msg, "Expr", True))
    message("Entry", ("map_key", 3, msg, "Expr", False), ("value", 4, msg, "Expr", False))
    message(
        "CreateStruct",
        ("message_name", 1, string, None, False),
        ("entries", 2, msg, "Entry", True),
    )
    message(
        "Comprehension",
        ("iter_range", 2, msg, "Expr", False),
        ("accu_init", 4, msg, "Expr", False),
        ("loop_condition", 5, msg, "Expr", False),
        ("loop_step", 6, msg, "Expr", False),
        ("result", 7, msg, "Expr", False),
    )
    message(
        "Expr",
        ("id", 2, int64, None, False),
        ("const_expr", 3, msg, "Constant", False),
        ("select_expr", 5, msg, "Select", False),
        ("call_expr", 6, msg, "Call", False),
        ("list_expr", 7, msg, "CreateList", False),
        ("struct_expr", 8, msg, "CreateStruct", False),
        ("comprehension_expr", 9, msg, "Comprehension", False),
    )
    positions = message(
        "PositionsEntry", ("key", 1, int64, None, False), ("value", 2, int32, None, False)
    )
    positions.options.map_entry = True
    source = file.message_type.add(name="SourceInfo")
    source.nested_type.add().CopyFrom(positions)
    file.message_type.remove(positions)
    source.field.add(
        name="positions",
        number=4,
        type=msg,
        label=field.LABEL_REPEATED,
        type_name=f".{_PACKAGE}.SourceInfo.PositionsEntry",
    )
    references = message(
        "ReferenceMapEntry", ("key", 1, int64, None, False), ("value", 2, msg, "Reference", False)
    )
    references.options.map_entry = True
    message("Reference", ("overload_id", 3, string, None, True))
    checked = message(
        "CheckedExpr", ("expr", 4, msg, "Expr", False), ("source_info", 5, msg, "SourceInfo", False)
    )
    checked.nested_type.add().CopyFrom(references)
    file.message_type.remove(references)
    checked.field.add(
        name="reference_map",
        number=2,
        type=msg,
        label=field.LABEL_REPEATED,
        type_name=f".{_PACKAGE}.CheckedExpr.ReferenceMapEntry",
    )
    messages.add_file(file)


def _read(serialized: bytes) -> tuple[Any, Any]:
    _declare()
    wrapper = messages.message_class(f"{_PACKAGE}.Any")()
    wrapper.ParseFromString(serialized)
    checked = messages.message_class(f"{_PACKAGE}.CheckedExpr")()
    checked.ParseFromString(wrapper.value)
    return wrapper, checked


def _children(expr: Any) -> list[Any]:
    kind = _kind(expr)
    if kind == "call_expr":
        call = expr.call_expr
        return ([call.target] if call.HasField("target") else []) + list(call.args)
    if kind == "select_expr":
        return [expr.select_expr.operand]
    if kind == "list_expr":
        return list(expr.list_expr.elements)
    if kind == "struct_expr":
        return [e for entry in expr.struct_expr.entries for e in (entry.map_key, entry.value)]
    if kind == "comprehension_expr":
        c = expr.comprehension_expr
        return [c.iter_range, c.accu_init, c.loop_condition, c.loop_step, c.result]
    return []


def rewrite_calls(
    serialized: bytes,
    route: Callable[[frozenset[str]], str | None],
    wrapped: frozenset[str],
    wrapper_function: str,
) -> bytes:
    """The program with its calls rewritten by what the checker resolved them to (their
    overload ids): a call that `route` names a function for calls that function instead (same
    target, same arguments); a call resolved only to overloads in `wrapped` becomes the argument
    of a call of the global `wrapper_function`, which keeps the call's id (so its checked type
    stays the wrapper's result). Unchanged bytes when nothing is to change. Fields this module
    does not declare (types, macro calls) are carried through as they are."""
    wrapper, checked = _read(serialized)
    references = {
        key: frozenset(ref.overload_id)
        for key, ref in checked.reference_map.items()
        if ref.overload_id
    }
    to_wrap: list[Any] = []
    changed = False
    largest = 0
    stack = [checked.expr]
    while stack:  # parents are found before their children
        expr = stack.pop()
        largest = max(largest, expr.id)
        ids = references.get(expr.id)
        if ids and _kind(expr) == "call_expr":
            name = route(ids)
            if name is not None:
                expr.call_expr.function = name
                changed = True
            if ids <= wrapped:
                to_wrap.append(expr)
        stack.extend(_children(expr))
    for expr in reversed(to_wrap):  # children first: a parent's copy holds its wrapped children
        largest += 1
        inner = type(expr)()
        inner.CopyFrom(expr)
        inner.id = largest
        expr.call_expr.Clear()
        expr.call_expr.function = wrapper_function
        expr.call_expr.args.add().CopyFrom(inner)
        del checked.reference_map[expr.id]
        checked.reference_map[inner.id].overload_id.extend(sorted(references[expr.id]))
    if not (changed or to_wrap):
        return serialized
    wrapper.value = checked.SerializeToString()
    return bytes(wrapper.SerializeToString())


def literal_arguments(serialized: bytes) -> Iterator[LiteralArgument]:
    """Every call argument (and member receiver) that is a string literal, in source order."""
    _wrapper, checked = _read(serialized)
    positions = dict(checked.source_info.positions)
    references = {key: tuple(ref.overload_id) for key, ref in checked.reference_map.items()}
    found: list[LiteralArgument] = []
    stack = [checked.expr]
    while stack:
        expr = stack.pop()
        kind = _kind(expr)
        if kind == "call_expr":
            call = expr.call_expr
            member = call.HasField("target")
            arguments = ([call.target] if member else []) + list(call.args)
            for position, argument in enumerate(arguments):
                if _kind(argument) == "const_expr" and argument.const_expr.HasField("string_value"):
                    found.append(
                        LiteralArgument(
                            call.function,
                            position,
                            member,
                            argument.const_expr.string_value,
                            positions.get(argument.id, -1),
                            references.get(expr.id, ()),
                        )
                    )
        stack.extend(_children(expr))
    yield from sorted(found, key=lambda a: a.offset)


_CONSTANT_TYPES = {
    "null_value": "null_type",
    "bool_value": "bool",
    "int64_value": "int",
    "uint64_value": "uint",
    "double_value": "double",
    "string_value": "string",
    "bytes_value": "bytes",
}


def mixed_literals(serialized: bytes) -> list[tuple[int, str]]:
    """List literals whose constant elements are of different types (`['a', 1]`), as
    (offset, message): cel-go's HomogeneousAggregateLiterals, which Kubernetes enables, refuses
    them when compiling. Only constant elements are compared (the engine's checker does not say
    what type it gave the others). The arguments of `format` are exempt, as the strings
    extension exempts them in cel-go."""
    _wrapper, checked = _read(serialized)
    positions = dict(checked.source_info.positions)
    found: list[tuple[int, str]] = []
    exempt: set[int] = set()
    stack = [checked.expr]
    while stack:
        expr = stack.pop()
        if _kind(expr) == "call_expr" and expr.call_expr.function == "format":
            exempt.update(argument.id for argument in expr.call_expr.args)
        if expr.id in exempt:
            pass
        elif _kind(expr) == "list_expr":
            found.extend(_mixed(list(expr.list_expr.elements), "list", positions))
        elif _kind(expr) == "struct_expr" and not expr.struct_expr.message_name:
            entries = list(expr.struct_expr.entries)
            found.extend(_mixed([e.map_key for e in entries], "map key", positions))
            found.extend(_mixed([e.value for e in entries], "map value", positions))
        stack.extend(_children(expr))
    return sorted(found)


def _mixed(elements: list[Any], what: str, positions: dict[int, int]) -> list[tuple[int, str]]:
    first: str | None = None
    for element in elements:
        if _kind(element) != "const_expr":
            continue
        kind = _constant_type(element.const_expr)
        if first is None:
            first = kind
        elif kind != first:
            message = f"a {what} literal mixes types: expected type '{first}' but found '{kind}'"
            return [(positions.get(element.id, -1), message)]
    return []


def _constant_type(constant: Any) -> str:
    for name, word in _CONSTANT_TYPES.items():
        if constant.HasField(name):
            return word
    return "null_type"


def _kind(expr: Any) -> str | None:
    for name in (
        "call_expr",
        "select_expr",
        "list_expr",
        "struct_expr",
        "comprehension_expr",
        "const_expr",
    ):
        if expr.HasField(name):
            return name
    return None
