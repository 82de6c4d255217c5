"""The run in the reports (docs/contract.md section 3, "The run in the reports"), in every mode:
the JSON report's top-level `release` object, pinned by a JSON Schema
(`tests/report-schemas/release.schema.json`), checked with jsonschema, which nobody here wrote;
the JUnit `<testsuite>` properties in both families, read with junitparser; the report's
`exitcode` equal to the process's; a failing item's `reason` its first problem in words.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from junitparser import JUnitXml

from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo, RunResult
from tests.test_reports import HtmlReport, cell_text, properties_by_case

SCHEMA = json.loads(
    (Path(__file__).parent / "report-schemas" / "release.schema.json").read_text(encoding="utf-8")
)
Draft202012Validator.check_schema(SCHEMA)  # a schema that is no schema pins nothing
VALIDATOR = Draft202012Validator(SCHEMA)
JSON_REPORT = ("--json-report", "--json-report-file=r.json")
BROKEN_FIRST_PROBLEM = "policies/broken/v1.0.0/metadata.json:1: invalid JSON"


def release_object(repo: PolicyRepo, result: RunResult, name: str = "r.json") -> dict[str, Any]:
    """The `release` object of the JSON report, valid against the schema, with the report's
    exit code equal to the process's."""
    report = json.loads((repo.path / name).read_text(encoding="utf-8"))
    assert report["exitcode"] == result.returncode, (report["exitcode"], result.output)
    record = report["release"]
    error = best_match(VALIDATOR.iter_errors(record))
    assert error is None, f"{error.json_path}: {error.message}"
    return dict(record)


def suite_properties(path: Path) -> dict[str, str]:
    """The `<testsuite>`'s own properties, as junitparser reads them (either family)."""
    [suite] = list(JUnitXml.fromfile(str(path)))
    return {prop.name: prop.value for prop in suite.properties()}


