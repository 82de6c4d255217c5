"""The environments a condition is checked and run in (docs/contract.md section 8), built in
one place as Kubernetes' `compile.go` builds them: cel-spec's standard definitions and macros,
the extensions of Kubernetes' base environment (optional types, strings, lists, sets, two-variable
comprehensions, math, bindings) and its libraries (`policy_checks.cel.library`).

Two environments for one set of variables, because the engine's Python binding splits what
Kubernetes has in one:
- the *checking* environment declares everything, type parameters and optional results
  included (`list(A).max()` is an `A`, `format.named(s)` an optional), and the cross-type numeric
  comparisons the runtime has but the checker lacks; it only compiles, never runs (its runtime
  would refuse the duplicate comparison overloads);
- the *running* environment deserialises what the checking one compiled and runs it, with every
  library's implementation, each overload under a name of its own that the program calls
  (`policy_checks.cel.routing`: the engine's runtime cannot tell overloads apart by message or
  element type); a type parameter is `dyn` there (the checker has already decided), an optional
  result is the value, which the program wraps (`policy_checks.cel.types`).

Environments are made once a process, per (parameters, resource type), and every compiled text is
kept: identical conditions of many versions compile once. Thread-safe.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from policy_checks.cel import checkedast, messages, routing, types
from policy_checks.cel.library import Library, Overload, libraries

# cel-expr-python's own extensions, by the names its configuration knows, at the versions that
# match Kubernetes' base environment (k8s.io/apiserver pkg/cel/environment/base.go).
EXTENSIONS = ("optional", "strings", "lists", "sets", "two-var-comprehensions", "math", "bindings")

Signature = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Compiled:
    """A compiled text: the serialised checked program and its result type, or the engine's
    error text; and the constant arguments that no library can parse, as (offset, why)."""

    program: bytes | None
    result_type: str
    error: str
    bad_constants: tuple[tuple[int, str], ...] = ()
    # List literals of mixed types (`['a', 1]`), as (offset, message): Kubernetes refuses them.
    mixed_literals: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class ExpressionOutcome:
    """What `run_expression` gives: a value, or the stage that failed and why."""

    stage: str  # "value", "compile" or "runtime"
    value: Any = None
    message: str = ""
    constant: bool = False  # a compile error that is a constant argument no library parses


def _has_type_params(overload_args: tuple[str, ...], result: str) -> bool:
    words = " ".join((*overload_args, result)).replace("(", " ").replace(")", " ").replace(",", " ")
    return any(types.is_type_param(word) for word in words.split())


# What the program calls around an overload whose result is optional: none for the zero value
# the implementation returns for none, the value otherwise.
OPTIONAL_WRAPPER = "optional.ofNonZeroValue"


class Environments:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._check: dict[tuple[Signature, str], Any] = {}
        self._run: dict[Signature, Any] = {}
        self._compiled: dict[tuple[Signature, str, str], Compiled] = {}
        self._params_types: dict[Signature, str] = {}
        self._libraries: tuple[Library, ...] | None = None
        self._constants: dict[str, list[tuple[int, Any]]] = {}
        self._optional_results: frozenset[str] = frozenset()
        # By overload id, for the overloads the running environment declares under names of
        # their own: that name, and the name of their function.
        self._routes: dict[str, str] = {}
        self._functions: dict[str, str] = {}

    # -- what every environment has -------------------------------------------------------------

    def libraries(self) -> tuple[Library, ...]:
        with self._lock:
            if self._libraries is None:
                found = libraries()
                for library in found:
                    for name in library.opaque_types:
                        messages.declare_opaque(name)
                    for key, check in library.constants.items():
                        self._constants.setdefault(key, []).append(check)
                self._optional_results = frozenset(
                    overload.id
                    for library in found
                    for function in library.functions
                    for overload in function.overloads
                    if types.is_optional(overload.result)
                )
                for library in found:
                    if library.where != "both":
                        continue  # the engine's own functions, or called by its own name
                    for declared in library.functions:
                        for overload in declared.overloads:
                            if overload.impl is None:
                                continue  # nothing runs it: left to the engine by its name
                            self._routes[overload.id] = routing.runtime_name(overload)
                            self._functions[overload.id] = declared.name
                self._libraries = found
            return self._libraries

    def config(self, variables: Mapping[str, str], *, generic: bool) -> Any:
        from cel_expr_python import cel

        config: dict[str, Any] = {
            "extensions": [{"name": name} for name in EXTENSIONS],
            "variables": [
                {"name": name, **types.type_info(word)} for name, word in variables.items()
            ],
        }
        if generic:
            config["functions"] = [
                {
                    "name": function.name,
                    "overloads": [
                        {
                            "id": overload.id,
                            **(
                                {"target": types.type_info(overload.args[0])}
                                if overload.member
                                else {}
                            ),
                            "args": [
                                types.type_info(word)
                                for word in (
                                    overload.args[1:] if overload.member else overload.args
                                )
                            ],
                            "return": types.type_info(overload.result),
                        }
                        for overload in function.overloads
                    ],
                }
                for library in self.libraries()
                if library.where != "run"
                for function in library.functions
                if self._generic(function)
            ]
        return cel.NewEnvConfigFromYaml(yaml.safe_dump(config, sort_keys=False))

    @staticmethod
    def _generic(function: Any) -> bool:
        """Whether the checker needs the configuration to declare it: a type parameter, or an
        optional type, which the binding's `cel.Type` cannot say."""
        return any(
            _has_type_params(overload.args, overload.result)
            or types.mentions_optional((*overload.args, overload.result))
            for overload in function.overloads
        )

    def runnable(self, program: bytes) -> bytes:
        """What the running environment runs of a checked program: each call of a library's
        function routed to its overload (or to the function's dispatcher when the checker
        resolved several), the calls of overloads with an optional result wrapped (see
        `OPTIONAL_WRAPPER`)."""
        self.libraries()
        return checkedast.rewrite_calls(
            program, self._route, self._optional_results, OPTIONAL_WRAPPER
        )

    def _route(self, overload_ids: frozenset[str]) -> str | None:
        if not overload_ids <= self._routes.keys():
            return None  # the engine's own overloads
        if len(overload_ids) == 1:
            return self._routes[next(iter(overload_ids))]
        functions = {self._functions[overload_id] for overload_id in overload_ids}
        return routing.dispatcher_name(functions.pop()) if len(functions) == 1 else None

    def extension(self, *, running: bool) -> Any:
        from cel_expr_python import cel

        declarations = []
        if running:
            declarations = self._running_declarations()
        for library in self.libraries():
            if running or library.where == "run":
                continue
            for function in library.functions:
                if self._generic(function):
                    continue  # declared in the configuration (type parameters, optionals)
                declarations.append(
                    cel.FunctionDecl(
                        function.name,
                        [
                            cel.Overload(
                                overload.id,
                                types.runtime_type(overload.result),
                                [types.runtime_type(word) for word in overload.args],
                                overload.member,
                            )
                            for overload in function.overloads
                        ],
                    )
                )
        return cel.CelExtension("kubernetes", declarations)

    def _running_declarations(self) -> list[Any]:
        """Each overload under its own name, each function's dispatchers (one a call style and
        arity), and the functions of `where="run"` libraries under their own names."""
        from cel_expr_python import cel

        def declared(name: str, overload: Overload, impl: Any) -> Any:
            return cel.FunctionDecl(
                name,
                [
                    cel.Overload(
                        name,
                        types.runtime_type(overload.result),
                        [types.runtime_type(word) for word in overload.args],
                        overload.member,
                        impl=impl,
                    )
                ],
            )

        declarations = []
        merged: dict[str, dict[tuple[bool, int], list[Overload]]] = {}
        for library in self.libraries():
            if library.where == "check":
                continue
            for function in library.functions:
                for overload in function.overloads:
                    if overload.impl is None:
                        continue
                    if library.where == "run":
                        declarations.append(declared(function.name, overload, overload.impl))
                        continue
                    declarations.append(
                        declared(routing.runtime_name(overload), overload, overload.impl)
                    )
                    style = (overload.member, len(overload.args))
                    merged.setdefault(function.name, {}).setdefault(style, []).append(overload)
        # Under its function's own name too, where the engine's runtime can tell it from the
        # function's other overloads: a call the checker resolved both to it and to one of the
        # engine's own (`dyn.indexOf(x)`: a string's or a list's) is left by that name.
        for name, styles in merged.items():
            plain = [o for overloads in styles.values() for o in overloads]
            for overload in plain:
                if not any(
                    other is not overload and routing.same_kinds(overload, other) for other in plain
                ):
                    declarations.append(declared(name, overload, overload.impl))
            declarations.append(
                cel.FunctionDecl(
                    routing.dispatcher_name(name),
                    [
                        cel.Overload(
                            f"{routing.dispatcher_name(name)}/{int(member)}/{arity}",
                            cel.Type.DYN,
                            [cel.Type.DYN] * arity,
                            member,
                            impl=routing.dispatcher(overloads),
                        )
                        for (member, arity), overloads in styles.items()
                    ],
                )
            )
        return declarations

    # -- the environments -----------------------------------------------------------------------

    def _variables(self, signature: Signature, resource: str) -> dict[str, str]:
        return {"resource": resource, "params": self.params_type(signature)}

    def checking(self, signature: Signature, resource: str = "dyn") -> Any:
        """The environment that compiles and type-checks; `resource` is its type word."""
        key = (signature, resource)
        with self._lock:
            env = self._check.get(key)
            if env is None:
                from cel_expr_python import cel

                variables = self._variables(signature, resource)
                env = self._check[key] = cel.NewEnv(
                    descriptor_pool=messages.pool(),
                    config=self.config(variables, generic=True),
                    extensions=[self.extension(running=False)],
                )
            return env

    def running(self, signature: Signature) -> Any:
        """The environment that runs what `checking` compiled (`resource` is dyn here)."""
        with self._lock:
            env = self._run.get(signature)
            if env is None:
                from cel_expr_python import cel

                variables = self._variables(signature, "dyn")
                env = self._run[signature] = cel.NewEnv(
                    descriptor_pool=messages.pool(),
                    config=self.config(variables, generic=False),
                    extensions=[self.extension(running=True)],
                )
            return env

    # -- params ---------------------------------------------------------------------------------

    def params_type(self, signature: Signature) -> str:
        """A message type whose fields are the parameters: the checker then knows `params.tga`
        is no field, and `params.limit + 'a'` no overload. Made once a signature: the
        evaluating process asks for it with every case."""
        known = self._params_types.get(signature)
        if known is not None:
            return known
        from google.protobuf import descriptor_pb2

        digest = hashlib.sha256(repr(signature).encode()).hexdigest()[:16]
        package = f"policyhub.params.p{digest}"
        field_proto = descriptor_pb2.FieldDescriptorProto
        scalar = {
            "string": field_proto.TYPE_STRING,
            "integer": field_proto.TYPE_INT64,
            "number": field_proto.TYPE_DOUBLE,
            "boolean": field_proto.TYPE_BOOL,
        }
        wrapped = {
            "list": ".google.protobuf.ListValue",
            "object": ".google.protobuf.Struct",
            "dyn": ".google.protobuf.Value",  # a parameter refused for its type
        }
        file = descriptor_pb2.FileDescriptorProto(
            name=f"{package}.proto", package=package, syntax="proto3"
        )
        file.dependency.append("google/protobuf/struct.proto")
        message = file.message_type.add(name="Params")
        for number, (name, type_name) in enumerate(signature, start=1):
            if type_name in scalar:
                message.field.add(
                    name=name, number=number, type=scalar[type_name], json_name=f"f{number}"
                )
            else:
                message.field.add(
                    name=name,
                    number=number,
                    type=field_proto.TYPE_MESSAGE,
                    type_name=wrapped[type_name],
                    json_name=f"f{number}",
                )
        messages.add_file(file)
        name = self._params_types[signature] = f"{package}.Params"
        return name

    def params_value(self, signature: Signature, values: dict[str, Any]) -> Any:
        """`params` as the message the environments declare, from checked JSON values."""
        message = messages.message_class(self.params_type(signature))()
        kinds = dict(signature)
        for name, value in values.items():
            if kinds[name] == "list":
                getattr(message, name).extend(value)
            elif kinds[name] == "object":
                getattr(message, name).update(value)
            elif kinds[name] == "number":
                setattr(message, name, float(value))
            else:
                setattr(message, name, value)
        return message

    # -- compiling ------------------------------------------------------------------------------

    def compile(self, signature: Signature, text: str, resource: str = "dyn") -> Compiled:
        """`text` compiled and type-checked against `resource` (a type word), its constants
        checked. Kept by (signature, resource, text)."""
        key = (signature, resource, text)
        cached = self._compiled.get(key)
        if cached is not None:
            return cached
        env = self.checking(signature, resource)
        try:
            expression = env.compile(text)
            program = expression.serialize()
            result = Compiled(
                self.runnable(program),
                expression.return_type().name(),
                "",
                tuple(self.bad_constants(program)),
                tuple(checkedast.mixed_literals(program)),
            )
        except Exception as exc:  # the engine raises RuntimeError with its status text
            result = Compiled(None, "", str(exc))
        with self._lock:
            self._compiled[key] = result
        return result

    def bad_constants(self, program: bytes) -> list[tuple[int, str]]:
        """The constant arguments of a compiled program that no library can parse, as (offset,
        why)."""
        self.libraries()
        bad: list[tuple[int, str]] = []
        for argument in checkedast.literal_arguments(program):
            checks = [
                check
                for key in (argument.function, *argument.overload_ids)
                for check in self._constants.get(key, ())
            ]
            for position, check in checks:
                if position != argument.position:
                    continue
                why = check(argument.text)
                if why:
                    bad.append((argument.offset, why))
        return bad


