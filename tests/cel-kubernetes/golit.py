"""A reader for the subset of Go that Kubernetes' CEL test tables are written in.

convert.py uses it to turn the table literals of `*_test.go` files into Python values without
running Go: composite literals (`[]interface{}{...}`, `map[string]interface{}{...}`,
`schema.Structural{...}`, elided `{...}` elements), string literals (raw `...` and interpreted
"..." with Go's escapes), numbers, calls of the tests' helper functions (given to the Evaluator as
Python functions), selectors such as `math.MaxInt64`, and `+ - * /`.

It is not a Go parser: statements are not read (convert.py finds a table by its `name := ` and
reads the expression that follows), and anything it does not know raises GoError, so that a
change upstream is noticed instead of being converted wrongly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class GoError(Exception):
    """Go text this reader cannot read or evaluate."""


# ---------------------------------------------------------------------------------------------
# Tokens


@dataclass
class Tok:
    kind: str  # ident, int, float, str, char, op, eof
    val: Any
    pos: int
    end: int


_OPS = sorted(
    [
        ":=", "...", "&&", "||", "==", "!=", "<=", ">=", "<<", ">>", "&^", "++", "--", "<-",
        "+=", "-=", "*=", "/=",
        "+", "-", "*", "/", "%", "&", "|", "^", "<", ">", "=", "!", "(", ")", "[", "]", "{",
        "}", ",", ";", ".", ":",
    ],
    key=len,
    reverse=True,
)  # fmt: skip

_SIMPLE_ESCAPES = {
    "a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, "'": 39, '"': 34,
}  # fmt: skip

_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+"
    r"|(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9_]+)?"
)
_IDENT = re.compile(r"[^\W\d]\w*")


def _decode_escapes(body: str, quote: str) -> str:
    """The value of a Go interpreted string or rune literal body (without the quotes)."""
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        e = body[i + 1]
        if e in _SIMPLE_ESCAPES:
            if (e == "'" and quote == '"') or (e == '"' and quote == "'"):
                raise GoError(f"escape \\{e} is not valid in a {quote}-quoted literal")
            out.append(_SIMPLE_ESCAPES[e])
            i += 2
        elif e == "x":
            out.append(int(body[i + 2 : i + 4], 16))
            i += 4
        elif e in "uU":
            n = 4 if e == "u" else 8
            out += chr(int(body[i + 2 : i + 2 + n], 16)).encode("utf-8")
            i += 2 + n
        elif e in "01234567":
            out.append(int(body[i + 1 : i + 4], 8))
            i += 4
        else:
            raise GoError(f"unknown escape \\{e}")
    return out.decode("utf-8")


def tokenize(src: str, start: int = 0) -> list[Tok]:
    toks: list[Tok] = []
    i = start
    n = len(src)
    while i < n:
        c = src[i]
        if c in " \t\r\n":
            i += 1
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            i = src.index("*/", i) + 2
        elif c == "`":
            j = src.index("`", i + 1)
            toks.append(Tok("str", src[i + 1 : j].replace("\r", ""), i, j + 1))
            i = j + 1
        elif c in "\"'":
            j = i + 1
            while src[j] != c:
                if src[j] == "\\":
                    j += 1
                if src[j] == "\n":
                    raise GoError(f"newline in literal at {i}")
                j += 1
            body = _decode_escapes(src[i + 1 : j], c)
            toks.append(Tok("str" if c == '"' else "char", body, i, j + 1))
            i = j + 1
        elif c.isdigit() or (c == "." and i + 1 < n and src[i + 1].isdigit()):
            m = _NUMBER.match(src, i)
            assert m
            text = m.group().replace("_", "")
            if text[:2].lower() in ("0x", "0b", "0o"):
                toks.append(Tok("int", int(text, 0), i, m.end()))
            elif any(ch in text for ch in ".eE"):
                toks.append(Tok("float", float(text), i, m.end()))
            else:
                value = int(text, 8) if len(text) > 1 and text[0] == "0" else int(text)
                toks.append(Tok("int", value, i, m.end()))
            i = m.end()
        elif m := _IDENT.match(src, i):
            toks.append(Tok("ident", m.group(), i, m.end()))
            i = m.end()
        else:
            for op in _OPS:
                if src.startswith(op, i):
                    toks.append(Tok("op", op, i, i + len(op)))
                    i += len(op)
                    break
            else:
                raise GoError(f"unexpected character {c!r} at {i}")
    toks.append(Tok("eof", None, n, n))
    return toks


# ---------------------------------------------------------------------------------------------
# Syntax tree


@dataclass
class Node:
    start: int = field(default=0, kw_only=True)
    end: int = field(default=0, kw_only=True)


@dataclass
class Lit(Node):
    value: Any


@dataclass
class Ident(Node):
    name: str


@dataclass
class Sel(Node):
    x: Node
    name: str


@dataclass
class Call(Node):
    fn: Node
    args: list[Node]


@dataclass
class Index(Node):
    x: Node
    index: Node


@dataclass
class Unary(Node):
    op: str
    x: Node


@dataclass
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass
class ArrayType(Node):
    elem: Node


@dataclass
class MapType(Node):
    key: Node
    value: Node


@dataclass
class PtrType(Node):
    elem: Node


@dataclass
class StructType(Node):
    pass


@dataclass
class InterfaceType(Node):
    pass


@dataclass
class FuncLit(Node):
    pass


@dataclass
class Comp(Node):
    """A composite literal; type None for an elided `{...}` element."""

    type: Node | None
    elems: list[tuple[Node | None, Node]]


_BINARY_PREC = {
    "||": 1, "&&": 2,
    "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
    "+": 4, "-": 4, "|": 4, "^": 4,
    "*": 5, "/": 5, "%": 5, "<<": 5, ">>": 5, "&": 5, "&^": 5,
}  # fmt: skip

_TYPEISH = (Ident, Sel, ArrayType, MapType, StructType, InterfaceType)


class Parser:
    def __init__(self, src: str, start: int = 0) -> None:
        self.src = src
        self.toks = tokenize(src, start)
        self.i = 0

    # -- token helpers
    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def at(self, val: str) -> bool:
        return self.tok.kind in ("op", "ident") and self.tok.val == val

    def eat(self, val: str) -> Tok:
        if not self.at(val):
            t = self.tok
            line = self.src.count("\n", 0, t.pos) + 1
            raise GoError(f"expected {val!r} at line {line}, found {t.val!r}")
        t = self.tok
        self.i += 1
        return t

    def _skip_braces(self) -> int:
        self.eat("{")
        depth = 1
        while depth:
            t = self.tok
            if t.kind == "eof":
                raise GoError("unbalanced braces")
            if t.kind == "op" and t.val == "{":
                depth += 1
            elif t.kind == "op" and t.val == "}":
                depth -= 1
            self.i += 1
        return self.toks[self.i - 1].end

    # -- types
    def type(self) -> Node:
        t = self.tok
        if self.at("*"):
            self.i += 1
            elem = self.type()
            return PtrType(elem, start=t.pos, end=elem.end)
        if self.at("["):
            self.i += 1
            if self.at("..."):
                self.i += 1
            elif not self.at("]"):
                self.expr()
            self.eat("]")
            elem = self.type()
            return ArrayType(elem, start=t.pos, end=elem.end)
        if self.at("map"):
            self.i += 1
            self.eat("[")
            key = self.type()
            self.eat("]")
            value = self.type()
            return MapType(key, value, start=t.pos, end=value.end)
        if self.at("struct"):
            self.i += 1
            return StructType(start=t.pos, end=self._skip_braces())
        if self.at("interface"):
            self.i += 1
            return InterfaceType(start=t.pos, end=self._skip_braces())
        if self.at("func"):
            raise GoError("function types are not supported")
        if t.kind != "ident":
            raise GoError(f"expected a type, found {t.val!r}")
        self.i += 1
        node: Node = Ident(t.val, start=t.pos, end=t.end)
        if self.at("."):
            self.i += 1
            name = self.eat_ident()
            node = Sel(node, name.val, start=t.pos, end=name.end)
        return node

    def eat_ident(self) -> Tok:
        t = self.tok
        if t.kind != "ident":
            raise GoError(f"expected an identifier, found {t.val!r}")
        self.i += 1
        return t

    # -- expressions
    def expr(self, min_prec: int = 1) -> Node:
        left = self.unary()
        while self.tok.kind == "op" and self.tok.val in _BINARY_PREC:
            op = self.tok.val
            prec = _BINARY_PREC[op]
            if prec < min_prec:
                break
            self.i += 1
            right = self.expr(prec + 1)
            left = Binary(op, left, right, start=left.start, end=right.end)
        return left

    def unary(self) -> Node:
        t = self.tok
        if t.kind == "op" and t.val in ("-", "+", "!", "&", "*", "^"):
            self.i += 1
            x = self.unary()
            return Unary(t.val, x, start=t.pos, end=x.end)
        return self.primary()

    def operand(self) -> Node:
        t = self.tok
        if t.kind in ("int", "float", "str", "char"):
            self.i += 1
            return Lit(t.val, start=t.pos, end=t.end)
        if self.at("("):
            self.i += 1
            inner = self.expr()
            close = self.eat(")")
            inner.start, inner.end = t.pos, close.end
            return inner
        if self.at("[") or self.at("map") or self.at("struct") or self.at("interface"):
            return self.type()
        if self.at("func"):
            # A function literal: its signature up to the body, then the body, unread.
            self.i += 1
            depth = 0
            while not (depth == 0 and self.at("{")):
                if self.at("("):
                    depth += 1
                elif self.at(")"):
                    depth -= 1
                self.i += 1
            return FuncLit(start=t.pos, end=self._skip_braces())
        if t.kind == "ident":
            self.i += 1
            return Ident(t.val, start=t.pos, end=t.end)
        raise GoError(f"unexpected {t.val!r} at offset {t.pos}")

    def primary(self) -> Node:
        node = self.operand()
        while True:
            t = self.tok
            if self.at("."):
                self.i += 1
                name = self.eat_ident()
                node = Sel(node, name.val, start=node.start, end=name.end)
            elif self.at("("):
                self.i += 1
                args: list[Node] = []
                while not self.at(")"):
                    args.append(self.expr())
                    if self.at("..."):
                        self.i += 1
                    if not self.at(")"):
                        self.eat(",")
                close = self.eat(")")
                node = Call(node, args, start=node.start, end=close.end)
            elif self.at("["):
                self.i += 1
                index = self.expr()
                close = self.eat("]")
                node = Index(node, index, start=node.start, end=close.end)
            elif self.at("{") and isinstance(node, _TYPEISH):
                elems, end = self.composite_body()
                node = Comp(node, elems, start=node.start, end=end)
            else:
                del t
                return node

    def composite_body(self) -> tuple[list[tuple[Node | None, Node]], int]:
        self.eat("{")
        elems: list[tuple[Node | None, Node]] = []
        while not self.at("}"):
            first = self.element()
            if self.at(":"):
                self.i += 1
                elems.append((first, self.element()))
            else:
                elems.append((None, first))
            if not self.at("}"):
                self.eat(",")
        close = self.eat("}")
        return elems, close.end

    def element(self) -> Node:
        if self.at("{"):
            start = self.tok.pos
            elems, end = self.composite_body()
            return Comp(None, elems, start=start, end=end)
        return self.expr()


def parse_expr_at(src: str, start: int) -> Node:
    """The Go expression that begins at offset `start` of `src`."""
    return Parser(src, start).expr()


def qualname(node: Node) -> str | None:
    if isinstance(node, Ident):
        return node.name
    if isinstance(node, Sel):
        inner = qualname(node.x)
        return None if inner is None else f"{inner}.{node.name}"
    if isinstance(node, PtrType):
        return qualname(node.elem)
    return None


# ---------------------------------------------------------------------------------------------
# Evaluation


class Struct(dict[str, Node]):
    """An anonymous struct literal: field name -> unevaluated expression."""


StructBuilder = Callable[["Evaluator", list[tuple[str, Node]]], Any]


@dataclass
class Evaluator:
    """Evaluates expressions against `names` (identifiers and qualified names such as
    `math.MaxInt64`), `funcs` (callables by qualified name) and `structs` (named composite
    types: a builder given the evaluator and the (field, node) pairs), `slices` (named slice
    types: their element type's name)."""

    src: str
    names: dict[str, Any] = field(default_factory=dict)
    funcs: dict[str, Callable[..., Any]] = field(default_factory=dict)
    structs: dict[str, StructBuilder] = field(default_factory=dict)
    slices: dict[str, str] = field(default_factory=dict)

    def text(self, node: Node) -> str:
        return self.src[node.start : node.end]

    def ev(self, node: Node) -> Any:
        if isinstance(node, Lit):
            return node.value
        if isinstance(node, Ident | Sel):
            name = qualname(node)
            if name == "true":
                return True
            if name == "false":
                return False
            if name == "nil":
                return None
            if name in self.names:
                return self.names[name]
            raise GoError(f"unknown name {name!r}")
        if isinstance(node, Unary):
            x = self.ev(node.x)
            if node.op in ("&", "+"):
                return x
            if node.op == "-":
                return -x
            if node.op == "!":
                return not x
            raise GoError(f"unsupported unary {node.op}")
        if isinstance(node, Binary):
            a, b = self.ev(node.left), self.ev(node.right)
            if node.op == "+":
                return a + b
            if node.op == "-":
                return a - b
            if node.op == "*":
                return a * b
            if node.op == "/":
                return a // b if isinstance(a, int) and isinstance(b, int) else a / b
            raise GoError(f"unsupported operator {node.op}")
        if isinstance(node, Call):
            name = qualname(node.fn)
            if name is None or name not in self.funcs:
                raise GoError(f"unknown function {self.text(node.fn)!r}")
            return self.funcs[name](*[self.ev(a) for a in node.args])
        if isinstance(node, Comp):
            if node.type is None:
                raise GoError("an elided composite literal outside a typed one")
            return self.build(node.type, node.elems)
        raise GoError(f"cannot evaluate {self.text(node)!r}")

    def ev_as(self, node: Node, typ: Node | None) -> Any:
        """`node` as an element of a composite literal whose element type is `typ`."""
        if isinstance(node, Comp) and node.type is None:
            if typ is None:
                raise GoError("an elided composite literal of unknown type")
            return self.build(typ, node.elems)
        return self.ev(node)

    def build(self, typ: Node, elems: list[tuple[Node | None, Node]]) -> Any:
        if isinstance(typ, PtrType):
            return self.build(typ.elem, elems)
        if isinstance(typ, ArrayType):
            return [self.ev_as(v, typ.elem) for _, v in elems]
        if isinstance(typ, MapType):
            out: dict[Any, Any] = {}
            for k, v in elems:
                if k is None:
                    raise GoError("a map element without a key")
                out[self.ev_as(k, typ.key)] = self.ev_as(v, typ.value)
            return out
        if isinstance(typ, StructType):
            return Struct((self._field_name(k), v) for k, v in elems)
        name = qualname(typ)
        if name in self.slices:
            elem_type = Ident(self.slices[name])
            return [self.ev_as(v, elem_type) for _, v in elems]
        if name in self.structs:
            return self.structs[name](self, [(self._field_name(k), v) for k, v in elems])
        raise GoError(f"unknown composite type {self.text(typ)!r}")

    def _field_name(self, key: Node | None) -> str:
        if not isinstance(key, Ident):
            raise GoError("a struct literal element without a field name")
        return key.name


def go_sprintf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf for the verbs the tables use: %d %s %f %v %q %%."""
    values = list(args)

    def one(m: re.Match[str]) -> str:
        verb = m.group(0)
        if verb == "%%":
            return "%"
        value = values.pop(0)
        if verb == "%d":
            return str(int(value))
        if verb == "%f":
            return f"{float(value):f}"
        if verb in ("%s", "%v"):
            return str(value)
        raise GoError(f"unsupported verb {verb}")

    out = re.sub(r"%[%dsfv]", one, fmt)
    if values:
        raise GoError("fmt.Sprintf: too many arguments")
    return out
