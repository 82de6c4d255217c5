"""Author mode (`pytest`, `pytest -k`, `--changed-since`) driven black-box through pytester: one
item per policy version, every bad input a failing item with the message a user sees, reports.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests
import yaml

from policy_checks import MAX_FILE_BYTES
from tests.hubprocess import HubProcess
from tests.policyrepo import PYPROJECT, PolicyRepo, definition, metadata
from tests.test_checks_examples import install_resource_schemas

pytestmark = pytest.mark.fast

EXAMPLES = Path(__file__).parent / "example-files"
INVALID_CASES = sorted(p for p in (EXAMPLES / "invalid").iterdir() if p.is_dir())
VALID_CASES = sorted(p for p in (EXAMPLES / "valid").iterdir() if p.is_dir())
GOOD = "policies/good-neighbour/v1.0.0"
GOOD_TESTS = """\
cases:
  - {name: ok, resource: {ok: true}, expect: pass}
  - {name: not ok, resource: {ok: false}, expect: {rule-one: fail}}
"""


def write_good_policy(root: Path, folder: str = GOOD) -> None:
    name, vdir = folder.split("/")[1:3]
    target = root / folder
    target.mkdir(parents=True)
    (target / "metadata.json").write_text(json.dumps(metadata(name, vdir[1:])))
    (target / "policy-definition.yaml").write_text(yaml.safe_dump(definition()))


def install_case(root: Path, case: Path) -> tuple[str, dict]:
    """An example-files case as a version folder of the repository at `root`: its files (and
    folders: fixtures), `oversize` and `symlinks` made there, its `resource_schemas` in the
    repository's resource-schemas/, and its `settings` as ini keys."""
    spec = yaml.safe_load((case / "case.yaml").read_text()) or {}
    folder = spec.get("folder", "policies/example/v1.0.0")
    target = root / folder
    shutil.copytree(case, target, ignore=shutil.ignore_patterns("case.yaml"))
    for name in spec.get("oversize", []):
        (target / name).write_bytes(b"a" * (MAX_FILE_BYTES + 1))
    for link, points_to in (spec.get("symlinks") or {}).items():
        (target / link).symlink_to(points_to)
    install_resource_schemas(spec, root)
    settings = spec.get("settings") or {}
    keys = {
        "conditions": "policy_condition_language",
        "tests": "policy_tests",
        "eval_timeout": "policy_eval_timeout",
    }
    pyproject = root / "pyproject.toml"
    lines = [f'{keys[key]} = "{value}"' for key, value in settings.items()]
    if lines:
        pyproject.write_text(pyproject.read_text().rstrip("\n") + "\n" + "\n".join(lines) + "\n")
    return folder, spec


@pytest.fixture
def policy_dir(pytester: pytest.Pytester) -> Path:
    pytester.makefile(".toml", pyproject=PYPROJECT)
    return pytester.path


@pytest.mark.parametrize("case", INVALID_CASES, ids=[c.name for c in INVALID_CASES])
def test_bad_input_fails_its_item_with_the_message(
    pytester: pytest.Pytester, policy_dir: Path, case: Path
) -> None:
    folder, spec = install_case(policy_dir, case)
    write_good_policy(policy_dir)
    if (spec.get("settings") or {}).get("tests") == "required":
        (policy_dir / GOOD / "tests.yaml").write_text(GOOD_TESTS)
    result = pytester.runpytest("-rf")
    output = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output
    assert "INTERNALERROR" not in output
    result.assert_outcomes(passed=1, failed=1)
    for expected in spec["expect"]:
        where = folder if expected["file"] == "." else f"{folder}/{expected['file']}"
        if expected.get("line"):
            where += f":{expected['line']}:"
        assert where in output, f"{where!r} not in output:\n{output}"
        assert expected["contains"] in output, output


