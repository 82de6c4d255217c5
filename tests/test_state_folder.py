"""A state folder that cannot be written (docs/contract.md section 4): exit 4 before any request
when that can be known up front (not a folder, read-only); a full disk after publishing prints the
summary, names what was delivered but not recorded, exits 1, and the next release records it from
the hub with nothing created twice. Also: runs that write nothing leave nothing behind.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.hostilehub import HostileHub
from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo

PAGE = 4096

# Injected ENOSPC for machines where a test cannot mount a small tmpfs: the repository's own
# conftest.py (loaded by pytest in release mode too) makes the rename of delivered.json fail.
ENOSPC_CONFTEST = """
import errno, os
import publisher.state.folder as state

_replace = os.replace

def _full_disk(src, dst, *args, **kwargs):
    if str(dst).endswith("delivered.json"):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return _replace(src, dst, *args, **kwargs)

state.os.replace = _full_disk
"""


@pytest.fixture
def repo(repo: PolicyRepo) -> PolicyRepo:
    return repo.with_committed("alpha")


@contextmanager
def tmpfs(path: Path, size: str = "64k") -> Iterator[bool]:
    """A small tmpfs mounted on `path` (True), or False where this machine does not allow it."""
    if os.name != "posix" or os.geteuid() != 0:
        yield False
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_state_path_that_is_a_file_is_exit_4_before_any_request(repo: PolicyRepo) -> None:
    (repo.path / "state-file").write_text("not a folder\n")
    with HostileHub([]) as hostile:
        result = repo.pytest(
            "--release",
            "--state-dir",
            "state-file",
            env={"POLICY_HUB_URL": hostile.url, "POLICY_HUB_TOKEN": "t"},
        )
    assert result.returncode == 4, result.output
    assert "the state folder state-file cannot be written (it is not a folder)" in result.output
    assert "Traceback" not in result.output and "INTERNALERROR" not in result.output
    assert hostile.requests == []


@pytest.mark.parametrize(
    "args",
    [[], ["--release", "--dry-run"], ["--release", "--collect-only"]],
    ids=["author mode", "--dry-run", "--collect-only"],
)
def test_a_state_path_that_is_a_file_is_exit_4_in_runs_that_only_read_it(
    repo: PolicyRepo, args: list[str]
) -> None:
    # These runs do not probe writing; reading the state must say the same, not a traceback.
    (repo.path / "state-file").write_text("not a folder\n")
    result = repo.pytest(
        *args, "--state-dir", "state-file", env={"POLICY_HUB_URL": "http://127.0.0.1:9"}
    )
    assert result.returncode == 4, result.output
    assert "state-file/delivered.json cannot be read (it is not a folder)" in result.output
    assert "Traceback" not in result.output and "INTERNALERROR" not in result.output


def test_a_read_only_state_folder_is_exit_4_before_any_request(repo: PolicyRepo) -> None:
    state = repo.path / ".state"
    original = (state / "delivered.json").read_text()
    with tmpfs(state) as mounted:
        if not mounted:
            pytest.skip("mounting a tmpfs needs root here; not-a-folder covers the same path")
        (state / "delivered.json").write_text(original)
        subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
        with HostileHub([]) as hostile:
            result = repo.pytest(
                "--release", env={"POLICY_HUB_URL": hostile.url, "POLICY_HUB_TOKEN": "t"}
            )
    assert result.returncode == 4, result.output
    assert "the state folder .state cannot be written (read-only file system)" in result.output
    assert "nothing was sent" in result.output
    assert hostile.requests == []


def fill_but_one_page(folder: Path) -> None:
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * PAGE)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    os.truncate(filler, (filler.stat().st_size // PAGE - 1) * PAGE)


@pytest.mark.parametrize("how", ["tmpfs", "injected"])
def test_a_full_disk_after_publishing_is_reported_and_the_rerun_records_it(
    repo: PolicyRepo, hub: HubProcess, how: str
) -> None:
    state = repo.path / ".state"
    # Two pages of state: the probe (one page) passes, the new delivered.json does not fit.
    padded = {"version": 1, "policies": {}, "note": "x" * (PAGE + 100)}
    (state / "delivered.json").write_text(json.dumps(padded, indent=2, sort_keys=True) + "\n")
    if how == "injected":
        repo.write("conftest.py", ENOSPC_CONFTEST)
    repo.commit("padded state")
    with tmpfs(state) as mounted:
        if how == "tmpfs":
            if not mounted:
                pytest.skip("mounting a tmpfs needs root here; the injected variant runs instead")
            (state / "delivered.json").write_text(
                json.dumps(padded, indent=2, sort_keys=True) + "\n"
            )
            fill_but_one_page(state)
        full = repo.release(hub)
    assert full.returncode == 1, full.output
    assert "Traceback" not in full.output and "INTERNALERROR" not in full.output
    assert "Release successful – the 1 policy delivered" in full.stdout  # the summary is there
    assert "could not be written (no space left on the device)" in full.stdout
    assert "DELIVERED BUT NOT RECORDED (1): alpha@1.0.0" in full.stdout
    assert hub.created("alpha", "1.0.0") == 1
    assert repo.baseline is None
    if how == "injected":
        (repo.path / "conftest.py").unlink()
        repo.commit("the disk has room again")
    rerun = repo.release(hub)
    assert rerun.returncode == 0, rerun.output
    assert repo.delivered()["policies"]["alpha"]["1.0.0"]["outcome"] == "already-in-hub"
    assert repo.delivered()["note"] == padded["note"]
    assert hub.created("alpha", "1.0.0") == 1, "nothing is created twice"
    assert repo.baseline == repo.head()


@pytest.mark.parametrize("flag", ["--dry-run", "--collect-only"])
def test_runs_that_write_nothing_leave_nothing_behind(
    repo: PolicyRepo, hub: HubProcess, flag: str
) -> None:
    assert repo.release(hub).returncode == 0
    repo.commit("state of the first release")
    (repo.path / ".state/baseline.sha").unlink()
    repo.commit("lose the baseline: the change set is everything, all of it delivered")
    before = sorted(p.name for p in (repo.path / ".state").iterdir())
    result = repo.release(hub, flag)
    assert result.returncode == 0, result.output
    assert repo.git("status", "--porcelain", "--untracked-files=all") == ""
    assert sorted(p.name for p in (repo.path / ".state").iterdir()) == before
    assert repo.baseline is None, f"{flag} must not advance the baseline"


def test_a_probe_left_by_a_killed_run_is_removed_under_the_lock(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    stale = repo.path / ".state/.probe.abc123.tmp"
    stale.write_text("\n")
    result = repo.release(hub)
    assert result.returncode == 0, result.output
    assert not stale.exists()
