"""The release preview of a pull request (`pytest --changed-since REF`, and the step summary of the
pull-request workflow): offline, what the next release will publish, skip as already delivered,
refuse as edited in place, and fail as invalid with each problem. Rendered from a real run in a
real repository and checked as Markdown, one table row per version (or problem).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import yaml

from publisher.release.changes import compare_with_delivered, delivered_before
from publisher.release.outcome import ItemOutcome
from publisher.release.summary import change_lines
from publisher.state.folder import DeliveredIndex, DeliveryRecord
from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo, definition, metadata

NO_NETWORK = {"POLICY_HUB_URL": "http://127.0.0.1:9"}


def markdown_sections(text: str) -> dict[str, list[list[str]]]:
    """`### heading` -> the rows of the table under it (header and separator left out)."""
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for line in text.splitlines():
        if line.startswith("### "):
            current = sections.setdefault(line[4:], [])
        elif current is not None and line.startswith("|") and not re.match(r"^\|[-| ]+\|$", line):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            if cells[0] != "policy":
                current.append(cells)
    return sections


def test_the_preview_of_a_pull_request(tmp_path: Path, hub: HubProcess) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0")
    repo.add_policy("beta", "1.0.0")
    repo.commit()
    assert repo.release(hub).returncode == 0
    repo.commit("record the release")
    repo.git("checkout", "-q", "-b", "feature")
    repo.add_policy("gamma", "1.0.0")  # new and valid
    repo.add_policy("delta", "1.0.0", meta=metadata("delta", "9.9.9"))  # invalid
    repo.add_policy("alpha", "1.0.0", rule_ids=("edited-in-place",))  # edited after delivery
    beta = repo.path / "policies/beta/v1.0.0/metadata.json"
    beta.write_text(json.dumps(json.loads(beta.read_text()), indent=7))  # formatting only
    repo.commit("the pull request")
    summary = tmp_path / "summary.md"
    result = repo.pytest(
        "--changed-since", "main", env={**NO_NETWORK, "GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert result.returncode == 1, result.output
    out = result.stdout
    assert (
        "Release preview – 1 will be published by the next release, 1 already delivered, "
        "1 edited after delivery, 1 invalid" in out
    )
    assert "will be published by the next release:\n  gamma@1.0.0" in out
    assert "already delivered (the release skips them):\n  beta@1.0.0" in out
    assert (
        "edited after delivery (the release fails on them, never republishing them):\n  alpha@1.0.0"
        in out
    )
    assert "invalid (the release would fail them):\n  delta@1.0.0" in out
    assert "policies/delta/v1.0.0/metadata.json:3: $.version" in out

    sections = markdown_sections(summary.read_text())
    assert [row[:2] for row in sections["Will be published by the next release"]] == [
        ["gamma", "1.0.0"]
    ]
    assert sections["Will be published by the next release"][0][2].startswith("`sha256:")
    assert [row[:2] for row in sections["Already delivered (the release skips them)"]] == [
        ["beta", "1.0.0"]
    ]
    [edited] = sections[
        "Edited after delivery (the release fails on them, never republishing them)"
    ]
    assert edited[:2] == ["alpha", "1.0.0"] and "was delivered on" in edited[2]
    invalid = sections["Invalid (the release would fail them)"]
    assert {row[0] for row in invalid} == {"delta"} and any("$.version" in r[2] for r in invalid)


def test_the_preview_says_what_each_new_version_changes(tmp_path: Path, hub: HubProcess) -> None:
    """Against the delivered version before it, by meaning, in the terminal and the step
    summary; a value from the policy is literal Markdown there, never markup."""
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0", rule_ids=("keep", "change-me", "drop-me"))
    repo.add_policy("beta", "1.0.0")
    repo.commit()
    assert repo.release(hub).returncode == 0
    repo.commit("record the release")
    repo.git("checkout", "-q", "-b", "feature")
    new = definition(rule_ids=("keep", "change-me", "added"), severity="critical")
    new["spec"]["rules"][1]["condition"] = "resource.ok != false"
    new["spec"]["parameters"] = {"tag": {"type": "string", "default": "cost-center"}}
    hostile = "<img src=x onerror=alert(1)> | **bold** [link](https://example.com)"
    repo.add_policy(
        "alpha",
        "1.1.0",
        meta=metadata("alpha", "1.1.0", description=hostile),
        definition_text=yaml.safe_dump(new, sort_keys=False),
    )
    repo.add_policy("gamma", "1.0.0")
    # beta's delivered folder is gone from the branch: its files are read from git.
    shutil.rmtree(repo.path / "policies/beta/v1.0.0")
    repo.add_policy("beta", "1.0.1", rule_ids=("rule-two",))
    repo.commit("the pull request")
    summary = tmp_path / "summary.md"
    result = repo.pytest(
        "--changed-since", "main", env={**NO_NETWORK, "GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert result.returncode == 0, result.output
    out = result.stdout
    assert (
        "  alpha@1.1.0 (no tests)\n"
        "    changes since 1.0.0 (delivered)\n"
        "      - rule `added` added\n"
        "      - rule `drop-me` removed\n"
        "      - rule `change-me`: condition: resource.ok == true → resource.ok != false\n"
        "      - parameter `tag` added\n"
        "      - severity: high → critical\n"
        f"      - metadata description: Checks alpha. → {hostile}\n"
    ) in out
    assert "  gamma@1.0.0 (no tests)\n    first version of this policy\n" in out
    assert (
        "  beta@1.0.1 (no tests)\n    changes since 1.0.0 (delivered)\n"
        "      - rule `rule-two` added\n      - rule `rule-one` removed\n"
    ) in out

    markdown = summary.read_text()
    assert "#### What changes" in markdown
    assert "- **alpha@1.1.0**: changes since 1.0.0 \\(delivered\\)" in markdown
    assert "  - rule `added` added" in markdown
    assert "  - severity: high → critical" in markdown
    assert "  - **gamma@1.0.0**: first version of this policy" not in markdown
    assert "- **gamma@1.0.0**: first version of this policy" in markdown
    line = next(x for x in markdown.splitlines() if "metadata description" in x)
    # Every character Markdown or HTML would read is escaped: nothing unescaped remains.
    assert not re.search(r"(?<!\\)[<>*\[\]()|]", line.split(": ", 1)[1]), line
    assert "\\<img src=x onerror=alert\\(1\\)\\>" in line


def test_a_new_version_is_compared_with_the_delivered_one_below_it() -> None:
    assert delivered_before("1.4.1", ["1.4.0", "2.0.0", "1.3.9"]) == "1.4.0"
    assert delivered_before("1.0.0", ["2.0.0", "1.1.0"]) == "2.0.0"  # none below: the highest
    assert delivered_before("1.0.0", ["1.0.0"]) is None
    assert delivered_before("1.0.0", []) is None
    assert delivered_before("2.0.0", ["2.0.0-rc.1", "1.9.0"]) == "2.0.0-rc.1"


def test_a_delivered_version_whose_files_are_gone_is_said_so(tmp_path: Path) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.1.0")
    sha = repo.commit()
    # delivered.json names 1.0.0, released at a commit that never held its folder.
    delivered = DeliveredIndex(
        [
            DeliveryRecord(
                "alpha", "1.0.0", "2026-12-01T00:00:00Z", sha, "sha256:" + "0" * 64, "published"
            )
        ]
    )
    new = ItemOutcome("policies/alpha/v1.1.0", "alpha", "1.1.0", "passed")
    [changes] = compare_with_delivered(repo.path, [new], delivered).values()
    assert changes.against == "1.0.0" and changes.diff is None
    assert changes.problem == "the files of alpha 1.0.0 cannot be read"
    heading, lines = change_lines(changes)
    assert heading == "changes since 1.0.0 (delivered)" and lines == [changes.problem]