@pytest.mark.process
@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_the_short_summary_line_of_an_invalid_version_names_its_first_problem(
    pytester: pytest.Pytester,
    policy_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    xdist: list[str],
) -> None:
    """pytest's `-r` summary shows an item's first line, cut to the terminal: that line must
    hold the first problem, not only how many there are."""
    for variable in ("CI", "BUILD_NUMBER"):  # on CI pytest shows the whole text instead
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("COLUMNS", "400")
    folder, _ = install_case(policy_dir, EXAMPLES / "invalid" / "many-problems")
    result = pytester.runpytest("-rf", *xdist)
    summary = [line for line in result.stdout.lines if line.startswith("INVALID ")]
    assert summary == [
        f"INVALID {folder}::example@1.0 - example@1.0: invalid – 5 problem(s): {folder}: "
        "version folder 'v1.0' is not 'v' + a Semantic Versioning 2.0.0 version "
        "(hint: v1.0 is not Semantic Versioning: write v1.0.0)"
    ], result.stdout.str()
    # The failure itself still lists every problem, each once.
    assert result.stdout.str().count(f"{folder}/metadata.json:5: $.tags") == 1


@pytest.mark.parametrize("case", VALID_CASES, ids=[c.name for c in VALID_CASES])
def test_valid_examples_pass(pytester: pytest.Pytester, policy_dir: Path, case: Path) -> None:
    install_case(policy_dir, case)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)


def test_one_item_per_version_with_name_and_version_in_the_id(
    pytester: pytest.Pytester, policy_dir: Path
) -> None:
    for folder in ("policies/require-tags/v1.2.0", "policies/require-tags/v1.10.0", GOOD):
        write_good_policy(policy_dir, folder)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "policies/good-neighbour/v1.0.0::good-neighbour@1.0.0",
            "policies/require-tags/v1.10.0::require-tags@1.10.0",
            "policies/require-tags/v1.2.0::require-tags@1.2.0",
        ]
    )


@pytest.mark.parametrize("args", [[], ["policies/require-tags"]], ids=["flat", "dirs"])
def test_an_items_location_is_the_one_pytest_computes(
    pytester: pytest.Pytester, policy_dir: Path, args: list[str]
) -> None:
    for folder in ("policies/require-tags/v1.2.0", GOOD):
        write_good_policy(policy_dir, folder)
    (policy_dir / "policies" / "loose").mkdir()
    (policy_dir / "policies" / "loose" / "metadata.json").write_text("{}")
    items, _ = pytester.inline_genitems(*args)
    assert items
    for item in items:
        assert item.location == pytest.Item.location.func(item)  # type: ignore[attr-defined]


def test_the_collected_items_are_kept_from_the_garbage_collector_until_the_end(
    pytester: pytest.Pytester, policy_dir: Path
) -> None:
    write_good_policy(policy_dir)
    pytester.makeconftest(
        """
        import gc
        def pytest_runtest_call(item):
            print("frozen while running:", gc.get_freeze_count() > 0)
        """
    )
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*frozen while running: True*"])
    assert gc.get_freeze_count() == 0


@pytest.mark.process
@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_k_selects_a_policy_and_a_version(
    pytester: pytest.Pytester, policy_dir: Path, xdist: list[str]
) -> None:
    for folder in ("policies/require-tags/v1.2.0", "policies/require-tags/v1.3.0", GOOD):
        write_good_policy(policy_dir, folder)
    result = pytester.runpytest_subprocess(*xdist, "-v", "-k", "require-tags")
    result.assert_outcomes(passed=2)
    assert "good-neighbour@" not in result.stdout.str()
    result = pytester.runpytest_subprocess(*xdist, "-v", "-k", "require-tags and 1.2.0")
    result.assert_outcomes(passed=1)
    item = r"policies/require-tags/v1\.2\.0::require-tags@1\.2\.0"
    result.stdout.re_match_lines([rf".*({item} PASSED|PASSED {item}).*"])


