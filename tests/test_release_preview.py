"""The release preview of a pull request (`pytest --changed-since REF`, and the step summary of the
pull-request workflow): offline, what the next release will publish, skip as already delivered,
refuse as edited in place, and fail as invalid with each problem. Rendered from a real run in a
real repository and checked as Markdown, one table row per version (or problem).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo, metadata

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
