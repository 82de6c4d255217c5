"""What a policy version is and does: its files loaded, checked and worded; rules as data;
the content digest. Knows policies and rules, nothing of git, HTTP or pytest. The public API is
this module's names.

Where things are:

    worktree.py        a version folder read from disk (no symlink followed) into `PolicyFiles`
    model.py           the values that cross the package boundary: `PolicyFiles`, `Finding`, ...
    naming.py          folder names and versions: `NAME_RE`, `SEMVER_RE` (SemVer is defined here)
    loading/           bytes in, data and a line map out: `decode.py`, `yaml.py` (the one YAML
                       reader), `yaml_errors.py` (why YAML refused a file), `json.py`
    checker.py         `PolicyChecker`: every check of one version, in order
    checks/            the checks: `shape.py` (a file against its JSON Schema), `conditions.py`
                       (CEL conditions compiled and type-checked), `cases.py` (tests.yaml)
    rules.py, rules/   the rules as data: the JSON Schemas and rules.yaml
    fastschema.py      JSON Schemas compiled into predicates once
    words/             every finding's phrase in the author's words: `__init__.py` (schema
                       errors, CEL errors, parameters), `cases.py` (tests.yaml)
    cel/               the CEL engine's side: `environment.py` (Kubernetes' environment, one
                       compile per text), `library/` (one module a Kubernetes library),
                       `resources.py` (`resource` typed by resource-schemas/), `messages.py`
    evaluator.py       conditions run in a bounded child process
    evalcli.py         `policyhub-eval`
    digest.py          the content digest and the publish body
    jsonpath.py        the JSON paths shown in findings and used by rules
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Every name below is imported on first use (PEP 562), not with the package: the evaluating
# child process needs only cel/ and evaluator.py, and starts that much sooner (its start is what
# the first version with tests.yaml waits for; docs/benchmarks.md).
if TYPE_CHECKING:
    from policy_checks.cel.resources import (
        RESOURCE_SCHEMAS_DIR,
        ResourceSchemaError,
        ResourceSchemas,
        schema_file_ignored,
    )
    from policy_checks.checker import (
        CONDITION_LANGUAGES,
        TEST_POLICIES,
        CheckSettings,
        PolicyChecker,
        content_digest,
        start_evaluating,
    )
    from policy_checks.digest import (
        MAX_PUBLISH_BODY_BYTES,
        canonical_json,
        policy_digest,
        publish_body,
    )
    from policy_checks.model import CheckResult, Finding, OtherFile, PolicyFiles
    from policy_checks.naming import (
        DEFINITION_FILE,
        MAX_FILE_BYTES,
        METADATA_FILE,
        NAME_RE,
        POLICIES_DIR,
        SEMVER_RE,
        TESTS_FILE,
        looks_like_version,
        parse_version_dir,
    )
    from policy_checks.rules import RulesError
    from policy_checks.worktree import (
        not_a_folder_finding,
        read_policy_folder,
        read_resource_schema_files,
        symlink_finding,
    )

_HOME = {
    "CONDITION_LANGUAGES": "policy_checks.checker",
    "CheckResult": "policy_checks.model",
    "CheckSettings": "policy_checks.checker",
    "DEFINITION_FILE": "policy_checks.naming",
    "Finding": "policy_checks.model",
    "MAX_FILE_BYTES": "policy_checks.naming",
    "MAX_PUBLISH_BODY_BYTES": "policy_checks.digest",
    "METADATA_FILE": "policy_checks.naming",
    "NAME_RE": "policy_checks.naming",
    "OtherFile": "policy_checks.model",
    "POLICIES_DIR": "policy_checks.naming",
    "PolicyChecker": "policy_checks.checker",
    "PolicyFiles": "policy_checks.model",
    "RESOURCE_SCHEMAS_DIR": "policy_checks.cel.resources",
    "ResourceSchemaError": "policy_checks.cel.resources",
    "ResourceSchemas": "policy_checks.cel.resources",
    "RulesError": "policy_checks.rules",
    "SEMVER_RE": "policy_checks.naming",
    "TESTS_FILE": "policy_checks.naming",
    "TEST_POLICIES": "policy_checks.checker",
    "canonical_json": "policy_checks.digest",
    "content_digest": "policy_checks.checker",
    "looks_like_version": "policy_checks.naming",
    "not_a_folder_finding": "policy_checks.worktree",
    "parse_version_dir": "policy_checks.naming",
    "policy_digest": "policy_checks.digest",
    "publish_body": "policy_checks.digest",
    "read_policy_folder": "policy_checks.worktree",
    "read_resource_schema_files": "policy_checks.worktree",
    "schema_file_ignored": "policy_checks.cel.resources",
    "start_evaluating": "policy_checks.checker",
    "symlink_finding": "policy_checks.worktree",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "CONDITION_LANGUAGES",
    "DEFINITION_FILE",
    "MAX_FILE_BYTES",
    "MAX_PUBLISH_BODY_BYTES",
    "METADATA_FILE",
    "NAME_RE",
    "POLICIES_DIR",
    "RESOURCE_SCHEMAS_DIR",
    "SEMVER_RE",
    "TESTS_FILE",
    "TEST_POLICIES",
    "CheckResult",
    "CheckSettings",
    "Finding",
    "OtherFile",
    "PolicyChecker",
    "PolicyFiles",
    "ResourceSchemaError",
    "ResourceSchemas",
    "RulesError",
    "canonical_json",
    "content_digest",
    "looks_like_version",
    "not_a_folder_finding",
    "parse_version_dir",
    "policy_digest",
    "publish_body",
    "read_policy_folder",
    "read_resource_schema_files",
    "schema_file_ignored",
    "start_evaluating",
    "symlink_finding",
]