@pytest.mark.process
def test_under_xdist_only_the_workers_start_an_evaluating_child(
    pytester: pytest.Pytester, policy_dir: Path
) -> None:
    # The controller runs no item: a child of its own would take a core from the workers.
    for folder in (GOOD, "policies/require-tags/v1.2.0"):
        write_good_policy(policy_dir, folder)
    pytester.makeconftest(
        """
        from policy_checks import evaluator
        def pytest_sessionfinish(session):
            role = getattr(session.config, "workerinput", {}).get("workerid", "controller")
            alive = [e for e in evaluator._SHARED.values() if e._child_alive()]
            with open(f"children-{role}.txt", "w") as out:
                out.write(str(len(alive)))
        """
    )
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=2)
    children = {p.name: p.read_text() for p in policy_dir.glob("children-*.txt")}
    assert children == {
        "children-controller.txt": "0",
        **{f"children-gw{i}.txt": "1" for i in (0, 1)},
    }


@pytest.mark.process
@pytest.mark.skipif(os.name == "nt", reason="no read ahead where pipes need a thread")
def test_in_one_process_tests_files_are_read_two_versions_ahead_to_the_same_outcome(
    pytester: pytest.Pytester, policy_dir: Path
) -> None:
    # One process sends each tests.yaml to the evaluating process to read two items ahead; an
    # xdist worker, which knows only its next item, reads them itself. Same findings either way.
    folders = [f"policies/good-neighbour/v1.{n}.0" for n in range(1, 6)]
    tests = [GOOD_TESTS] * 5
    tests[2] = GOOD_TESTS.replace("expect: pass", "expect: {rule-one: fail}")  # a failing case
    tests[3] = GOOD_TESTS + "cases: []\n"  # a duplicate key: read here, to word it
    for folder, text in zip(folders, tests, strict=True):
        write_good_policy(policy_dir, folder)
        (policy_dir / folder / "tests.yaml").write_text(text)
    pytester.makeconftest(
        """
        from policy_checks import PolicyChecker
        sent = []
        read_ahead = PolicyChecker.read_ahead
        def counted(self, files):
            ahead = read_ahead(self, files)
            sent.append(ahead is not None)
            return ahead
        PolicyChecker.read_ahead = counted
        def pytest_sessionfinish(session):
            role = getattr(session.config, "workerinput", {}).get("workerid", "controller")
            with open(f"read-ahead-{role}.txt", "w") as out:
                out.write(str(sum(sent)))
        """
    )
    outputs = {}
    for label, args in (("one", ["-p", "no:xdist"]), ("xdist", ["-n", "2"])):
        result = pytester.runpytest_subprocess(*args, "-rf")
        result.assert_outcomes(passed=3, failed=2)
        text = result.stdout.str()
        outputs[label] = sorted({line for line in text.splitlines() if "tests.yaml" in line})
        counts = {p.name: p.read_text() for p in policy_dir.glob("read-ahead-*.txt")}
        for count in policy_dir.glob("read-ahead-*.txt"):
            count.unlink()
        if label == "one":
            assert counts == {"read-ahead-controller.txt": "3"}
        else:  # each worker read its own
            roles = ("controller", "gw0", "gw1")
            assert counts == {f"read-ahead-{role}.txt": "0" for role in roles}
    assert outputs["one"] == outputs["xdist"]
    assert any("duplicate key" in line for line in outputs["one"]), outputs["one"]
    assert any('case "ok" failed' in line for line in outputs["one"]), outputs["one"]


@pytest.mark.process
def test_bad_inputs_together_under_xdist_never_crash_the_session(
    pytester: pytest.Pytester, policy_dir: Path
) -> None:
    folders = set()
    for case in INVALID_CASES:
        spec = yaml.safe_load((case / "case.yaml").read_text()) or {}
        if spec.get("folder", "policies/example/v1.0.0") in folders:
            continue  # cases sharing the default folder are covered one by one above
        folders.add(install_case(policy_dir, case)[0])
    write_good_policy(policy_dir)
    result = pytester.runpytest_subprocess("-n", "2")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1, failed=len(folders))


