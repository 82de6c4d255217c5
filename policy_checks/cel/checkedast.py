"""A checked expression read back (cel.expr.CheckedExpr, what `Expression.serialize()` holds in
a google.protobuf.Any): the calls whose arguments are string literals, with their offsets, so
that a literal no library can parse (`'^[a-z'.matches(...)`, `quantity('1x')`) is refused when
compiling, at its column.

The message types are declared here with only the fields read (protobuf skips the others), in a
package of our own, so nothing depends on the cel-spec protos being importable; proto2, so that
a field's presence tells which kind of expression a node is.
"""

from __future__ import annotations

from collections.abc import Iterator
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
    message("Constant", ("string_value", 6, string, None, False))
    message(
        "Call",
        ("target", 1, msg, "Expr", False),
        ("function", 2, string, None, False),
        ("args", 3, msg, "Expr", True),
    )
    message("Select", ("operand", 1, msg, "Expr", False))
    message("CreateList", ("elements", 1, msg, "Expr", True))
    message("Entry", ("map_key", 3, msg, "Expr", False), ("value", 4, msg, "Expr", False))
    message("CreateStruct", ("entries", 2, msg, "Entry", True))
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
    message(
        "CheckedExpr", ("expr", 4, msg, "Expr", False), ("source_info", 5, msg, "SourceInfo", False)
    )
    messages.add_file(file)


def literal_arguments(serialized: bytes) -> Iterator[LiteralArgument]:
    """Every call argument (and member receiver) that is a string literal, in source order."""
    _declare()
    wrapper = messages.message_class(f"{_PACKAGE}.Any")()
    wrapper.ParseFromString(serialized)
    checked = messages.message_class(f"{_PACKAGE}.CheckedExpr")()
    checked.ParseFromString(wrapper.value)
    positions = dict(checked.source_info.positions)
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
                        )
                    )
            stack.extend(arguments)
        elif kind == "select_expr":
            stack.append(expr.select_expr.operand)
        elif kind == "list_expr":
            stack.extend(expr.list_expr.elements)
        elif kind == "struct_expr":
            for entry in expr.struct_expr.entries:
                stack.extend((entry.map_key, entry.value))
        elif kind == "comprehension_expr":
            c = expr.comprehension_expr
            stack.extend((c.iter_range, c.accu_init, c.loop_condition, c.loop_step, c.result))
    yield from sorted(found, key=lambda a: a.offset)


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
