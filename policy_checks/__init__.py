"""Declarative validation of policy versions: safe loading, rules as data, the content digest.

Knows policies and rules, nothing of git, HTTP or pytest. The public API is this module's names.
"""

from __future__ import annotations

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
    "symlink_finding",
]