def test_malformed_folders_are_items_never_silently_skipped(
    pytester: pytest.Pytester, policy_dir: Path
) -> None:
    write_good_policy(policy_dir)
    (policy_dir / "policies/build/v1.2").mkdir(parents=True)  # `build` is in norecursedirs
    (policy_dir / "policies/loose").mkdir(parents=True)
    (policy_dir / "policies/loose/metadata.json").write_text("{}")
    result = pytester.runpytest("-rf")
    result.assert_outcomes(passed=1, failed=2)
    output = result.stdout.str()
    assert "policies/build/v1.2" in output and "v1.2.0" in output
    assert "policies/loose" in output and "no version folder" in output


def test_symlink_leaving_the_repository_is_refused(
    pytester: pytest.Pytester, policy_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    write_good_policy(policy_dir, "policies/linked/v1.0.0")
    outside = tmp_path_factory.mktemp("outside") / "secret.yaml"
    outside.write_text(yaml.safe_dump(definition()))
    target = policy_dir / "policies/linked/v1.0.0/policy-definition.yaml"
    target.unlink()
    target.symlink_to(outside)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*policies/linked/v1.0.0/policy-definition.yaml*symlink*"])


@pytest.mark.process
def test_reports_carry_policy_version_outcome_and_digest_under_xdist(
    pytester: pytest.Pytester, policy_dir: Path
) -> None:
    write_good_policy(policy_dir)
    bad = policy_dir / "policies/broken/v1.0.0"
    bad.mkdir(parents=True)
    (bad / "metadata.json").write_text("{not json")
    (bad / "policy-definition.yaml").write_text(yaml.safe_dump(definition()))
    result = pytester.runpytest_subprocess(
        "-n", "2", "--junitxml=report.xml", "--json-report", "--json-report-file=report.json"
    )
    result.assert_outcomes(passed=1, failed=1)
    cases = {
        tc.get("name"): {p.get("name"): p.get("value") for p in tc.iter("property")}
        for tc in ET.parse(policy_dir / "report.xml").iter("testcase")
    }
    good = cases["good-neighbour@1.0.0"]
    assert good["policy"] == "good-neighbour" and good["version"] == "1.0.0"
    assert good["outcome"] == "valid" and good["digest"].startswith("sha256:")
    assert cases["broken@1.0.0"]["outcome"] == "invalid"
    tests = {t["nodeid"]: t for t in json.loads((policy_dir / "report.json").read_text())["tests"]}
    meta = tests[f"{GOOD}::good-neighbour@1.0.0"]["metadata"]
    assert meta["outcome"] == "valid" and meta["digest"] == good["digest"]


def test_inert_without_a_policies_folder(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)


@pytest.mark.process
def test_changed_since_limits_items_to_changed_versions(tmp_path: Path) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0")
    repo.add_policy("beta", "1.0.0")
    base = repo.commit("first")
    repo.add_policy("beta", "1.1.0")
    repo.commit("beta 1.1.0")
    repo.add_policy("gamma", "1.0.0")  # uncommitted work counts too: it is what the author sees
    result = repo.pytest("--changed-since", base, "-q", "--co")
    assert "beta@1.1.0" in result.stdout and "gamma@1.0.0" in result.stdout
    assert "alpha" not in result.stdout and "beta@1.0.0" not in result.stdout
    repo.commit("gamma")
    nothing = repo.pytest("--changed-since", "HEAD", "-q")
    assert nothing.returncode == 0, nothing.output  # nothing changed is a pass, not pytest's 5


@pytest.mark.process
def test_bad_changed_since_ref_is_a_usage_error(tmp_path: Path) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0")
    repo.commit()
    result = repo.pytest("--changed-since", "origin/main")
    assert result.returncode == 4
    # What to do about it, not git's own wording: a pull request's clone often lacks the ref.
    assert (
        "--changed-since origin/main: no commit 'origin/main' in this clone: fetch it "
        "(git fetch origin main; in GitHub Actions, actions/checkout with fetch-depth: 0), "
        "or name a ref that exists (git branch -a)"
    ) in result.output
    assert "fatal:" not in result.output and "Traceback" not in result.output


@pytest.mark.process
def test_changed_since_a_ref_without_common_history_says_fetch_it(tmp_path: Path) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0")
    repo.commit()
    repo.git("checkout", "-q", "--orphan", "unrelated")
    repo.commit("unrelated history")
    result = repo.pytest("--changed-since", "main")
    assert result.returncode == 4
    assert "main and HEAD have no common commit in this clone" in result.output
    assert "fetch-depth: 0" in result.output


@pytest.mark.process
def test_author_mode_never_touches_the_network_even_with_a_hub_configured(
    tmp_path: Path, hub: HubProcess
) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0")
    repo.commit()
    repo.add_policy("beta", "1.0.0", meta=metadata("beta", "2.0.0"))
    repo.commit()
    env = {"POLICY_HUB_URL": hub.url, "POLICY_HUB_TOKEN": hub.token}
    assert repo.pytest("-n", "2", env=env).returncode == 1
    assert repo.pytest("--changed-since", "HEAD~1", env=env).returncode == 1
    requests.get(f"{hub.url}/health", timeout=5)  # proves the access log is being written
    log = hub.stderr()
    assert "/health" in log
    assert "/policies" not in log


def test_a_repository_brings_its_own_rules(pytester: pytest.Pytester, policy_dir: Path) -> None:
    write_good_policy(policy_dir)
    twice = policy_dir / "policies/good-neighbour/v1.0.0/policy-definition.yaml"
    spec = definition(("rule-one", "rule-two"))
    for rule in spec["spec"]["rules"]:
        rule["description"] = "the same words"
    twice.write_text(yaml.safe_dump(spec))
    rules = policy_dir / ".policy-rules"
    rules.mkdir()
    (rules / "rules.yaml").write_text(
        "rules:\n"
        "  - id: unique-rule-descriptions\n"
        "    kind: unique\n"
        "    file: policy-definition.yaml\n"
        "    path: $.spec.rules[*].description\n"
        "    message: 'rule description {value} is used more than once'\n"
    )
    schema = json.loads(
        (Path(__file__).parent.parent / "policy_checks/rules/metadata.schema.json").read_text()
    )
    schema["required"] = [*schema["required"], "security_contact"]
    (rules / "metadata.schema.json").write_text(json.dumps(schema))
    result = pytester.runpytest("-rf")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*metadata.json*'security_contact' is a required property*",
            '*policy-definition.yaml*rule description "the same words" is used more than once*',
        ],
        consecutive=False,
    )


