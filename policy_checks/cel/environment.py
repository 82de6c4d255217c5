"""The environments a condition is checked and run in (CONTRACT section 8), built in one place as
Kubernetes' `compile.go` builds them: cel-spec's standard definitions and macros, the extensions
of Kubernetes' base environment (optional types, strings, lists, sets, two-variable
comprehensions, math, bindings) and its libraries (`policy_checks.cel.library`).

Two environments for one set of variables, because the engine's Python binding splits what
Kubernetes has in one:
- the *checking* environment declares everything, type parameters included (`list(A).max()` is
  an `A`), and the cross-type numeric comparisons the runtime has but the checker lacks; it only
  compiles, never runs (its runtime would refuse the duplicate comparison overloads);
- the *running* environment deserialises what the checking one compiled and runs it, with every
  library's implementation (a type parameter is `dyn` there: the checker has already decided).

Environments are made once a process, per (parameters, resource type), and every compiled text is
kept: identical conditions of many versions compile once. Thread-safe.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from policy_checks.cel import checkedast, messages, types
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


@dataclass(frozen=True)
class ExpressionOutcome:
    """What `run_expression` gives: a value, or the stage that failed and why."""

    stage: str  # "value", "compile" or "runtime"
    value: Any = None
    message: str = ""


def _has_type_params(overload_args: tuple[str, ...], result: str) -> bool:
    words = " ".join((*overload_args, result)).replace("(", " ").replace(")", " ").replace(",", " ")
    return any(types.is_type_param(word) for word in words.split())


def _by_runtime_kinds(overloads: list[Overload]) -> list[Overload]:
    """The overloads of one name as the running environment can register them. Its registry
    tells arguments apart by kind only, so overloads that differ only in which message they take
    (`string(net.IP)`, `string(net.CIDR)`) would collide there ("already registered"): each such
    group becomes one overload whose implementation picks by the argument's message type, the
    choice the checker has already made."""
    groups: dict[tuple[bool, tuple[str, ...]], list[Overload]] = {}
    for overload in overloads:
        key = (overload.member, tuple(types.runtime_kind(word) for word in overload.args))
        groups.setdefault(key, []).append(overload)
    merged: list[Overload] = []
    for group in groups.values():
        if len(group) == 1 or not all(overload.impl for overload in group):
            merged.extend(group)
            continue
        results = {overload.result for overload in group}
        first = group[0]
        merged.append(
            Overload(
                first.id,
                first.args,
                first.result if len(results) == 1 else "dyn",
                _dispatch(tuple(group)),
                first.member,
            )
        )
    return merged


def _dispatch(group: tuple[Overload, ...]) -> Any:
    def call(*args: Any) -> Any:
        for overload in group:
            if all(
                getattr(getattr(arg, "DESCRIPTOR", None), "full_name", None) == word
                for arg, word in zip(args, overload.args, strict=False)
                if types.is_message(word)
            ):
                assert overload.impl is not None
                return overload.impl(*args)
        raise ValueError("no such overload")

    return call


class Environments:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._check: dict[tuple[Signature, str], Any] = {}
        self._run: dict[Signature, Any] = {}
        self._compiled: dict[tuple[Signature, str, str], Compiled] = {}
        self._libraries: tuple[Library, ...] | None = None
        self._constants: dict[str, list[tuple[int, Any]]] = {}

    # -- what every environment has -------------------------------------------------------------

    def libraries(self) -> tuple[Library, ...]:
        with self._lock:
            if self._libraries is None:
                found = libraries()
                for library in found:
                    for name in library.opaque_types:
                        messages.declare_opaque(name)
                    for function, check in library.constants.items():
                        self._constants.setdefault(function, []).append(check)
                self._libraries = found
            return self._libraries

    def _config(self, variables: Mapping[str, str], *, generic: bool) -> Any:
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
        return any(
            _has_type_params(overload.args, overload.result) for overload in function.overloads
        )

    def _extension(self, *, running: bool) -> Any:
        from cel_expr_python import cel

        # By name, across libraries: `string(net.IP)` and `string(net.CIDR)` come from two.
        by_name: dict[str, list[Overload]] = {}
        for library in self.libraries():
            if library.where == ("check" if running else "run"):
                continue
            for function in library.functions:
                if not running and self._generic(function):
                    continue  # declared in the configuration, with its type parameters
                by_name.setdefault(function.name, []).extend(function.overloads)
        declarations = [
            cel.FunctionDecl(
                name,
                [
                    cel.Overload(
                        overload.id,
                        types.runtime_type(overload.result),
                        [types.runtime_type(word) for word in overload.args],
                        overload.member,
                        **({"impl": overload.impl} if running and overload.impl else {}),
                    )
                    for overload in (_by_runtime_kinds(overloads) if running else overloads)
                ],
            )
            for name, overloads in by_name.items()
        ]
        return cel.CelExtension("kubernetes", declarations)

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
                    config=self._config(variables, generic=True),
                    extensions=[self._extension(running=False)],
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
                    config=self._config(variables, generic=False),
                    extensions=[self._extension(running=True)],
                )
            return env

    # -- params ---------------------------------------------------------------------------------

    def params_type(self, signature: Signature) -> str:
        """A message type whose fields are the parameters: the checker then knows `params.tga`
        is no field, and `params.limit + 'a'` no overload."""
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
        wrapped = {"list": ".google.protobuf.ListValue", "object": ".google.protobuf.Struct"}
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
        return f"{package}.Params"

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
                program,
                expression.return_type().name(),
                "",
                tuple(self._bad_constants(signature, program)),
            )
        except Exception as exc:  # the engine raises RuntimeError with its status text
            result = Compiled(None, "", str(exc))
        with self._lock:
            self._compiled[key] = result
        return result

    def _bad_constants(self, signature: Signature, program: bytes) -> list[tuple[int, str]]:
        self.libraries()
        if not self._constants:
            return []
        bad: list[tuple[int, str]] = []
        for argument in checkedast.literal_arguments(program):
            for position, check in self._constants.get(argument.function, ()):
                if position != argument.position:
                    continue
                why = check(argument.text)
                if why:
                    bad.append((argument.offset, why))
        return bad


ENVIRONMENTS = Environments()


def run_expression(
    text: str,
    variables: Mapping[str, Any] | None = None,
    schemas: Mapping[str, Any] | None = None,
) -> ExpressionOutcome:
    """`text` compiled and run with `variables` bound (each `dyn`), as one call: what the tests
    of Kubernetes' own library cases (tests/cel-kubernetes) drive. A variable's JSON Schema in
    `schemas` types it for the checker, as a typed resource is typed."""
    from cel_expr_python import cel

    bound = dict(variables or {})
    declared = {name: "dyn" for name in bound}
    for name, schema in (schemas or {}).items():
        if schema is not None:
            from policy_checks.cel import resources

            declared[name] = resources.type_word([schema])
    config = ENVIRONMENTS._config(declared, generic=True)
    check = cel.NewEnv(
        descriptor_pool=messages.pool(),
        config=config,
        extensions=[ENVIRONMENTS._extension(running=False)],
    )
    run = cel.NewEnv(
        descriptor_pool=messages.pool(),
        config=ENVIRONMENTS._config({name: "dyn" for name in bound}, generic=False),
        extensions=[ENVIRONMENTS._extension(running=True)],
    )
    try:
        program = check.compile(text).serialize()
    except Exception as exc:
        return ExpressionOutcome("compile", message=str(exc))
    for function_checks in [ENVIRONMENTS._bad_constants((), program)]:
        if function_checks:
            return ExpressionOutcome("compile", message=function_checks[0][1])
    try:
        value = run.deserialize(program).eval(data=bound)
    except Exception as exc:
        return ExpressionOutcome("runtime", message=str(exc))
    if value.type().name() == "ERROR":
        return ExpressionOutcome("runtime", message=str(value.value()))
    try:
        return ExpressionOutcome("value", value=value.plain_value())
    except Exception:
        return ExpressionOutcome("value", value=value.value())
