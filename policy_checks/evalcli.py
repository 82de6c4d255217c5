"""`policyhub-eval policies/<name>/v<version> FILE...` (CONTRACT section 8): one version's rules
evaluated by hand against the resources of files (JSON, or YAML of one or more documents, and
`kind: List` items, as Kubernetes manifests are written), offline, with the same engine, limits
and parameter checks as its tests.yaml; the results as text or as JSON Lines. Exit 0 when every
rule passes (or is skipped) for every resource, 1 when any fails or errors (or the version itself
is invalid), 4 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

from policy_checks.cel.resources import ResourceSchemaError, ResourceSchemas
from policy_checks.checker import PolicyChecker
from policy_checks.checks.conditions import CompiledPolicy, is_of_type
from policy_checks.evaluator import DEFAULT_TIMEOUT, ERROR, PASS, SKIP, RuleResult, shared
from policy_checks.jsonpath import Path as JsonPath
from policy_checks.loading import Document, load_json, load_yaml, load_yaml_documents
from policy_checks.model import shown
from policy_checks.naming import MAX_FILE_BYTES
from policy_checks.words import describe, did_you_mean
from policy_checks.worktree import read_policy_folder, read_resource_schema_files

USAGE_ERROR = 4


class _Usage(Exception):
    """A usage error: the message is printed as it is and the command exits 4."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise _Usage(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="policyhub-eval",
        description="Evaluate one policy version's rules against the resources of files (JSON, "
        "or YAML of one or more documents; the items of a `kind: List` each count as one) and "
        "print each rule's result per resource: pass, fail, error (with why) or skip (the "
        "resource's kind is none of the policy's targets). No network.",
        epilog="Exit status: 0 every rule passes or is skipped for every file; 1 a rule fails "
        "or errors, or the version is invalid; 4 a usage error.",
    )
    parser.add_argument("version", help="the version folder, e.g. policies/require-tags/v1.1.0")
    parser.add_argument("files", nargs="+", metavar="FILE", help="resource files; - reads stdin")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameter's default; VALUE is read as YAML (3, true, [a, b], text)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds one rule's evaluation may take (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="text (default), or json: one JSON object a resource, one a line (JSON Lines): "
        '{"file", "index", "kind", "name", "rules": {ID: {"result", "error"}}}',
    )
    return parser


def _folder(arg: str) -> tuple[Path, str]:
    """(repository root, `policies/<name>/<version-dir>`) of a version folder argument."""
    absolute = Path(os.path.abspath(arg))  # not resolve(): a link must stay a link (refused)
    if not absolute.is_dir():
        raise _Usage(f"{arg}: no such version folder")
    parts = absolute.parts
    if len(parts) < 4 or parts[-3] != "policies":
        raise _Usage(f"{arg}: not a version folder (expected .../policies/<name>/v<version>)")
    return Path(*parts[:-3]), "/".join(parts[-3:])


def _params(policy: CompiledPolicy, given: list[str]) -> dict[str, Any]:
    values = policy.defaults()
    declared = {p.name: p for p in policy.parameters}
    for item in given:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise _Usage(f"--param {item}: expected NAME=VALUE")
        parameter = declared.get(name)
        if parameter is None:
            match = did_you_mean(name, list(declared))
            raise _Usage(
                f"--param {name}: not a parameter of this policy (declared: "
                f"{', '.join(declared) or 'none'})" + (f"; did you mean {match}?" if match else "")
            )
        document = load_yaml(text.encode() or b'""', f"--param {name}")
        value = document.value if document.ok else text
        if not is_of_type(value, parameter.type) and parameter.type == "string":
            value = text  # `--param tag=42` means the text 42 for a string parameter
        if not is_of_type(value, parameter.type):
            raise _Usage(f"--param {name}: {describe(value)} is not of type {parameter.type}")
        values[name] = value
    missing = [p.name for p in policy.parameters if p.name not in values]
    if missing:
        raise _Usage(
            "parameters without a default need a value: "
            + ", ".join(f"--param {name}=..." for name in missing)
        )
    return values


@dataclass(frozen=True)
class Resource:
    """One resource of a file: a document, or an item of a `kind: List` document."""

    file: str  # as the output names it: the argument, or <stdin>
    index: int  # 0-based, over the file's resources (empty documents are none, List items each one)
    value: Any
    problem: str | None = None  # why it is no resource (not a mapping): every rule is an error

    @property
    def kind(self) -> str | None:
        kind = self.value.get("kind") if isinstance(self.value, dict) else None
        return kind if isinstance(kind, str) else None

    @property
    def name(self) -> str | None:
        metadata = self.value.get("metadata") if isinstance(self.value, dict) else None
        name = metadata.get("name") if isinstance(metadata, dict) else None
        return name if isinstance(name, str) else None

    def label(self) -> str:
        """`FILE[INDEX] KIND/NAME`, with what the resource has of its kind and name."""
        head = f"{self.file}[{self.index}]"
        kind = shown(self.kind, 100) if self.kind else None
        if self.name:
            return f"{head} {kind or '(no kind)'}/{shown(self.name, 100)}"
        return f"{head} {kind}" if kind else head


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "null" if value is None else "a mapping"


