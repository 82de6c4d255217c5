"""`-n auto` sized to the work (pytest_xdist_auto_num_workers): no workers for a handful of
versions, where starting them costs more than the work; never more workers than versions."""

from __future__ import annotations

import pytest

from publisher.plugin import xdisthooks
from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo

pytestmark = pytest.mark.fast


def started_workers(output: str) -> int:
    for line in output.splitlines():
        if line.startswith("created: "):  # "created: 2/2 workers"
            return int(line.split()[1].split("/")[0])
    return 0


@pytest.mark.process
def test_a_small_release_starts_no_worker(repo: PolicyRepo, hub: HubProcess) -> None:
    for i in range(3):
        repo.add_policy(f"p{i}", "1.0.0")
    repo.commit()
    result = repo.release(hub, "-n", "auto")
    assert result.returncode == 0, result.output
    assert started_workers(result.stdout) == 0
    assert "Release successful – all 3 policies delivered" in result.stdout


@pytest.mark.process
def test_a_larger_release_gets_workers_but_never_more_than_versions(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    count = xdisthooks.RELEASE_MIN_FOR_WORKERS
    for i in range(count):
        repo.add_policy(f"p{i:02d}", "1.0.0")
    repo.commit()
    result = repo.release(hub, "-n", "auto")
    assert result.returncode == 0, result.output
    assert 1 <= started_workers(result.stdout) <= count


@pytest.mark.process
def test_author_mode_with_a_handful_starts_no_worker(repo: PolicyRepo) -> None:
    for i in range(5):
        repo.add_policy(f"p{i}", "1.0.0")
    repo.commit()
    result = repo.pytest("-n", "auto")
    assert result.returncode == 0, result.output
    assert started_workers(result.stdout) == 0 and "5 passed" in result.stdout


@pytest.mark.process
def test_changed_since_counts_only_the_changed_versions(repo: PolicyRepo) -> None:
    # What the validate action runs on every pull request; -n auto once left it to xdist,
    # which started a worker per CPU for no item at all.
    for i in range(5):
        repo.add_policy(f"p{i}", "1.0.0")
    repo.commit()
    repo.add_policy("p9", "1.0.0")
    result = repo.pytest("--changed-since", "HEAD", "-n", "auto")
    assert result.returncode == 0, result.output
    assert started_workers(result.stdout) == 0 and "1 passed" in result.stdout


@pytest.mark.parametrize(
    ("work", "release", "cpus", "expected"),
    [
        (0, True, 2, 0),
        (31, True, 2, 0),
        (32, True, 2, 2),
        (100, True, 2, 2),
        (100, True, 8, 8),
        (40, True, 64, 40),  # never more workers than versions
        (10, False, 2, 0),
        (399, False, 2, 0),
        # Validation on 2 cores: the controller needs one, and one worker beside it is slower.
        (800, False, 2, 0),
        (10_000, False, 2, 0),
        (400, False, 4, 0),
        (800, False, 4, 2),
        (10_000, False, 4, 3),
    ],
)
def test_the_sizing_rule(
    work: int, release: bool, cpus: int, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Option:
        pass

    option = Option()
    option.release = release  # type: ignore[attr-defined]
    config = type("Config", (), {"option": option})()
    monkeypatch.setattr(xdisthooks, "_work", lambda config: work)
    assert xdisthooks.auto_workers(config, cpus=cpus) == expected  # type: ignore[arg-type]


@pytest.mark.process
def test_the_count_is_the_runs_own_plan_delivered_versions_shards_and_finalize(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    """The count is what the run will deliver (`Run.count`, the same plan): versions already in
    delivered.json are not work, a shard counts its share, and --finalize runs no item. Each
    case sits across the threshold, so a count of the change set would start workers."""
    threshold = xdisthooks.RELEASE_MIN_FOR_WORKERS
    for i in range(threshold + 2):
        repo.add_policy(f"p{i:02d}", "1.0.0")
    repo.commit()
    first = repo.release(hub, "-n", "auto")
    assert first.returncode == 0, first.output
    assert started_workers(first.stdout) >= 1  # the whole change set: workers
    repo.commit("record the release")

    repo.add_policy("late", "1.0.0")
    repo.commit()
    # The baseline moved, so the change set is one version; rewind it to see delivered ones
    # dropped: the change set is every version again, all but one delivered.
    (repo.path / ".state" / "baseline.sha").unlink()
    again = repo.release(hub, "-n", "auto")
    assert again.returncode == 0, again.output
    assert started_workers(again.stdout) == 0
    assert hub.created("late", "1.0.0") == 1
    repo.commit("record the second release")

    for i in range(threshold + 8):  # shares of about 20 each (the hash is fixed)
        repo.add_policy(f"q{i:02d}", "1.0.0")
    repo.commit()
    fragments = []
    for k in (1, 2):
        shard = repo.release(hub, "-n", "auto", "--shard", f"{k}/2")
        assert shard.returncode == 0, shard.output
        assert started_workers(shard.stdout) == 0  # its share is below the threshold
        fragments.append(f"policyhub-fragment-{k}-of-2.json")
    final = repo.release(hub, "-n", "auto", "--finalize", *fragments)
    assert final.returncode == 0, final.output
    assert started_workers(final.stdout) == 0
    assert "Release successful" in final.stdout
