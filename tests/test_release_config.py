"""Usage and configuration errors of `pytest --release`: each is exit 4 with a message naming the
problem and the fix, before anything is sent (and, where the contract says so, before anything
is read).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import filelock
import pytest

from publisher.state.folder import release_lock_path
from tests.policyrepo import PolicyRepo


@pytest.fixture
def repo(repo: PolicyRepo) -> PolicyRepo:
    return repo.with_committed("alpha")


@pytest.mark.parametrize("workers", [[], ["-n", "auto"]], ids=["no-xdist", "-n auto"])
def test_ci_without_a_hub_url_is_a_usage_error(repo: PolicyRepo, workers: list[str]) -> None:
    # -n auto sizes itself before pytest_configure; it must leave this refusal to the harness.
    result = repo.pytest("--release", *workers, env={"CI": "true"})
    assert result.returncode == 4
    assert "set POLICY_HUB_URL" in result.output
    assert not (repo.path / ".state/.lock").exists(), "nothing may be read before this check"
    assert not (repo.path / ".policyhub-local").exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hub.example.com", "refusing plain http to hub.example.com"),
        ("ftp://hub.example.com", "is not an http(s) URL"),
        ("https://user:pw@hub.example.com", "put no credentials in the hub URL"),
    ],
)
def test_unusable_hub_urls_are_refused(repo: PolicyRepo, url: str, message: str) -> None:
    result = repo.pytest("--release", "--hub-url", url)
    assert result.returncode == 4
    assert message in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON"),
        ('{"version": 2, "policies": {}}', "$.version: 1 was expected"),
        ('{"version": 1, "policies": []}', "$.policies: [] is not of type 'object'"),
        (
            '{"version": 1, "policies": {"a": {"1.0.0": {"outcome": "x"}}}}',
            "$.policies.a['1.0.0']: 'delivered_at' is a required property",
        ),
        (
            '{"version": 1, "policies": {"a": {"1.0.0": {"delivered_at": "", "release_sha": "",'
            ' "outcome": "published", "digest": "sha256:0\\n::error::x"}}}}',
            "$.policies.a['1.0.0'].digest: 'sha256:0\\n::error::x' does not match",
        ),
    ],
    ids=["syntax", "format-version", "policies-type", "entry-fields", "digest"],
)
def test_corrupt_delivered_json_is_exit_4_with_the_way_back(
    repo: PolicyRepo, content: str, message: str
) -> None:
    (repo.path / ".state/delivered.json").write_text(content)
    result = repo.pytest("--release", "--hub-url", "http://127.0.0.1:9")
    assert result.returncode == 4
    assert message in result.output
    assert "git checkout -- .state/delivered.json" in result.output
    assert (repo.path / ".state/delivered.json").read_text() == content, "never rewritten"


def test_shallow_clone_is_exit_4_saying_fetch_full_history(
    repo: PolicyRepo, tmp_path: Path
) -> None:
    repo.add_policy("beta", "1.0.0")
    repo.commit()
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{repo.path}", str(shallow)], check=True
    )
    clone = PolicyRepo.existing(shallow)
    result = clone.pytest("--release", "--hub-url", "http://127.0.0.1:9")
    assert result.returncode == 4
    assert "fetch-depth: 0" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dry-run"], "only make sense with --release"),
        (["--release", "--changed-since", "HEAD"], "--changed-since is for author mode"),
        (["--release", "--dry-run", "--push"], "cannot be combined"),
        (["--release", "--release-sha", "nope"], "'nope' is not a commit"),
        (["--release", "--commit-state"], "name a real hub with --hub-url"),
    ],
)
def test_bad_flag_combinations(repo: PolicyRepo, args: list[str], message: str) -> None:
    result = repo.pytest(*args)
    assert result.returncode == 4
    assert message in result.output


def test_release_outside_a_policy_repository_is_a_usage_error(tmp_path: Path) -> None:
    repo = PolicyRepo(tmp_path / "empty")
    result = repo.pytest("--release", "--hub-url", "http://127.0.0.1:9")
    assert result.returncode == 4
    assert "no policies/ folder" in result.output


def test_second_run_on_the_same_state_is_refused_clearly(repo: PolicyRepo) -> None:
    git_dir = Path(repo.git("rev-parse", "--absolute-git-dir"))
    lock = filelock.FileLock(release_lock_path(git_dir, (repo.path / ".state").resolve()))
    with lock:
        result = repo.pytest("--release", "--hub-url", "http://127.0.0.1:9")
    assert result.returncode == 4
    assert "in use by another release run" in result.output
    assert sorted(p.name for p in (repo.path / ".state").iterdir()) == ["delivered.json"]


def test_release_runs_policy_items_only_never_other_tests(tmp_path: Path) -> None:
    repo = PolicyRepo(tmp_path / "repo")
    repo.write("pyproject.toml", "[tool.pytest.ini_options]\njunit_family = 'xunit1'\n")
    repo.write("tests/test_other.py", "def test_other():\n    raise AssertionError('ran')\n")
    repo.add_policy("alpha", "1.0.0")
    repo.commit()
    author = repo.pytest("-q")
    assert "1 failed, 1 passed" in author.stdout  # author mode: plain pytest, everything
    release = repo.pytest("--release", "-q")
    assert release.returncode == 0, release.output
    assert "test_other" not in release.stdout


def test_release_from_a_subfolder_rootdir_is_refused(tmp_path: Path) -> None:
    outer = PolicyRepo(tmp_path / "outer")
    inner = outer.path / "sub"
    inner.mkdir()
    (inner / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (inner / "policies/alpha/v1.0.0").mkdir(parents=True)
    outer.commit()
    sub = PolicyRepo.existing(inner)
    result = sub.pytest("--release", "--hub-url", "http://127.0.0.1:9")
    assert result.returncode == 4
    assert "is not the top of the git repository" in result.output


def test_the_rootdir_repair_finds_the_fields_it_needs_in_this_pytest(
    pytestconfig: pytest.Config,
) -> None:
    """pytest offers no public way to choose the rootdir again, so the repair writes private
    fields: this pins that the installed pytest still has them."""
    from publisher.plugin.options import _ROOTDIR_FIELDS

    assert all(hasattr(pytestconfig, name) for name in _ROOTDIR_FIELDS), pytest.__version__


def test_a_pytest_without_those_fields_gets_the_way_round(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from publisher.plugin.options import repair_rootdir

    fragment = str(tmp_path.parent / "elsewhere" / "frag.json")
    namespace = SimpleNamespace(
        finalize=[fragment], fragment_out=None, hub_ca_bundle=None, inifilename=None,
        override_ini=None, file_or_dir=[], rootdir=None, confcutdir=None,
    )  # fmt: skip
    config = SimpleNamespace(
        known_args_namespace=namespace,
        invocation_params=SimpleNamespace(dir=tmp_path),
        rootpath=Path("/"),  # what pytest chose from the option's value
        inipath=None,
    )
    with pytest.raises(pytest.UsageError, match=r"write the option with '=' \(--finalize=PATH"):
        repair_rootdir(config, ["--finalize", fragment])  # type: ignore[arg-type]


def test_each_limit_key_names_a_retry_policy_field_whose_default_the_readme_states() -> None:
    """The defaults are RetryPolicy's own (options.LIMIT_KEYS names only the field): the README's
    limits table says the same numbers."""
    import dataclasses
    import re

    from publisher.hub.client import RetryPolicy
    from publisher.plugin.options import LIMIT_KEYS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    fields = {f.name: f.default for f in dataclasses.fields(RetryPolicy)}
    for key, (attr, _) in LIMIT_KEYS.items():
        row = re.search(rf"^\|[^|]*\| `{key}` \| ([0-9.]+)( s)? \|$", readme, re.MULTILINE)
        assert row is not None, f"README.md's limits table has no row for {key}"
        assert float(row.group(1)) == fields[attr], key