ENVIRONMENTS = Environments()


@cache
def _expression_environments(declared: tuple[tuple[str, str], ...]) -> tuple[Any, Any]:
    """The checking and running environments of `run_expression`, by variables and types."""
    from cel_expr_python import cel

    check = cel.NewEnv(
        descriptor_pool=messages.pool(),
        config=ENVIRONMENTS.config(dict(declared), generic=True),
        extensions=[ENVIRONMENTS.extension(running=False)],
    )
    run = cel.NewEnv(
        descriptor_pool=messages.pool(),
        config=ENVIRONMENTS.config({name: "dyn" for name, _ in declared}, generic=False),
        extensions=[ENVIRONMENTS.extension(running=True)],
    )
    return check, run


def run_expression(
    text: str,
    variables: Mapping[str, Any] | None = None,
    schemas: Mapping[str, Any] | None = None,
) -> ExpressionOutcome:
    """`text` compiled and run with `variables` bound (each `dyn`), as one call: what the tests
    of Kubernetes' own library cases (tests/cel-kubernetes) drive. A variable's JSON Schema in
    `schemas` types it for the checker, as a typed resource is typed. A value Python cannot hold
    (an optional) is the engine's text of it: `optional.none()`, `optional.of(["a"])`."""
    bound = dict(variables or {})
    declared = {name: "dyn" for name in bound}
    for name, schema in (schemas or {}).items():
        if schema is not None:
            from policy_checks.cel import resources

            declared[name] = resources.type_word([schema])
    check, run = _expression_environments(tuple(sorted(declared.items())))
    try:
        program = check.compile(text).serialize()
    except Exception as exc:
        return ExpressionOutcome("compile", message=str(exc))
    bad = ENVIRONMENTS.bad_constants(program)
    if bad:
        return ExpressionOutcome("compile", message=bad[0][1], constant=True)
    mixed = checkedast.mixed_literals(program)
    if mixed:
        return ExpressionOutcome("compile", message=mixed[0][1])
    try:
        value = run.deserialize(ENVIRONMENTS.runnable(program)).eval(data=bound)
    except Exception as exc:
        return ExpressionOutcome("runtime", message=str(exc))
    if value.type().name() == "ERROR":
        try:
            return ExpressionOutcome("runtime", message=str(value.value()))
        except Exception:
            # Not an error: a value the binding cannot name or hand to Python (an optional).
            return ExpressionOutcome("value", value=repr(value))
    try:
        return ExpressionOutcome("value", value=value.plain_value())
    except Exception:
        try:
            return ExpressionOutcome("value", value=value.value())
        except Exception:
            return ExpressionOutcome("value", value=repr(value))
