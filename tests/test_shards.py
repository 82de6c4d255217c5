"""Scale-out of one release (`--shard K/N` runs, then `--finalize FRAGMENT...`), end to end on one
machine: real git repositories, the real hub process, the harness as real pytest subprocesses,
exactly the commands `.github/workflows/release-sharded.yml` runs.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from publisher.release.plan import ReleasePlan
from publisher.release.shard import (
    Fragment,
    FragmentError,
    Shard,
    ShardError,
    merge_fragments,
    parse_shard,
    read_fragment,
    shard_index,
    write_fragment,
)
from publisher.state.folder import DeliveredIndex, DeliveryRecord
from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo, RunResult, metadata, seed_hub

SHARDS = 3
NAMES = [f"policy-{i:02d}" for i in range(9)]


def fragment_name(k: int, n: int = SHARDS) -> str:
    return f"policyhub-fragment-{k}-of-{n}.json"


def run_shards(repo: PolicyRepo, hub: HubProcess, *args: str, n: int = SHARDS) -> list[RunResult]:
    """All shards at once, as the matrix jobs run them (each would be its own runner)."""
    with ThreadPoolExecutor(n) as pool:
        return list(
            pool.map(lambda k: repo.release(hub, "--shard", f"{k}/{n}", *args), range(1, n + 1))
        )


def copy_of(repo: PolicyRepo, dest: Path) -> PolicyRepo:
    """The same repository (same commits, same SHAs) in another folder."""
    shutil.copytree(repo.path, dest)
    return PolicyRepo.existing(dest)


def outcomes(repo: PolicyRepo) -> dict[tuple[str, str], str]:
    data = repo.delivered()["policies"]
    return {(n, v): e["outcome"] for n, versions in data.items() for v, e in versions.items()}


@pytest.fixture
def repo(repo: PolicyRepo) -> PolicyRepo:
    repo.with_committed(*NAMES)
    # Every shard must have work, or the test would prove less than it claims.
    assert set(Counter(shard_index(n, "1.0.0", SHARDS) for n in NAMES)) == {1, 2, 3}
    return repo


# -- end to end ---------------------------------------------------------------------------------


def test_three_shards_and_finalize_equal_a_single_run(
    repo: PolicyRepo, hub_factory, tmp_path: Path
) -> None:
    single = copy_of(repo, tmp_path / "single")
    sharded_hub, single_hub = hub_factory(), hub_factory()
    for hub in (sharded_hub, single_hub):
        seed_hub(hub, "policy-03", "1.0.0")  # one already-in-hub outcome on both sides

    shard_runs = run_shards(repo, sharded_hub)
    for k, run in enumerate(shard_runs, start=1):
        assert run.returncode == 0, run.output
        assert f"Shard {k}/{SHARDS}: Release successful" in run.stdout
        assert f"fragment written to {fragment_name(k)}" in run.stdout
    assert repo.baseline is None and repo.delivered_versions() == set(), "shards never write state"

    fragments = [read_fragment(repo.path / fragment_name(k)) for k in range(1, SHARDS + 1)]
    shares = [set(f.share) for f in fragments]
    change_set = set(fragments[0].change_set)
    assert set().union(*shares) == change_set == {f"policies/{n}/v1.0.0" for n in NAMES}
    assert sum(len(s) for s in shares) == len(change_set), "a version in two shards"

    finalize = repo.release(sharded_hub, "--finalize", *map(fragment_name, (1, 2, 3)))
    assert finalize.returncode == 0, finalize.output
    assert f"Release successful – all {len(NAMES)} policies delivered" in finalize.stdout
    assert "Shard " not in finalize.stdout, "the finalize verdict is the contract's, unprefixed"

    reference = single.release(single_hub, "-n", "2")
    assert reference.returncode == 0, reference.output
    assert outcomes(repo) == outcomes(single)
    assert outcomes(repo)[("policy-03", "1.0.0")] == "already-in-hub"
    assert repo.baseline == single.baseline == repo.head()
    for name in NAMES:  # policy-03 counts its seeding: created once, never by the release
        assert sharded_hub.created(name, "1.0.0") == single_hub.created(name, "1.0.0") == 1

    again = repo.release(sharded_hub, "--shard", "1/3")
    assert again.returncode == 0, again.output
    assert "nothing to deliver" in again.stdout


def test_a_missing_fragment_keeps_the_baseline(repo: PolicyRepo, hub: HubProcess) -> None:
    assert all(run.returncode == 0 for run in run_shards(repo, hub))
    (repo.path / fragment_name(3)).unlink()  # shard 3's artifact never arrived
    result = repo.release(hub, "--finalize", *map(fragment_name, (1, 2)))
    assert result.returncode == 1, result.output
    assert "MISSING FRAGMENT: no fragment from shard 3/3" in result.stdout
    assert "Partial success" in result.stdout
    assert "no fragment reports it" in result.stdout
    assert repo.baseline is None
    on_shard_3 = {(n, "1.0.0") for n in NAMES if shard_index(n, "1.0.0", SHARDS) == 3}
    assert repo.delivered_versions() == {(n, "1.0.0") for n in NAMES} - on_shard_3

    # The next release finds shard 3's versions in the hub: recorded, never created twice.
    rerun = repo.release(hub)
    assert rerun.returncode == 0, rerun.output
    assert repo.baseline == repo.head()
    assert all(hub.created(n, "1.0.0") == 1 for n in NAMES)


def test_a_named_fragment_that_does_not_exist_keeps_the_baseline(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    assert all(run.returncode == 0 for run in run_shards(repo, hub))
    (repo.path / fragment_name(2)).unlink()
    result = repo.release(hub, "--finalize", *map(fragment_name, (1, 2, 3)))
    assert result.returncode == 1, result.output
    assert f"MISSING FRAGMENT: {fragment_name(2)} does not exist" in result.stdout
    assert repo.baseline is None


def test_a_failed_shard_keeps_the_baseline(repo: PolicyRepo, hub: HubProcess) -> None:
    broken = next(n for n in NAMES if shard_index(n, "1.0.0", SHARDS) == 2)
    repo.add_policy(broken, "1.0.0", meta=metadata(broken, "9.9.9"))  # version mismatch
    repo.commit("break one policy")
    runs = run_shards(repo, hub)
    assert [r.returncode for r in runs] == [0, 1, 0], [r.output for r in runs]
    assert "Shard 2/3: Partial success – 1 of" in runs[1].stdout
    result = repo.release(hub, "--finalize", *map(fragment_name, (1, 2, 3)))
    assert result.returncode == 1, result.output
    assert f"Partial success – 1 of {len(NAMES)} failed" in result.stdout
    assert repo.baseline is None
    assert (broken, "1.0.0") not in repo.delivered_versions()
    assert len(repo.delivered_versions()) == len(NAMES) - 1
    assert hub.created(broken, "1.0.0") == 0


def test_a_fragment_of_another_release_is_refused(repo: PolicyRepo, hub: HubProcess) -> None:
    assert all(run.returncode == 0 for run in run_shards(repo, hub))
    repo.add_policy("late", "1.0.0")
    repo.commit("a commit after the shards ran")
    result = repo.release(hub, "--finalize", *map(fragment_name, (1, 2, 3)))
    assert result.returncode == 4, result.output
    assert fragment_name(1) in result.output and "same --release-sha" in result.output
    assert repo.delivered_versions() == set() and repo.baseline is None


def test_a_corrupt_fragment_is_a_usage_error_naming_the_file(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    (repo.path / "broken-fragment.json").write_text('{"format": "policyhub-fragment", ')
    result = repo.release(hub, "--finalize", "broken-fragment.json")
    assert result.returncode == 4, result.output
    assert "broken-fragment.json:1: not a valid fragment" in result.output
    assert repo.delivered_versions() == set() and repo.baseline is None


def test_a_shard_with_nothing_to_do_writes_an_empty_fragment(tmp_path: Path, hub) -> None:
    repo = PolicyRepo(tmp_path / "one")
    repo.add_policy("alpha", "1.0.0")
    repo.commit()
    owner = shard_index("alpha", "1.0.0", SHARDS)
    idle = next(k for k in range(1, SHARDS + 1) if k != owner)
    result = repo.release(hub, "--shard", f"{idle}/{SHARDS}", "--fragment-out", "out/frag.json")
    assert result.returncode == 0, result.output
    fragment = read_fragment(repo.path / "out/frag.json")
    assert fragment.share == [] and len(fragment.deliveries) == 0
    assert fragment.change_set == ["policies/alpha/v1.0.0"]
    assert hub.created("alpha", "1.0.0") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--release", "--shard", "0/3"], "K counts from 1"),
        (["--release", "--shard", "4/3"], "K counts from 1"),
        (["--release", "--shard", "two"], "expected K/N"),
        (["--release", "--shard", "1/3", "--finalize", "x.json"], "use one per run"),
        (["--shard", "1/3"], "add --release"),
        (["--finalize", "x.json"], "add --release"),
        (["--release", "--fragment-out", "x.json"], "--fragment-out names the fragment"),
        (["--release", "--shard", "1/3", "--commit-state"], "never the state"),
        (["--release", "--finalize", "x.json", "--dry-run"], "no --dry-run"),
    ],
)
def test_scale_out_usage_errors_exit_4(
    repo: PolicyRepo, hub: HubProcess, args: list[str], message: str
) -> None:
    result = repo.pytest(*args, env={"POLICY_HUB_URL": hub.url, "POLICY_HUB_TOKEN": hub.token})
    assert result.returncode == 4, result.output
    assert message in result.output


# -- the engine, without pytest -----------------------------------------------------------------


def test_shard_index_is_pinned() -> None:
    # Shards and the finalize run may come from different installs: the assignment must never
    # change between versions of the harness, so these values are fixed, not recomputed.
    assert [shard_index("require-tags", "1.2.0", t) for t in (1, 2, 3, 7, 256)] == [
        1,
        1,
        2,
        2,
        253,
    ]
    assert shard_index("policy-00", "1.0.0", 3) == 2


def test_shard_index_spreads_evenly() -> None:
    counts = Counter(shard_index(f"policy-{i}", "1.0.0", 4) for i in range(4000))
    assert set(counts) == {1, 2, 3, 4}
    assert all(900 <= c <= 1100 for c in counts.values()), counts


@pytest.mark.parametrize("text", ["", "3", "1/", "/3", "a/b", "1/0", "0/1", "3/2", "1/257", "-1/3"])
def test_parse_shard_refuses(text: str) -> None:
    with pytest.raises(ShardError, match="--shard"):
        parse_shard(text)


def test_parse_shard_and_default_fragment_name() -> None:
    shard = parse_shard(" 2 / 3 ")
    assert shard == Shard(2, 3) and str(shard) == "2/3"
    assert not shard.default_fragment_name().startswith(".")  # upload-artifact skips dot-files


def _plan(change_set: list[str], sha: str = "a" * 40) -> ReleasePlan:
    return ReleasePlan(sha, None, None, change_set, list(change_set), [])


def _record(name: str, sha: str = "a" * 40) -> DeliveryRecord:
    return DeliveryRecord(
        name, "1.0.0", "2026-01-01T00:00:00Z", sha, "sha256:" + "0" * 64, "published"
    )


def test_fragment_round_trip_and_merge(tmp_path: Path) -> None:
    change = ["policies/a/v1.0.0", "policies/b/v1.0.0"]
    for k, name in ((1, "a"), (2, "b")):
        write_fragment(
            tmp_path / f"f{k}.json",
            Fragment(
                "a" * 40,
                Shard(k, 2),
                change,
                [f"policies/{name}/v1.0.0"],
                DeliveredIndex([_record(name)]),
            ),
        )
    text = (tmp_path / "f1.json").read_text()
    assert json.loads(text)["policies"]["a"]["1.0.0"]["outcome"] == "published"
    merged = merge_fragments(
        [(tmp_path / f"f{k}.json", f"f{k}.json") for k in (1, 2)], _plan(change)
    )
    assert {r.name for r in merged.deliveries} == {"a", "b"}
    assert merged.missing_shards == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", r"\$: \[\] is not of type 'object'"),
        ('{"format": "policyhub-fragment", "version": 2}', r"\$.version: 1 was expected"),
        (
            '{"format": "policyhub-fragment", "version": 1, "release_sha": "x", "shard": "1/2",'
            ' "change_set": [], "share": [], "policies": {}}',
            r"\$.release_sha: 'x' does not match",
        ),
    ],
)
def test_bad_fragments_name_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "frag.json"
    path.write_text(content)
    with pytest.raises(FragmentError, match=message) as excinfo:
        read_fragment(path, "frag.json")
    assert str(excinfo.value).startswith("frag.json:")


def test_two_fragments_for_one_shard_are_refused(tmp_path: Path) -> None:
    change = ["policies/a/v1.0.0"]
    for k in (1, 2):
        write_fragment(
            tmp_path / f"f{k}.json", Fragment("a" * 40, Shard(1, 2), change, [], DeliveredIndex())
        )
    with pytest.raises(FragmentError, match="a second fragment for shard 1/2"):
        merge_fragments([(tmp_path / f"f{k}.json", f"f{k}.json") for k in (1, 2)], _plan(change))


@pytest.mark.parametrize("spelling", ["separate", "equals"])
def test_fragments_outside_the_checkout_work_in_both_spellings(
    repo: PolicyRepo, hub: HubProcess, tmp_path: Path, spelling: str
) -> None:
    # pytest picks its rootdir from every argument that exists as a path, before it knows that
    # `/elsewhere/f.json` is the value of one of our options: both spellings must work.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    paths = [elsewhere / f"frag-{k}.json" for k in (1, 2, 3)]

    def option(name: str, *values: Path) -> list[str]:
        if spelling == "equals":
            return [f"{name}={value}" for value in values]
        return [name, *map(str, values)]

    for k, path in enumerate(paths, start=1):
        path.write_text("{}")  # exists already: the case that used to pick / as rootdir
        shard = repo.release(hub, "--shard", f"{k}/3", *option("--fragment-out", path))
        assert shard.returncode == 0, shard.output
        assert json.loads(path.read_text())["shard"] == f"{k}/3"
    final = repo.release(hub, *option("--finalize", *paths))
    assert final.returncode == 0, final.output
    assert "Release successful – all 9 policies delivered" in final.stdout
    assert repo.baseline == repo.head()
