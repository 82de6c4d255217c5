"""PolicyChecker: every check of one policy version, from raw bytes to a CheckResult, in order.

Folder-level checks are here (names, versions, which files exist); then each file is loaded
(`loading/`), its shape checked (`checks/shape.py`), the rules of rules.yaml evaluated
(`rules.py`), the conditions compiled (`checks/conditions.py`) and tests.yaml run
(`checks/cases.py`). What a user reads of a finding is worded in `words/`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from pathlib import Path

from policy_checks.cel.resources import ResourceSchemas
from policy_checks.checks.cases import TestsOfVersion, missing_tests_finding
from policy_checks.checks.conditions import (
    CompiledPolicy,
    ParameterProblems,
    compile_conditions,
    rule_ids,
)
from policy_checks.checks.shape import Schema, shape_findings
from policy_checks.digest import (
    MAX_PUBLISH_BODY_BYTES,
    canonical_json,
    policy_digest,
    publish_body,
)
from policy_checks.evaluator import DEFAULT_TIMEOUT, ReadAhead, shared
from policy_checks.jsonpath import format_path
from policy_checks.loading import Document, SourceMap, load_json, load_yaml, read_yaml
from policy_checks.model import CheckResult, Finding, PolicyFiles
from policy_checks.naming import (
    DEFINITION_FILE,
    METADATA_FILE,
    TESTS_FILE,
    name_problem,
    parse_version_dir,
    version_dir_problem,
)
from policy_checks.rules import RuleSet, builtin_schema, evaluate, load_rules
from policy_checks.words import misnamed_file

_BOTH_FILES = f"every version folder needs {METADATA_FILE} and {DEFINITION_FILE}"
CONDITION_LANGUAGES = ("cel", "none")  # ini policy_condition_language
TEST_POLICIES = ("optional", "required")  # ini policy_tests
_LOADERS = {METADATA_FILE: load_json, DEFINITION_FILE: load_yaml}


def _oversized_publish_body(
    files: PolicyFiles, version: str, metadata: Document, definition: Document, digest: str
) -> int | None:
    """The size of the version's publish body when it is over the limit, else None. Serialised
    only where it could be: JSON of parsed YAML or JSON stays within a few times its source (`~`
    becomes `null`, `[a]` becomes `["a"]`), so ordinary policies are not serialised twice."""
    source = len(files.metadata or b"") + len(files.definition or b"")
    if 8 * source <= MAX_PUBLISH_BODY_BYTES:
        return None
    body = publish_body(files.name, version, metadata.value, definition.value, digest, "0" * 40)
    size = len(canonical_json(body))
    return size if size > MAX_PUBLISH_BODY_BYTES else None


def content_digest(files: PolicyFiles) -> str | None:
    """The digest `PolicyChecker.check` gives these files, without checking them: what a release
    needs of each already-delivered version to see whether it changed (a third of the cost)."""
    values = []
    for name, data in ((METADATA_FILE, files.metadata), (DEFINITION_FILE, files.definition)):
        if data is None:
            return None
        try:
            document = _LOADERS[name](data, f"{files.folder}/{name}")
        except Exception:  # as in `check`: hostile bytes give no digest, never a crash
            return None
        if not document.ok:
            return None
        values.append(document.value)
    return policy_digest(*values)


@dataclasses.dataclass(frozen=True)
class CheckSettings:
    """How a repository wants what a policy does checked (ini keys, CONTRACT section 8).

    `conditions` is the language of rule conditions: `cel` compiles and type-checks them and runs
    each version's tests.yaml; `none` keeps them opaque strings. `tests_required` asks every rule
    of every version for a passing and a failing case; `eval_timeout` bounds one rule's
    evaluation in a test case, in seconds."""

    conditions: str = "cel"
    tests_required: bool = False
    eval_timeout: float = DEFAULT_TIMEOUT


def start_evaluating(settings: CheckSettings) -> None:
    """Starts this process's evaluating child now, when conditions are evaluated at all: it
    imports the engine (~0.3 s) while the caller collects, instead of while the first version
    with test cases waits for it (docs/benchmarks.md)."""
    if settings.conditions == "cel":
        shared(settings.eval_timeout).start()


class PolicyChecker:
    """Checks policy versions against one RuleSet; build it once, call `check` many times."""

    def __init__(
        self,
        rule_set: RuleSet,
        settings: CheckSettings | None = None,
        resource_schemas: ResourceSchemas | None = None,
    ) -> None:
        self.rule_set = rule_set
        # resource-schemas/: conditions typed by them, test resources checked against them.
        self.resource_schemas = resource_schemas
        settings = settings or CheckSettings()
        self.conditions = settings.conditions
        self.tests_required = settings.tests_required
        self.eval_timeout = settings.eval_timeout
        self._schemas = {
            METADATA_FILE: Schema(rule_set.metadata_schema),
            DEFINITION_FILE: Schema(rule_set.definition_schema),
            TESTS_FILE: Schema(builtin_schema(TESTS_FILE)),
        }

    @classmethod
    def load(
        cls,
        repo_rules_dir: Path | None = None,
        settings: CheckSettings | None = None,
        resource_schemas: ResourceSchemas | None = None,
    ) -> PolicyChecker:
        """Built-in rules plus a repository's own; raises RulesError on a broken rules file."""
        return cls(load_rules(repo_rules_dir), settings, resource_schemas)

    def check(self, files: PolicyFiles) -> CheckResult:
        """All findings of one policy version; never raises, whatever the bytes."""
        return self.start(files)()

    def together(self) -> contextlib.AbstractContextManager[None]:
        """Whatever is sent to the evaluating process inside is sent in one write at the end
        (`Evaluator.together`)."""
        if self.conditions != "cel":
            return contextlib.nullcontext()
        return shared(self.eval_timeout).together()

    def read_ahead(self, files: PolicyFiles) -> ReadAhead | None:
        """Sends the version's tests.yaml to the evaluating process to read, while this one
        does other work; for `start(files, tests_ahead=...)`. None when there is nothing to
        send, or it cannot be sent without waiting (`Evaluator.read_ahead`)."""
        if self.conditions != "cel" or files.tests is None:
            return None
        return shared(self.eval_timeout).read_ahead(files.tests)

    def start(
        self, files: PolicyFiles, tests_ahead: ReadAhead | None = None
    ) -> Callable[[], CheckResult]:
        """`check` in two steps: everything up to the version's test cases, which are sent to
        the evaluating process now; the returned function waits for them and gives the result.
        Started one version ahead, the cases run while this process reports the previous one.
        `tests_ahead`: what `read_ahead(files)` gave, an item or more earlier."""
        try:
            finish = self._check(files, tests_ahead)
        except Exception as exc:  # a bug or a hostile repo schema must fail one item, not the run
            failed = self._internal_error(files, exc)
            return lambda: failed

        def result() -> CheckResult:
            try:
                return finish()
            except Exception as exc:
                return self._internal_error(files, exc)

        return result

    @staticmethod
    def _internal_error(files: PolicyFiles, exc: Exception) -> CheckResult:
        return CheckResult(
            files.folder,
            files.name,
            parse_version_dir(files.version_dir) or files.version_dir.removeprefix("v"),
            (Finding(files.folder, f"internal error while checking: {exc!r}", rule="internal"),),
            None,
            None,
            None,
        )

    def _check(
        self, files: PolicyFiles, tests_ahead: ReadAhead | None = None
    ) -> Callable[[], CheckResult]:
        folder = files.folder
        findings = list(files.read_errors)
        if problem := name_problem(files.name):
            findings.append(Finding(folder, problem[0], hint=problem[1], rule="folder-name"))
        version = parse_version_dir(files.version_dir)
        if problem := version_dir_problem(files.version_dir):
            findings.append(Finding(folder, problem[0], hint=problem[1], rule="folder-version"))

        unreadable = {finding.file for finding in files.read_errors}
        # A folder that is itself unreadable (a link) has no files to call missing.
        whole_folder = any(folder == f or folder.startswith(f + "/") for f in unreadable)
        documents: dict[str, Document] = {}
        conforming: set[str] = set()
        for name, data in ((METADATA_FILE, files.metadata), (DEFINITION_FILE, files.definition)):
            file = f"{folder}/{name}"
            if data is None:
                if file not in unreadable and not whole_folder:
                    findings.append(
                        Finding(
                            folder,
                            f"{name} is missing",
                            hint=misnamed_file(name, files.names) or _BOTH_FILES,
                            rule="missing-file",
                        )
                    )
                continue
            document = _LOADERS[name](data, file)
            findings.extend(document.findings)
            if document.ok:
                documents[name] = document
                refused = shape_findings(
                    document,
                    self._schemas[name],
                    file,
                    files.version_dir if name == METADATA_FILE else None,
                )
                findings.extend(refused)
                if not refused:
                    conforming.add(name)

        folder_values = {"folder.name": files.name, "folder.version": version}
        for rule in self.rule_set.rules:
            loaded = documents.get(rule.file)
            if loaded is None:
                continue
            for path, message in evaluate(rule, loaded.value, folder_values):
                findings.append(
                    Finding(
                        f"{folder}/{rule.file}",
                        message,
                        loaded.source.line(path),
                        format_path(path),
                        rule.hint,
                        rule.id,
                    )
                )

        tests_run: Callable[[], tuple[list[Finding], str | None]] | None = None
        definition_document = documents.get(DEFINITION_FILE)
        if definition_document is not None:
            # Even when the definition breaks its schema: a schema finding in one rule must
            # not hide the condition findings of the others (every problem at once).
            behaviour, tests_run = self._behaviour(
                files, definition_document, DEFINITION_FILE in conforming, tests_ahead
            )
            findings.extend(behaviour)

        metadata, definition = documents.get(METADATA_FILE), documents.get(DEFINITION_FILE)
        # The raw folder name without its `v`, as the item's id spells it.
        shown_version = version or files.version_dir.removeprefix("v")
        digest = None
        if metadata and definition:
            digest = policy_digest(metadata.value, definition.value)
            body = _oversized_publish_body(files, shown_version, metadata, definition, digest)
            if body is not None:
                findings.append(
                    Finding(
                        folder,
                        f"the version's POST /policies body would be {body} bytes, over the "
                        f"{MAX_PUBLISH_BODY_BYTES} (2 MiB) every Policy Hub must accept",
                        hint="make the files smaller: move bulky data out of the policy, or "
                        "split it into several policies",
                        rule="publish-size",
                    )
                )
        order = {
            folder: 0,
            f"{folder}/{METADATA_FILE}": 1,
            f"{folder}/{DEFINITION_FILE}": 2,
            f"{folder}/{TESTS_FILE}": 3,
        }

        def finish() -> CheckResult:
            tests = None
            if tests_run is not None:
                failed, tests = tests_run()
                findings.extend(failed)
            findings.sort(key=lambda f: (order.get(f.file, 4), f.line or 0))
            return CheckResult(
                folder=folder,
                name=files.name,
                version=shown_version,
                findings=tuple(findings),
                metadata=metadata.value if metadata else None,
                definition=definition.value if definition else None,
                digest=digest,
                tests=tests,
            )

        return finish

    def compile(self, files: PolicyFiles) -> tuple[CompiledPolicy | None, list[Finding]]:
        """The version's rules compiled, to evaluate by hand (`policyhub-eval`); None and the
        findings of its two files when it has any (its tests.yaml is not looked at)."""
        result = self.check(dataclasses.replace(files, tests=None))
        if not result.ok:
            return None, list(result.findings)
        if self.conditions == "none":
            return None, [
                Finding(files.folder, "policy_condition_language = none: nothing to evaluate")
            ]
        file = f"{files.folder}/{DEFINITION_FILE}"
        assert isinstance(result.definition, dict)  # result.ok: it passed the schema
        return compile_conditions(
            result.definition, file, SourceMap({}, {}), lambda: None, self.resource_schemas
        )

    def _behaviour(
        self,
        files: PolicyFiles,
        definition: Document,
        conforms: bool = True,
        tests_ahead: ReadAhead | None = None,
    ) -> tuple[list[Finding], Callable[[], tuple[list[Finding], str | None]] | None]:
        """What the policy does (CONTRACT section 8): its conditions compiled, its tests sent to
        the evaluator. Returns the findings so far and, when cases run, the function that waits
        for them: their findings and the "passed/total" count. `tests_ahead`: tests.yaml sent
        to the evaluating process to read."""
        if self.conditions == "none":
            return [], None
        folder = files.folder
        file = f"{folder}/{DEFINITION_FILE}"
        raw = files.definition or b""
        policy: CompiledPolicy | None
        policy, findings = compile_conditions(
            definition.value,
            file,
            definition.source,
            lambda: raw.decode("utf-8", "replace"),
            self.resource_schemas,
        )
        tests_file = f"{folder}/{TESTS_FILE}"
        if files.tests is None:
            if self.tests_required:
                findings.append(missing_tests_finding(folder, rule_ids(definition.value)))
            return findings, None
        document = self._tests_document(files.tests, tests_file, tests_ahead)
        findings.extend(document.findings)
        if not document.ok:
            return findings, None
        refused = shape_findings(document, self._schemas[TESTS_FILE], tests_file)
        if refused:
            # The definition's own problems above still show (every problem at once).
            return findings + refused, None
        parameters = (
            policy.parameters
            if policy is not None
            else tuple(ParameterProblems(definition.value, file, definition.source).parameters)
        )
        ids = rule_ids(definition.value)
        cases = TestsOfVersion(
            document,
            tests_file,
            folder,
            ids,
            parameters,
            files.read_other,
            resource_schemas=self.resource_schemas,
        )
        if self.tests_required and not cases.findings:
            findings.extend(cases.coverage())
        if policy is None:
            # Parameters that are wrong: cases cannot be given `params`; their own problems
            # still show.
            total = len(document.value["cases"])
            return findings + cases.findings, lambda: ([], f"0/{total}")
        if not conforms:
            # The rules that compiled run and their results show, but no case passes whole
            # against a definition that breaks its schema (it may have lost rules).
            policy = dataclasses.replace(policy, uncompiled=(*policy.uncompiled, "(schema)"))
        waiting = cases.start(policy, shared(self.eval_timeout))

        def tests_run() -> tuple[list[Finding], str | None]:
            run = waiting()
            return run.findings, run.counts

        return findings, tests_run

    def _tests_document(self, data: bytes, file: str, ahead: ReadAhead | None) -> Document:
        """tests.yaml as the evaluating process read it, or read here: when it has a finding
        (worded here, with its lines) or there was no process to read it."""
        if ahead is not None:
            read, value = shared(self.eval_timeout).value_of(ahead)
            if read:
                return read_yaml(data, file, value)
        return load_yaml(data, file)
