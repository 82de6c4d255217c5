"""What a person and a dashboard read: failure headers that name the version, report properties
(present when known, the version as the test id spells it), the step summary's problems, and the
README's claim about JUnit families checked against the installed pytest with junitparser, which
nobody here wrote; pytest-html's table with each version's outcome and reason, read from the file
it wrote. Also docs/contract.md section 1's line between a version folder and other content.
"""

from __future__ import annotations

import html
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from junitparser import JUnitXml, Properties, Property

from tests.hostilehub import HostileHub, Rule
from tests.hubprocess import HubProcess
from tests.policyrepo import PYPROJECT, PolicyRepo, metadata, seed_hub


@pytest.fixture
def repo(tmp_path: Path) -> PolicyRepo:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0")
    repo.add_policy("broken", "1.0.0")
    (repo.path / "policies/broken/v1.0.0/metadata.json").write_text("{not json")
    malformed = repo.path / "policies/alpha/v1.2"
    malformed.mkdir()
    (malformed / "metadata.json").write_text(json.dumps(metadata("alpha", "1.2")))
    repo.commit()
    return repo


def properties_by_case(path: Path) -> dict[str, dict[str, str]]:
    cases: dict[str, dict[str, str]] = {}
    for suite in JUnitXml.fromfile(str(path)):
        for case in suite:
            cases[case.name] = {
                prop.name: prop.value
                for group in case.iterchildren(Properties)
                for prop in group.iterchildren(Property)
            }
    return cases


def test_both_junit_families_carry_the_properties(repo: PolicyRepo) -> None:
    # The README says so: pytest writes an item's user_properties as <properties> of its
    # <testcase> in xunit1 and in xunit2 (its default) alike; only the record_property fixture,
    # which the harness does not use, warns about xunit2.
    repo.pytest("--junitxml=x1.xml", "-o", "junit_family=xunit1")
    repo.pytest("--junitxml=x2.xml", "-o", "junit_family=xunit2")
    x1 = properties_by_case(repo.path / "x1.xml")
    x2 = properties_by_case(repo.path / "x2.xml")
    assert set(x1) == set(x2) == {"alpha@1.0.0", "alpha@1.2", "broken@1.0.0"}
    assert x1["alpha@1.0.0"]["outcome"] == "valid"
    assert x1["alpha@1.0.0"]["digest"].startswith("sha256:")
    assert x1 == x2


def test_properties_are_present_when_known_and_agree_with_the_test_id(repo: PolicyRepo) -> None:
    repo.pytest("--junitxml=r.xml", "--json-report", "--json-report-file=r.json", "-n", "2")
    cases = properties_by_case(repo.path / "r.xml")
    assert "digest" not in cases["broken@1.0.0"], "unknown digest: absent, not empty"
    assert cases["alpha@1.2"]["version"] == "1.2", "the version as the id spells it"
    tests = json.loads((repo.path / "r.json").read_text())["tests"]
    by_id = {t["nodeid"]: t["metadata"] for t in tests}
    assert by_id["policies/alpha/v1.2::alpha@1.2"]["version"] == "1.2"
    assert "digest" not in by_id["policies/broken/v1.0.0::broken@1.0.0"]


def test_a_failure_header_names_the_policy_version(repo: PolicyRepo) -> None:
    result = repo.pytest("-v")
    assert "_ policy broken@1.0.0 _" in result.stdout
    assert "policies/broken/v1.0.0::broken@1.0.0 INVALID" in result.stdout  # dots kept
    assert "_ test session _" not in result.stdout


