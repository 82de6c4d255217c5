"""`policyhub-eval policies/<name>/v<version> FILE...` (CONTRACT section 8): one version's rules
evaluated by hand against resource files, offline, with the same engine, limits and parameter
checks as its tests.yaml. Exit 0 when every rule passes (or is skipped) for every file, 1 when
any fails or errors (or the version itself is invalid), 4 for a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import IO, Any, NoReturn

from policy_checks.cel.resources import ResourceSchemaError, ResourceSchemas
from policy_checks.checker import PolicyChecker
from policy_checks.conditions import CompiledPolicy, describe, did_you_mean, is_of_type
from policy_checks.evaluator import DEFAULT_TIMEOUT, PASS, SKIP, shared
from policy_checks.loading import load_json, load_yaml
from policy_checks.naming import MAX_FILE_BYTES
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
        description="Evaluate one policy version's rules against resource files (JSON or YAML) "
        "and print each rule's result per file: pass, fail, error (with why) or skip (the "
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


def _resource(arg: str, stdin: IO[bytes]) -> Any:
    try:
        if arg == "-":
            data = stdin.read(MAX_FILE_BYTES + 1)
        else:
            with open(arg, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _Usage(f"{arg}: cannot be read: {exc.strerror or exc}") from None
    shown = "<stdin>" if arg == "-" else arg
    loader = load_json if arg.lower().endswith(".json") else load_yaml
    document = loader(data, shown)
    if not document.ok:
        raise _Usage("\n".join(f.render() for f in document.findings))
    return document.value


def run(argv: list[str], stdin: IO[bytes], out: IO[str]) -> int:
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
        out.write(f"{folder} is not a valid policy version:\n")
        out.writelines(f"  {finding.render()}\n" for finding in findings)
        return 1
    params = _params(policy, args.param)
    resources = [(arg, _resource(arg, stdin)) for arg in args.files]
    width = max(len(rule.id) for rule in policy.rules)
    worst = 0
    for arg, resource in resources:
        out.write(f"{'<stdin>' if arg == '-' else arg}\n")
        for result in shared(args.timeout).evaluate(policy, params, resource):
            why = f"  {result.message}" if result.message else ""
            out.write(f"  {result.rule:<{width}}  {result.result}{why}\n")
            if result.result not in (PASS, SKIP):
                worst = 1
    return worst


def main(argv: list[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv, sys.stdin.buffer, sys.stdout)
    except _Usage as exc:
        sys.stderr.write(f"policyhub-eval: error: {exc}\n")
        return USAGE_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