def _resources(file: str, document: Document, stream: bool) -> list[Resource]:
    """The resources of a loaded file, in order: each document (in a YAML stream an empty one is
    none), or for a `kind: List` each of its `items` (the List itself is none). One that is not a
    mapping is still a resource, whose problem names its line."""
    found: list[tuple[Any, str | None]] = []

    def at(path: JsonPath) -> str:
        line = document.source.line(path)
        return "" if line is None else f" at line {line}"

    def add(value: Any, path: JsonPath, what: str) -> None:
        if isinstance(value, dict):
            found.append((value, None))
        else:
            problem = f"{what}{at(path)} is {_json_type(value)}, not a mapping"
            found.append((value, f"not a resource: {problem}"))

    documents = list(enumerate(document.value)) if stream else [(None, document.value)]
    for number, value in documents:
        path: JsonPath = () if number is None else (number,)
        if stream and value is None:
            continue  # an empty document (a trailing `---`), as kubectl reads a manifest
        if not (isinstance(value, dict) and value.get("kind") == "List"):
            add(value, path, "the document")
            continue
        items = value.get("items")
        if isinstance(items, list):
            for index, item in enumerate(items):
                add(item, (*path, "items", index), "the List item")
        elif items is not None:
            problem = f"the List's items{at((*path, 'items'))} are {_json_type(items)}, not a list"
            found.append((value, f"not a resource: {problem}"))
    return [Resource(file, index, value, problem) for index, (value, problem) in enumerate(found)]


def _read(arg: str, stdin: IO[bytes]) -> list[Resource]:
    """The resources of a file argument; a file that cannot be read or loaded is a usage error."""
    try:
        if arg == "-":
            data = stdin.read(MAX_FILE_BYTES + 1)
        else:
            with open(arg, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _Usage(f"{arg}: cannot be read: {exc.strerror or exc}") from None
    file = "<stdin>" if arg == "-" else arg
    stream = not arg.lower().endswith(".json")
    document = load_yaml_documents(data, file) if stream else load_json(data, file)
    if not document.ok:
        raise _Usage("\n".join(f.render() for f in document.findings))
    return _resources(file, document, stream)


def _evaluate(
    resource: Resource, policy: CompiledPolicy, params: dict[str, Any], timeout: float
) -> list[RuleResult]:
    if resource.problem is not None:
        return [RuleResult(rule.id, ERROR, resource.problem) for rule in policy.rules]
    return shared(timeout).evaluate(policy, params, resource.value)


def _text(resource: Resource, results: list[RuleResult], width: int) -> str:
    lines = [resource.label()]
    for result in results:
        why = f"  {result.message}" if result.message else ""
        lines.append(f"  {result.rule:<{width}}  {result.result}{why}")
    return "\n".join(lines) + "\n"


def _json(resource: Resource, results: list[RuleResult]) -> str:
    rules = {r.rule: {"result": r.result, "error": r.message} for r in results}
    line = {
        "file": resource.file,
        "index": resource.index,
        "kind": resource.kind,
        "name": resource.name,
        "rules": rules,
    }
    return json.dumps(line) + "\n"


def run(argv: list[str], stdin: IO[bytes], out: IO[str], err: IO[str]) -> int:
    args = _parser().parse_args(argv)
    if not 0 < args.timeout <= 3600:
        raise _Usage("--timeout: expected a number of seconds above 0")
    root, folder = _folder(args.version)
    try:
        # The repository's resource-schemas/ type `resource`, as in its pytest run.
        schemas = ResourceSchemas.load(read_resource_schema_files(root))
    except ResourceSchemaError as exc:
        raise _Usage(str(exc)) from None
    checker = PolicyChecker.load(resource_schemas=schemas)
    policy, findings = checker.compile(read_policy_folder(root, folder))
    if policy is None:
        # In json mode stdout holds JSON only: the version's problems go to stderr.
        report = out if args.output == "text" else err
        report.write(f"{folder} is not a valid policy version:\n")
        report.writelines(f"  {finding.render()}\n" for finding in findings)
        return 1
    params = _params(policy, args.param)
    # Every file is read before anything is evaluated: a usage error prints no result.
    resources = [resource for arg in args.files for resource in _read(arg, stdin)]
    width = max(len(rule.id) for rule in policy.rules)
    worst = 0
    for resource in resources:
        results = _evaluate(resource, policy, params, args.timeout)
        out.write(
            _text(resource, results, width) if args.output == "text" else _json(resource, results)
        )
        if any(result.result not in (PASS, SKIP) for result in results):
            worst = 1
    return worst


def main(argv: list[str] | None = None) -> int:
    try:
        argv = sys.argv[1:] if argv is None else argv
        return run(argv, sys.stdin.buffer, sys.stdout, sys.stderr)
    except _Usage as exc:
        sys.stderr.write(f"policyhub-eval: error: {exc}\n")
        return USAGE_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
