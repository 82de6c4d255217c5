"""Security: the token appears in no output, report, log or state file of a failing run (nor in
git history after --commit-state), and hostile policy content (names with `..`, URL-encoded
slashes, control characters, huge numbers, deep nesting) ends in validation errors without any
request for it reaching the hub.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo, metadata
from tests.reliability.figures import figures_file, record
from tests.reliability.invariants import access_log, creations


def test_token_is_in_no_file_of_a_failing_run(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("alpha", "1.0.0")
    repo.add_policy("beta", "1.0.0", meta=metadata("beta", "2.0.0"))  # invalid
    repo.add_policy("gamma", "1.0.0")
    repo.commit()
    # Faults make the run retry, fail some POSTs and print their errors: more places to leak.
    with HubProcess(tmp_path / "hub", faults="rate_503=0.6,retry_after=0,seed=2") as hub:
        result = repo.release(
            hub,
            "-n",
            "2",
            "--tb=long",
            "-l",
            "-rA",
            "-vv",
            "--commit-state",
            "--junitxml=report.xml",
            "--json-report",
            "--json-report-file=report.json",
            "--debug=debug.log",
            env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")},
        )
    assert result.returncode == 1, result.output
    places = {"stdout": result.stdout, "stderr": result.stderr}
    scanned = 0
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file() and path != hub.token_file:
            places[str(path.relative_to(tmp_path))] = path.read_bytes().decode("utf-8", "replace")
    history = subprocess.run(
        ["git", "-C", str(repo.path), "log", "-p", "--all"], capture_output=True, text=True
    )
    places["git log -p"] = history.stdout
    for where, text in places.items():
        scanned += 1
        assert hub.token not in text, f"the token leaked into {where}"
        assert hub.token[:12] not in text, f"a prefix of the token leaked into {where}"
    assert "debug.log" in " ".join(places) and "repo/report.json" in places
    record(figures_file(tmp_path_factory), "token-scan", files_scanned=scanned)


HOSTILE = {
    # folder name (under policies/)    : what its metadata claims
    "a%2Fb/v1.0.0": ("a%2Fb", "1.0.0"),
    "a%2f..%2fadmin/v1.0.0": ("a/../admin", "1.0.0"),
    "ctl\x01name/v1.0.0": ("ctl\x01name", "1.0.0"),
    "nl\nname/v1.0.0": ("nl\nname", "1.0.0"),
    "evil-name\n/v1.0.0": ("evil-name\n", "1.0.0"),  # `$` in a re.match would accept it
    "ünïcode/v1.0.0": ("ünïcode", "1.0.0"),
    "dots/v1.0.0%2F..": ("dots", "1.0.0/.."),
    "claims-dotdot/v1.0.0": ("..", "1.0.0"),
    "claims-slash/v1.0.0": ("claims-slash", "1.0.0/../../x"),
    "huge-number/v1.0.0": ("huge-number", "1.0.0"),
    "deep/v1.0.0": ("deep", "1.0.0"),
}

WELL_NAMED = ["claims-dotdot/v1.0.0", "claims-slash/v1.0.0", "huge-number/v1.0.0", "deep/v1.0.0"]


def test_hostile_content_fails_validation_and_never_reaches_a_url(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.add_policy("control", "1.0.0")  # one valid version: the hub is reached at all
    for folder, (name, version) in HOSTILE.items():
        path = repo.add_policy("placeholder", "0.0.0", meta=metadata(name, version))
        target = repo.path / "policies" / folder
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)
    (repo.path / "policies/placeholder").rmdir()
    huge = json.dumps(metadata("huge-number", "1.0.0"))[:-1] + ', "size": ' + "9" * 5000 + "}"
    (repo.path / "policies/huge-number/v1.0.0/metadata.json").write_text(huge)
    deep = "spec:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 120)) + "  " * 120 + "v\n"
    (repo.path / "policies/deep/v1.0.0/policy-definition.yaml").write_text(deep)
    repo.commit("hostile content")
    with HubProcess(tmp_path / "hub") as hub:
        result = repo.release(hub, "-n", "2", "--json-report", "--json-report-file=r.json")
        log = access_log(tmp_path / "hub")
    assert result.returncode == 1, result.output
    assert "INTERNALERROR" not in result.output
    tests = json.loads((repo.path / "r.json").read_text())["tests"]
    outcomes = {t["metadata"]["policy"]: t["metadata"]["outcome"] for t in tests}
    assert outcomes.pop("control") == "published"
    assert len(outcomes) == len(HOSTILE), sorted(outcomes)
    assert set(outcomes.values()) == {"invalid"}, outcomes
    assert creations(hub.db_path) == {("control", "1.0.0"): 1}
    # The contract asks the hub before validating, so well-named folders may be looked up; a
    # malformed name or version never reaches a URL path, not even escaped.
    well_named = {f"/policies/{f.split('/')[0]}/{f.split('/')[1][1:]}" for f in WELL_NAMED}
    assert {path for _, path, _ in log} <= {"/policies/control/1.0.0", "/policies", *well_named}
    assert [m for m, p, _ in log if p == "/policies"] == ["POST"]
    record(figures_file(tmp_path_factory), "hostile", inputs_fuzzed=len(HOSTILE))
