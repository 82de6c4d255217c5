"""Hub checks sent ahead (publisher/release/hubchecks.py): the controller sends every version's hub
check while the workers start, and the items take the answers. The contract's order per version
holds (its GET before its POST), no version is published twice, a subset run asks only for what it
runs, and a hub's answer never carries a secret to disk. Black-box through a recording proxy in
front of the real reference hub; the board file itself is tested as a unit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from publisher.hub.client import HubAnswer
from publisher.printable import register_secret
from publisher.release.hubchecks import AHEAD_CONNECTIONS, HubCheckBoard
from tests.hostilehub import HostileHub, Rule
from tests.hubprocess import HubProcess
from tests.policyrepo import PYPROJECT, PolicyRepo

NAMES = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")


def release_through(repo: PolicyRepo, hub: HubProcess, *args: str) -> tuple[Any, list[str]]:
    """A release through a proxy that records every request; returns the result and the
    requests to policies as `GET name` / `POST name`, in the order the hub received them."""
    with HostileHub([], upstream=hub.url) as proxy:
        result = repo.pytest(
            "--release", *args, env={"POLICY_HUB_URL": proxy.url, "POLICY_HUB_TOKEN": hub.token}
        )
        seen = list(proxy.requests)
    calls = []
    for method, path in seen:
        if method == "GET" and path.startswith("/policies/"):
            calls.append(f"GET {path.split('/')[2]}")
        elif method == "POST" and path == "/policies":
            calls.append("POST")
    return result, calls


def test_one_new_version_costs_one_hub_check_and_one_publish(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    # The up-front check of the token is that version's own hub check, not a request more.
    repo.add_policy("alpha", "1.0.0")
    repo.commit()
    result, calls = release_through(repo, hub, "-n", "auto")
    assert result.returncode == 0, result.output
    assert calls == ["GET alpha", "POST"]
    assert hub.created("alpha", "1.0.0") == 1


@pytest.mark.parametrize("workers", [["-n", "2"], ["-p", "no:xdist"]], ids=["-n 2", "no xdist"])
def test_every_check_precedes_its_publish_and_nothing_is_published_twice(
    repo: PolicyRepo, hub: HubProcess, workers: list[str]
) -> None:
    for name in NAMES:
        repo.add_policy(name, "1.0.0")
    repo.commit()
    result, calls = release_through(repo, hub, *workers)
    assert result.returncode == 0, result.output
    assert f"all {len(NAMES)} policies delivered" in result.stdout
    assert [hub.created(name, "1.0.0") for name in NAMES] == [1] * len(NAMES)
    assert calls.count("POST") == len(NAMES)
    for name in NAMES:
        gets = calls.count(f"GET {name}")
        # One check sent ahead; at most one more when an item ran before its answer was back.
        assert 1 <= gets <= 2, (name, calls)
    if workers == ["-n", "2"]:
        # Two workers take far longer to start than six loopback GETs: every check is back
        # before the first publish.
        first_post = calls.index("POST")
        assert sorted(calls[:first_post]) == sorted(f"GET {name}" for name in NAMES), calls


@pytest.mark.parametrize(
    ("selection", "runs"),
    [
        (["-k", "delta"], ["delta"]),
        (["policies/delta"], ["delta"]),
        (["--deselect", "policies/bravo/v1.0.0::bravo@1.0.0"], [n for n in NAMES if n != "bravo"]),
        (["--ignore", "policies/bravo"], [n for n in NAMES if n != "bravo"]),
    ],
    ids=["-k", "path", "--deselect", "--ignore"],
)
def test_a_subset_run_checks_only_what_it_runs(
    repo: PolicyRepo, hub: HubProcess, selection: list[str], runs: list[str]
) -> None:
    for name in NAMES:
        repo.add_policy(name, "1.0.0")
    repo.commit()
    result, calls = release_through(repo, hub, *selection)
    assert result.returncode == 0, result.output
    assert "not run" in result.stdout
    # The first version's check doubles as the check of the token; nothing else is asked
    # but the selected versions'.
    expected = ["GET alpha"] + [f"GET {name}" for name in runs if name != "alpha"]
    assert sorted(calls) == sorted(expected + ["POST"] * len(runs)), calls
    assert [hub.created(name, "1.0.0") for name in NAMES] == [int(n in runs) for n in NAMES]


def test_a_second_release_finds_what_the_first_published(repo: PolicyRepo, hub: HubProcess) -> None:
    # The state is lost between two releases: every check sent ahead answers 200 with the
    # hub's record, and nothing is published again.
    for name in NAMES[:3]:
        repo.add_policy(name, "1.0.0")
    repo.commit()
    first, _ = release_through(repo, hub, "-n", "2")
    assert first.returncode == 0, first.output
    (repo.path / ".state" / "delivered.json").unlink()
    (repo.path / ".state" / "baseline.sha").unlink()
    second, calls = release_through(repo, hub, "-n", "2")
    assert second.returncode == 0, second.output
    assert "POST" not in calls
    assert {v["outcome"] for p in repo.delivered()["policies"].values() for v in p.values()} == {
        "already-in-hub"
    }


# -- the board file, as a unit -----------------------------------------------------------------


def test_the_checks_ahead_stop_when_the_hub_dies_after_its_first_answer(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    """The probe is answered, then the hub never answers again: the checks sent ahead stop at
    the first one found unanswered (at most one batch in flight), every later version is not
    attempted without a request of its own, nothing is created, and the baseline stays."""
    for i in range(30):
        repo.add_policy(f"p{i:02d}", "1.0.0")
    repo.write(
        "pyproject.toml",
        PYPROJECT
        + "policy_hub_attempts = 1\npolicy_hub_answer_timeout = 1\n"
        + "policy_hub_request_deadline = 2\npolicy_hub_item_deadline = 3\n",
    )
    repo.commit()
    rules = [
        Rule("GET", "^/policies/", 404, {"error": "not found"}, times=1),
        Rule("GET", "^/policies/", silent=True),
        Rule("POST", "^/policies", silent=True),
    ]
    with HostileHub(rules, upstream=hub.url) as dead:
        result = repo.pytest(
            "--release", env={"POLICY_HUB_URL": dead.url, "POLICY_HUB_TOKEN": hub.token}
        )
        gets = [p for m, p in dead.requests if m == "GET" and p.startswith("/policies/")]
        posts = [p for m, p in dead.requests if m == "POST"]
    assert result.returncode == 1, result.output
    # The probe, one batch of checks ahead, and the next item's own check started while the
    # first version was delivered (HubCheckPrefetch); not one per version.
    assert len(gets) <= 2 + AHEAD_CONNECTIONS < 30, gets
    assert len(posts) <= 1, posts  # the probe's version, validated before the hub was known dead
    assert result.stdout.count("HUB UNREACHABLE") == 1
    assert "30 not attempted" in result.stdout or result.stdout.count("NOT-ATTEMPTED") >= 29
    assert hub.records() == [] and repo.baseline is None


def test_board_answers_travel_whole_and_once(tmp_path: Path) -> None:
    path = tmp_path / "hub-checks.jsonl"
    writer, reader = HubCheckBoard(path), HubCheckBoard(path)
    assert reader.take("policies/a/v1.0.0") is None  # nothing posted yet
    answer = HubAnswer(200, {"name": "a", "version": "1.0.0", "digest": "sha256:" + "0" * 64})
    writer.post("policies/a/v1.0.0", answer)
    writer.post("policies/b/v1.0.0", HubAnswer(None, error="timed out", unreachable=True))
    with open(path, "ab") as handle:
        handle.write(b'{"folder": "policies/c/v1.0.0", "ans')  # a line still being written
    assert reader.take("policies/a/v1.0.0") == answer
    assert reader.take("policies/a/v1.0.0") is None, "each answer is taken once"
    assert reader.take("policies/b/v1.0.0") == HubAnswer(None, error="timed out", unreachable=True)
    assert reader.take("policies/c/v1.0.0") is None
    with open(path, "ab") as handle:
        handle.write(b'wer": {"status": 404}}\n')  # ... and finished
    assert reader.take("policies/c/v1.0.0") == HubAnswer(404), "read once it is whole"


def test_board_ignores_lines_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "hub-checks.jsonl"
    path.write_bytes(b'not json\n{"folder": "x"}\n{"folder": "y", "answer": {"bogus": 1}}\n')
    board = HubCheckBoard(path)
    assert board.take("x") is None and board.take("y") is None


def test_board_never_writes_a_secret_the_hub_echoes(tmp_path: Path) -> None:
    secret = "canary-" + "Zq8" * 10
    register_secret(secret)
    board = HubCheckBoard(tmp_path / "hub-checks.jsonl")
    echo = {"detail": f"Bearer {secret}", "headers": {secret: [secret]}}
    board.post("policies/a/v1.0.0", HubAnswer(500, echo, error=f"echo {secret}"))
    assert secret not in board.path.read_text()
    taken = board.take("policies/a/v1.0.0")
    assert taken is not None and taken.status == 500 and "***" in taken.body["detail"]
