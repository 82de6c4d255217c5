"""What a policy does (docs/contract.md section 8), end to end: CEL conditions and tests.yaml in
author mode and in `--release` (real git repositories, the real hub process), the ini keys, the
reports, and `policyhub-eval`. The message of each kind of mistake is pinned by an example folder
under tests/example-files (run through author mode by tests/test_author_mode.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo, definition
from tests.policyrepo import junit_properties as properties

TAGS = {
    "apiVersion": "policyhub/v1",
    "kind": "PolicyDefinition",
    "spec": {
        "severity": "medium",
        "targets": [{"kind": "storage.bucket"}],
        "parameters": {"tag": {"type": "string", "default": "cost-center"}},
        "rules": [
            {
                "id": "has-tag",
                "description": "Every bucket carries the tag",
                "condition": "params.tag in resource.tags",
            }
        ],
    },
}
TAGS_TESTS = """\
cases:
  - name: tagged bucket complies
    resource: {kind: storage.bucket, tags: {cost-center: "42"}}
    expect: pass
  - name: untagged bucket is denied
    resource_file: fixtures/untagged.json
    expect: {has-tag: fail}
  - name: another tag key
    params: {tag: team}
    resource: {kind: storage.bucket, tags: {team: a}}
    expect: pass
"""


def add_tagged(repo: PolicyRepo, name: str, version: str, tests: str | None = TAGS_TESTS) -> Path:
    folder = repo.add_policy(name, version, definition_text=yaml.safe_dump(TAGS, sort_keys=False))
    if tests is not None:
        (folder / "tests.yaml").write_text(tests)
        (folder / "fixtures").mkdir(exist_ok=True)
        (folder / "fixtures" / "untagged.json").write_text('{"kind": "storage.bucket", "tags": {}}')
    return folder


def test_a_release_refuses_what_does_not_compile_or_fails_its_tests(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    add_tagged(repo, "good", "1.0.0")
    broken = add_tagged(repo, "broken-condition", "1.0.0")
    text = (broken / "policy-definition.yaml").read_text()
    (broken / "policy-definition.yaml").write_text(text.replace("params.tag", "params.tga"))
    wrong = add_tagged(repo, "failing-tests", "1.0.0")
    (wrong / "tests.yaml").write_text(TAGS_TESTS.replace("{has-tag: fail}", "pass"))
    repo.commit("three versions, two of them wrong")

    first = repo.release(hub, "--junitxml=report.xml", "--json-report")
    assert first.returncode == 1, first.output
    assert "Partial success – 2 of 3 failed" in first.stdout
    assert "params.tga is not a declared parameter (declared: tag)" in first.stdout
    assert 'case "untagged bucket is denied" failed: rule has-tag: expected pass, got fail' in (
        first.stdout
    )
    assert hub.created("good", "1.0.0") == 1
    assert hub.created("broken-condition", "1.0.0") == 0
    assert hub.created("failing-tests", "1.0.0") == 0
    assert repo.baseline is None
    props = properties(repo.path / "report.xml")
    assert props["good@1.0.0"]["tests"] == "3/3"
    assert props["failing-tests@1.0.0"]["tests"] == "2/3"
    assert props["failing-tests@1.0.0"]["outcome"] == "invalid"
    assert props["broken-condition@1.0.0"]["tests"] == "0/3"  # nothing could run
    report = json.loads((repo.path / ".report.json").read_text())
    by_id = {t["nodeid"].split("::")[-1]: t for t in report["tests"]}
    assert by_id["good@1.0.0"]["metadata"]["tests"] == "3/3"

    # tests.yaml is not content: fixing only the tests publishes the version as it was.
    (wrong / "tests.yaml").write_text(TAGS_TESTS)
    (broken / "policy-definition.yaml").write_text(text)
    fixed = repo.commit("fix the condition and the tests")
    second = repo.release(hub)
    assert second.returncode == 0, second.output
    assert hub.created("failing-tests", "1.0.0") == 1
    assert hub.created("broken-condition", "1.0.0") == 1
    assert repo.baseline == fixed


def test_author_mode_counts_cases_and_names_versions_without_tests(repo: PolicyRepo) -> None:
    add_tagged(repo, "tested", "1.0.0")
    add_tagged(repo, "untested", "1.0.0", tests=None)
    result = repo.pytest("-v", "-p", "no:cacheprovider")
    assert result.returncode == 0, result.output
    assert "tested@1.0.0 PASSED (tests 3/3)" in result.stdout
    assert "untested@1.0.0 PASSED" in result.stdout
    assert "1 of 2 version(s) have tests: 3 of 3 case(s) passed" in result.stdout
    assert "without tests: untested@1.0.0" in result.stdout


def test_the_release_preview_shows_each_versions_tests(repo: PolicyRepo) -> None:
    repo.commit("empty")
    repo.git("branch", "base")
    add_tagged(repo, "tested", "1.0.0")
    add_tagged(repo, "untested", "1.0.0", tests=None)
    repo.commit("two versions")
    summary = repo.path / "summary.md"
    result = repo.pytest("--changed-since", "base", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.returncode == 0, result.output
    assert "  tested@1.0.0 (tests 3/3)" in result.stdout
    assert "  untested@1.0.0 (no tests)" in result.stdout
    rows = [line for line in summary.read_text().splitlines() if line.startswith("| ")]
    assert any(r.startswith("| tested | 1.0.0 | `sha256:") and r.endswith("| 3/3 |") for r in rows)
    assert any(r.startswith("| untested | 1.0.0 |") and r.endswith("| none |") for r in rows)


def test_editing_the_tests_of_a_delivered_version_is_no_edit_of_the_version(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    folder = add_tagged(repo, "tags", "1.0.0")
    repo.commit()
    assert repo.release(hub).returncode == 0
    with (folder / "tests.yaml").open("a") as handle:
        handle.write(
            "  - name: a bucket tagged twice\n"
            "    resource: {kind: storage.bucket, tags: {cost-center: a, team: b}}\n"
            "    expect: pass\n"
        )
    result = repo.pytest("-v")
    assert result.returncode == 0, result.output
    assert "PASSED (tests 4/4)" in result.stdout


def test_required_tests_and_coverage_from_the_ini(repo: PolicyRepo) -> None:
    (repo.path / "pyproject.toml").write_text(
        (repo.path / "pyproject.toml").read_text() + 'policy_tests = "required"\n'
    )
    add_tagged(repo, "covered", "1.0.0")
    add_tagged(repo, "untested", "1.0.0", tests=None)
    half = add_tagged(repo, "half", "1.0.0")
    (half / "tests.yaml").write_text(
        TAGS_TESTS.replace("{has-tag: fail}", "pass").replace(
            "fixtures/untagged.json", "fixtures/tagged.json"
        )
    )
    (half / "fixtures" / "tagged.json").write_text(
        '{"kind": "storage.bucket", "tags": {"cost-center": "1"}}'
    )
    result = repo.pytest("-rf")
    assert result.returncode == 1, result.output
    assert "1 passed, 2 failed" in result.stdout or "2 failed, 1 passed" in result.stdout
    assert "policies/untested/v1.0.0/tests.yaml: tests.yaml is missing" in result.stdout
    assert "rule has-tag has no case in which it fails" in result.stdout


def test_condition_language_none_keeps_conditions_opaque(repo: PolicyRepo) -> None:
    (repo.path / "pyproject.toml").write_text(
        (repo.path / "pyproject.toml").read_text() + 'policy_condition_language = "none"\n'
    )
    spec = definition()
    spec["spec"]["rules"][0]["condition"] = "not any(s.effect == 'Allow' for s in x)"
    repo.add_policy("rego-like", "1.0.0", definition_text=yaml.safe_dump(spec))
    result = repo.pytest("-v")
    assert result.returncode == 0, result.output
    assert "rego-like@1.0.0 PASSED" in result.stdout
    # The same condition is an error with the default language.
    (repo.path / "pyproject.toml").write_text(
        (repo.path / "pyproject.toml").read_text().replace('"none"', '"cel"')
    )
    result = repo.pytest()
    assert result.returncode == 1
    assert "rule rule-one: syntax error" in result.stdout


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('policy_condition_language = "rego"', "policy_condition_language = 'rego': expected cel"),
        ('policy_tests = "always"', "policy_tests = 'always': expected optional or required"),
        (
            'policy_tests = "required"\npolicy_condition_language = "none"',
            "policy_tests = required runs tests.yaml, which needs policy_condition_language = cel",
        ),
        ('policy_eval_timeout = "soon"', "policy_eval_timeout = 'soon': expected a number"),
    ],
)
def test_a_bad_ini_value_is_a_usage_error(repo: PolicyRepo, line: str, message: str) -> None:
    (repo.path / "pyproject.toml").write_text(
        (repo.path / "pyproject.toml").read_text() + line + "\n"
    )
    add_tagged(repo, "tags", "1.0.0")
    result = repo.pytest()
    assert result.returncode == 4, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_tests_run_in_every_worker_under_xdist(repo: PolicyRepo) -> None:
    for index in range(4):
        add_tagged(repo, f"tags-{index}", "1.0.0")
    wrong = add_tagged(repo, "wrong", "1.0.0")
    (wrong / "tests.yaml").write_text(TAGS_TESTS.replace("expect: pass", "expect: {has-tag: fail}"))
    result = repo.pytest("-n", "2", "-v")
    assert result.returncode == 1, result.output
    assert result.stdout.count("PASSED (tests 3/3)") == 4
    assert "INVALID (tests 1/3)" in result.stdout


# -- policyhub-eval ------------------------------------------------------------------------------


def policyhub_eval(
    repo: PolicyRepo, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "policy_checks.evalcli", *args],
        cwd=repo.path,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_policyhub_eval_prints_each_rules_result_per_file(repo: PolicyRepo) -> None:
    folder = add_tagged(repo, "tags", "1.0.0")
    (repo.path / "ok.yaml").write_text("kind: storage.bucket\ntags: {cost-center: x}\n")
    version = "policies/tags/v1.0.0"
    passing = policyhub_eval(repo, version, "ok.yaml")
    assert passing.returncode == 0, passing.stderr
    assert passing.stdout == "ok.yaml[0] storage.bucket\n  has-tag  pass\n"

    failing = policyhub_eval(repo, version, "ok.yaml", str(folder / "fixtures/untagged.json"))
    assert failing.returncode == 1
    assert failing.stdout.endswith("untagged.json[0] storage.bucket\n  has-tag  fail\n")

    other = policyhub_eval(repo, version, "-", "--param", "tag=team", stdin='{"tags": {}}')
    assert other.returncode == 0
    assert other.stdout == "<stdin>[0]\n  has-tag  skip\n"  # no kind: not a target

    erroring = policyhub_eval(repo, version, "-", stdin="kind: storage.bucket\n")
    assert erroring.returncode == 1
    assert erroring.stdout == '<stdin>[0] storage.bucket\n  has-tag  error  no such key: "tags"\n'


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["policies/nope/v1.0.0", "x.json"], "policies/nope/v1.0.0: no such version folder"),
        (["policies/tags/v1.0.0", "missing.json"], "missing.json: cannot be read"),
        (["policies/tags/v1.0.0", "-", "--param", "tga=x"], "did you mean tag?"),
        (["policies/tags/v1.0.0", "-", "--param", "tag"], "--param tag: expected NAME=VALUE"),
        (["policies/tags/v1.0.0"], "the following arguments are required: FILE"),
        (["policies/tags"], "the following arguments are required: FILE"),
    ],
)
def test_policyhub_eval_usage_errors_exit_4(
    repo: PolicyRepo, args: list[str], message: str
) -> None:
    add_tagged(repo, "tags", "1.0.0")
    result = policyhub_eval(repo, *args, stdin="{}")
    assert result.returncode == 4, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_policyhub_eval_on_an_invalid_version_lists_its_problems(repo: PolicyRepo) -> None:
    folder = add_tagged(repo, "tags", "1.0.0")
    text = (folder / "policy-definition.yaml").read_text()
    (folder / "policy-definition.yaml").write_text(text.replace("params.tag in", "params.tag in ("))
    result = policyhub_eval(repo, "policies/tags/v1.0.0", "-", stdin="{}")
    assert result.returncode == 1
    assert result.stdout.startswith("policies/tags/v1.0.0 is not a valid policy version:\n")
    assert "rule has-tag: syntax error" in result.stdout