def by_name(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{v['name']}@{v['version']}": v for v in record["versions"]}


@pytest.fixture
def repo(tmp_path: Path) -> PolicyRepo:
    return PolicyRepo(tmp_path / "repo")


def second_release_repo(repo: PolicyRepo, hub: HubProcess) -> str:
    """alpha and gamma delivered by a first release; then alpha edited in place, gamma only
    reformatted, delta new, broken new and invalid. Returns the first release's commit."""
    repo.add_policy("alpha", "1.0.0")
    repo.add_policy("gamma", "1.0.0")
    first = repo.commit("first")
    assert repo.release(hub).returncode == 0
    repo.add_policy("alpha", "1.0.0", rule_ids=("rule-one", "rule-two"))  # edited in place
    meta = repo.path / "policies/gamma/v1.0.0/metadata.json"
    meta.write_text(json.dumps(json.loads(meta.read_text()), indent=4))  # formatting only
    repo.add_policy("delta", "1.0.0")
    repo.add_policy("broken", "1.0.0")
    (repo.path / "policies/broken/v1.0.0/metadata.json").write_text("{not json")
    repo.commit("second")
    return first


def test_a_release_puts_the_whole_run_in_the_json_and_junit_reports(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    first = second_release_repo(repo, hub)
    result = repo.release(hub, "-n", "2", *JSON_REPORT, "--junitxml=r.xml")
    assert result.returncode == 1, result.output
    record = release_object(repo, result)
    assert record["mode"] == "release"
    assert record["verdict"] == "partial"  # delta delivered; alpha and broken failed
    assert record["release_sha"] == repo.head()
    assert record["baseline_before"] == record["baseline_after"] == first == repo.baseline
    assert record["hub_url"] == hub.url
    versions = by_name(record)
    assert set(versions) == {"alpha@1.0.0", "gamma@1.0.0", "delta@1.0.0", "broken@1.0.0"}
    alpha = versions["alpha@1.0.0"]
    assert alpha["outcome"] == "changed-after-delivery"
    assert alpha["delivered_digest"] != alpha["digest"]
    assert alpha["delivered_digest"] == repo.delivered()["policies"]["alpha"]["1.0.0"]["digest"]
    assert "was delivered on" in alpha["reason"] and "new version folder" in alpha["reason"]
    gamma = versions["gamma@1.0.0"]
    assert gamma["outcome"] == "delivered-before"
    assert gamma["digest"] == repo.delivered()["policies"]["gamma"]["1.0.0"]["digest"]
    assert versions["delta@1.0.0"]["outcome"] == "published"
    broken = versions["broken@1.0.0"]
    assert broken["outcome"] == "invalid" and broken["reason"].startswith(BROKEN_FIRST_PROBLEM)
    assert record["counts"]["published"] == 1 and record["counts"]["invalid"] == 1
    assert record["counts"]["delivered-before"] == record["counts"]["changed-after-delivery"] == 1
    assert record["counts"]["already-in-hub"] == 0
    suite = suite_properties(repo.path / "r.xml")
    assert suite["mode"] == "release" and suite["verdict"] == "partial"
    assert {word: int(suite[word]) for word in record["counts"]} == record["counts"]
    # The item's own reason, in the JUnit properties as in the JSON metadata: the first problem.
    assert properties_by_case(repo.path / "r.xml")["broken@1.0.0"]["reason"].startswith(
        BROKEN_FIRST_PROBLEM
    )
    tests = {t["nodeid"]: t for t in json.loads((repo.path / "r.json").read_text())["tests"]}
    meta = tests["policies/broken/v1.0.0::broken@1.0.0"]["metadata"]
    assert meta["reason"].startswith(BROKEN_FIRST_PROBLEM) and "problem(s)" not in meta["reason"]
    for report in ("r.json", "r.xml"):
        assert hub.token not in (repo.path / report).read_text(), f"the token is in {report}"


@pytest.mark.parametrize("family", ["xunit1", "xunit2"])
def test_a_dry_run_says_its_mode_and_counts_in_either_junit_family(
    repo: PolicyRepo, hub: HubProcess, family: str
) -> None:
    second_release_repo(repo, hub)
    before = repo.delivered(), repo.baseline
    result = repo.release(
        hub, "--dry-run", *JSON_REPORT, "--junitxml=r.xml", "-o", f"junit_family={family}"
    )
    assert result.returncode == 1, result.output  # broken, and alpha changed after delivery
    assert (repo.delivered(), repo.baseline) == before, "a dry run writes nothing"
    record = release_object(repo, result)
    assert record["mode"] == "dry-run" and record["verdict"] == "partial"
    assert record["counts"]["would-publish"] == 1 and record["counts"]["published"] == 0
    assert record["baseline_after"] == record["baseline_before"] == repo.baseline
    suite = suite_properties(repo.path / "r.xml")
    assert suite["mode"] == "dry-run" and suite["verdict"] == "partial"
    assert suite["would-publish"] == "1" and suite["changed-after-delivery"] == "1"


def test_nothing_to_deliver_is_exit_0_in_the_report_too(repo: PolicyRepo, hub: HubProcess) -> None:
    repo.add_policy("alpha", "1.0.0")
    repo.commit()
    assert repo.release(hub).returncode == 0
    result = repo.release(hub, *JSON_REPORT, "--junitxml=r.xml")
    assert result.returncode == 0, result.output
    record = release_object(repo, result)  # exitcode 0, never pytest's 5
    assert record["verdict"] == "nothing-to-deliver" and record["versions"] == []
    assert record["baseline_before"] == record["baseline_after"] == repo.head()
    assert suite_properties(repo.path / "r.xml")["verdict"] == "nothing-to-deliver"


def test_the_embedded_hub_is_named_local(repo: PolicyRepo) -> None:
    repo.add_policy("alpha", "1.0.0")
    repo.commit()
    result = repo.pytest("--release", "--hub-url", "local", *JSON_REPORT)
    assert result.returncode == 0, result.output
    record = release_object(repo, result)
    assert record["hub_url"] == "local" and record["verdict"] == "successful"
    assert record["baseline_before"] is None and record["baseline_after"] == repo.head()


def test_author_mode_reports_each_version_and_its_first_problem(repo: PolicyRepo) -> None:
    repo.add_policy("alpha", "1.0.0")
    repo.add_policy("broken", "1.0.0")
    (repo.path / "policies/broken/v1.0.0/metadata.json").write_text("{not json")
    repo.commit()
    result = repo.pytest(*JSON_REPORT, "--junitxml=r.xml", "--html=r.html", "--self-contained-html")
    assert result.returncode == 1, result.output
    record = release_object(repo, result)
    assert record["mode"] == "author" and record["verdict"] == "invalid"
    assert record["release_sha"] is None and record["hub_url"] is None
    assert record["counts"]["valid"] == record["counts"]["invalid"] == 1
    broken = by_name(record)["broken@1.0.0"]
    assert broken["reason"].startswith(BROKEN_FIRST_PROBLEM), broken
    suite = suite_properties(repo.path / "r.xml")
    assert (suite["mode"], suite["verdict"], suite["valid"], suite["invalid"]) == (
        "author",
        "invalid",
        "1",
        "1",
    )
    html = HtmlReport(repo.path / "r.html")
    reason = cell_text(html.cells("policies/broken/v1.0.0::broken@1.0.0")["Reason"])
    assert reason.startswith(BROKEN_FIRST_PROBLEM), reason
    valid = repo.pytest("-k", "alpha", *JSON_REPORT)
    assert valid.returncode == 0, valid.output
    assert release_object(repo, valid)["verdict"] == "valid"


def test_shards_and_finalize_say_their_mode(repo: PolicyRepo, hub: HubProcess) -> None:
    for name in ("alpha", "beta", "gamma", "delta"):
        repo.add_policy(name, "1.0.0")
    repo.commit()
    shard_versions: list[str] = []
    for k in (1, 2):
        shard = repo.release(
            hub, "--shard", f"{k}/2", "--json-report", f"--json-report-file=s{k}.json"
        )
        assert shard.returncode == 0, shard.output
        record = release_object(repo, shard, f"s{k}.json")
        assert record["mode"] == "shard" and record["baseline_after"] is None
        shard_versions += by_name(record)
    assert sorted(shard_versions) == [f"{n}@1.0.0" for n in ("alpha", "beta", "delta", "gamma")]
    fragments = [f"policyhub-fragment-{k}-of-2.json" for k in (1, 2)]
    final = repo.release(hub, "--finalize", *fragments, *JSON_REPORT)
    assert final.returncode == 0, final.output
    record = release_object(repo, final)
    assert record["mode"] == "finalize" and record["verdict"] == "successful"
    assert record["counts"]["published"] == 4 and record["baseline_after"] == repo.head()