def test_the_step_summary_lists_each_failing_versions_problems(
    repo: PolicyRepo, hub: HubProcess, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    result = repo.release(hub, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.returncode == 1, result.output
    text = summary.read_text()
    assert "### Problems" in text
    assert "- **broken@1.0.0**\n  - policies/broken/v1.0.0/metadata.json:1: invalid JSON" in text
    assert "- **alpha@1.2**\n  - policies/alpha/v1.2: version folder 'v1.2'" in text


def test_folders_that_are_not_versions_are_left_alone(tmp_path: Path) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0")
    repo.write("policies/alpha/docs/README.md", "how to use alpha\n")
    repo.write("policies/alpha/examples/bucket.yaml", "kind: bucket\n")
    repo.commit()
    result = repo.pytest("-q")
    assert result.returncode == 0, result.output
    assert "1 passed" in result.stdout


def test_a_file_named_like_a_version_is_reported_in_both_modes(
    tmp_path: Path, hub: HubProcess
) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0")
    repo.write("policies/alpha/v2.0.0", "a file, not a folder\n")
    repo.commit()
    author = repo.pytest("-q")
    assert author.returncode == 1, author.output
    assert "policies/alpha/v2.0.0: is a file, not a version folder" in author.stdout
    release = repo.release(hub)
    assert release.returncode == 1, release.output
    assert "policies/alpha/v2.0.0: is a file, not a version folder" in release.stdout
    assert hub.created("alpha", "1.0.0") == 1 and hub.created("alpha", "2.0.0") == 0


def test_the_verdict_reads_naturally_for_none_and_one(tmp_path: Path, hub: HubProcess) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.write("pyproject.toml", PYPROJECT)
    repo.add_policy("alpha", "1.0.0")
    repo.commit()
    assert "Release successful – the 1 policy delivered" in repo.release(hub).stdout
    assert "Release successful – nothing to deliver" in repo.release(hub).stdout


class HtmlReport(HTMLParser):
    """What pytest-html 4 wrote: the table's header texts, and its rows, which it keeps as JSON in
    the `data-jsonblob` attribute of `#data-container` (each row's cells as HTML strings)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.header: list[str] = []
        self.blob: dict[str, object] = {}
        self._in_th = False
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "div" and found.get("id") == "data-container":
            self.blob = json.loads(found["data-jsonblob"] or "{}")
        if tag == "th":
            self._in_th = True
            self.header.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "th":
            self._in_th = False

    def handle_data(self, data: str) -> None:
        if self._in_th:
            self.header[-1] += data.strip()

    def cells(self, nodeid: str) -> dict[str, str]:
        """The call row of `nodeid`: header text -> the cell's HTML as pytest-html holds it."""
        rows = self.blob["tests"][nodeid]  # type: ignore[index]
        [row] = [
            r for r in rows if "::setup" not in r["testId"] and "::teardown" not in r["testId"]
        ]
        return dict(zip(self.header, row["resultsTableRow"], strict=True))


def cell_text(cell: str) -> str:
    inner = cell.split(">", 1)[1].rsplit("</td>", 1)[0]
    return html.unescape(inner)


def test_the_html_report_shows_each_versions_outcome_and_reason(
    tmp_path: Path, hub: HubProcess
) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0")
    repo.add_policy("gamma", "1.0.0")
    repo.add_policy("delta", "1.0.0")
    repo.commit()
    seed_hub(hub, "gamma", "1.0.0")
    # The hub check of delta answers a body that is no record (taken as not found, then
    # published): its reason quotes that body, markup included.
    hostile = "<script>alert(1)</script>"
    rules = [Rule("GET", r"^/policies/delta/1\.0\.0$", 200, {"detail": hostile})]
    with HostileHub(rules, upstream=hub.url) as proxy:
        result = repo.pytest(
            "--release",
            "-n",
            "2",
            "--html=report.html",
            "--self-contained-html",
            env={"POLICY_HUB_URL": proxy.url, "POLICY_HUB_TOKEN": hub.token},
        )
    assert result.returncode == 0, result.output
    report = HtmlReport(repo.path / "report.html")
    assert "Outcome" in report.header and "Reason" in report.header, report.header

    alpha = report.cells("policies/alpha/v1.0.0::alpha@1.0.0")
    gamma = report.cells("policies/gamma/v1.0.0::gamma@1.0.0")
    delta = report.cells("policies/delta/v1.0.0::delta@1.0.0")
    assert cell_text(alpha["Outcome"]) == "published"
    assert cell_text(alpha["Reason"]) == "published"
    assert cell_text(gamma["Outcome"]) == "already-in-hub"
    assert cell_text(gamma["Reason"]) == "already in the hub"
    assert cell_text(delta["Outcome"]) == "published"
    # The hub's text is shown, as text: escaped in the cell, never markup of the page.
    assert hostile in cell_text(delta["Reason"])
    assert "<script>" not in delta["Reason"] and "&lt;script&gt;" in delta["Reason"]
    assert "<script>alert" not in (repo.path / "report.html").read_text()
    # Without pytest-html (here: disabled) its hooks are not registered, so nothing complains.
    plain = repo.pytest("-p", "no:html")
    assert plain.returncode == 0, plain.output