def test_a_broken_repository_rules_file_is_a_usage_error(
    pytester: pytest.Pytester, policy_dir: Path
) -> None:
    write_good_policy(policy_dir)
    (policy_dir / ".policy-rules").mkdir()
    (policy_dir / ".policy-rules/rules.yaml").write_text("rules: [unclosed\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert ".policy-rules/rules.yaml" in result.stderr.str()


WINDOWS_LIKE = """
import sys
# Modules that do not exist on Windows: importing any of them must not be needed.
for name in ("fcntl", "termios", "pwd", "grp", "resource"):
    sys.modules[name] = None
"""


@pytest.mark.process
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_author_mode_runs_where_fcntl_does_not_exist(tmp_path: Path, workers: list[str]) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(WINDOWS_LIKE)  # every process, xdist workers too
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0")
    repo.add_policy("beta", "1.0.0", meta=metadata("beta", "2.0.0"))
    repo.commit()
    probe = repo.pytest("-p", "no:cacheprovider", "--co", "-q", env={"PYTHONPATH": str(site)})
    assert probe.returncode == 0, probe.output
    result = repo.pytest("-p", "no:cacheprovider", *workers, env={"PYTHONPATH": str(site)})
    assert result.returncode == 1, result.output
    assert "1 failed, 1 passed" in result.stdout
    assert "ModuleNotFoundError" not in result.output and "ImportError" not in result.output
