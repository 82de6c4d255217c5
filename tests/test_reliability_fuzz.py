"""Fuzzing of the loaders and validators: arbitrary bytes, JSON-ish and YAML-ish text as
`metadata.json` and `policy-definition.yaml` never crash and never hang; each input ends as a
pass or as findings that name the file, within a bounded time. In-process with hypothesis (the
budget sets the examples), then once black-box: a repository of random folders under `-n 2`.
`tests/reliability/fuzz_atheris.py` runs the same property under atheris where it installs.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_checks import PolicyChecker, PolicyFiles
from tests.hubprocess import HubProcess
from tests.policyrepo import PolicyRepo
from tests.reliability.figures import BUDGET, figures_file, record
from tests.reliability.invariants import access_log, creations

FOLDER = "policies/fuzzed/v1.0.0"
GOOD_METADATA = json.dumps(
    {"name": "fuzzed", "version": "1.0.0", "description": "d", "owner": "o"}
).encode()
GOOD_DEFINITION = (
    b"apiVersion: policyhub/v1\nkind: PolicyDefinition\nspec:\n  severity: high\n"
    b"  rules:\n    - id: r\n      description: d\n      condition: c\n"
)
# One input may take this long on a loaded CI runner; anything slower counts as a hang.
PER_INPUT_SECONDS = 2.0
CHECKER = PolicyChecker.load()
CHECKED = [0]  # inputs checked in this process, for the figures

FUZZ_SETTINGS = settings(
    max_examples=BUDGET.fuzz_examples,
    deadline=int(PER_INPUT_SECONDS * 1000),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=BUDGET.name == "ci",  # CI: the same examples every run
    database=None,
)

YAML_PIECES = [
    "apiVersion: policyhub/v1",
    "kind: PolicyDefinition",
    "spec:",
    "  severity: high",
    "  enforcement: deny",
    "  rules:",
    "    - id: r",
    "      description: d",
    "      condition: c",
    "  parameters:",
    "    p: {type: string, default: x}",
    "a: &anchor [1, 2]",
    "b: *anchor",
    "<<: *anchor",
    "x: !!binary aGVsbG8=",
    "x: !!set {a, b}",
    "x: !!python/object:os.system ls",
    "when: 2001-12-14t21:59:43.10-05:00",
    "n: 0x" + "f" * 64,
    "n: 1e400",
    "n: .nan",
    "n: -.inf",
    "n: 0o777",
    "n: " + "9" * 80,
    "? [complex, key]: value",
    "1: integer key",
    "dup: 1",
    "dup: 2",
    "---",
    "...",
    "%YAML 1.1",
    "  - item",
    "\t tab",
    "{",
    "[[[[[[[[",
    "'unclosed",
    '"\\x00"',
    "\ufeffbom: yes",
    "norway: no",
    "empty:",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=30,
)
metadata_like = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.just("fuzzed"), st.text(max_size=70), json_values),
        "version": st.one_of(st.just("1.0.0"), st.floats(), st.text(max_size=12), json_values),
        "description": json_values,
        "owner": json_values,
        "title": json_values,
        "tags": st.lists(json_values, max_size=3),
    },
)


@pytest.fixture(scope="module", autouse=True)
def _count_fuzzed_inputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    record(figures_file(tmp_path_factory), "fuzz", inputs_fuzzed=CHECKED[0])


def json_text(value: object) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def check_bounded(metadata: bytes | None, definition: bytes | None) -> None:
    """The property: no exception, a verdict (ok, or findings naming the file), quickly."""
    CHECKED[0] += 1
    started = time.monotonic()
    result = CHECKER.check(PolicyFiles(folder=FOLDER, metadata=metadata, definition=definition))
    elapsed = time.monotonic() - started
    assert elapsed < PER_INPUT_SECONDS, f"took {elapsed:.2f}s"
    assert result.ok == (not result.findings)
    for finding in result.findings:
        assert finding.file.startswith(FOLDER), finding
        assert finding.message.strip(), finding
        assert finding.render()  # every finding can be printed
    if result.ok:
        assert result.digest and result.digest.startswith("sha256:")


@FUZZ_SETTINGS
@given(metadata=st.binary(max_size=2048), definition=st.binary(max_size=2048))
def test_arbitrary_bytes_in_both_files(metadata: bytes, definition: bytes) -> None:
    check_bounded(metadata, definition)


@FUZZ_SETTINGS
@given(metadata=st.one_of(json_values.map(json_text), metadata_like.map(json_text)))
def test_json_like_metadata(metadata: bytes) -> None:
    check_bounded(metadata, GOOD_DEFINITION)


@FUZZ_SETTINGS
@given(
    lines=st.lists(st.one_of(st.sampled_from(YAML_PIECES), st.text(max_size=30)), max_size=25),
    indent=st.lists(st.integers(0, 6), max_size=25),
)
def test_yaml_like_definition(lines: list[str], indent: list[int]) -> None:
    text = "\n".join(
        " " * (indent[i] if i < len(indent) else 0) + line for i, line in enumerate(lines)
    )
    check_bounded(GOOD_METADATA, text.encode("utf-8", "surrogatepass"))


@FUZZ_SETTINGS
@given(
    which=st.sampled_from(["metadata", "definition"]),
    cut=st.integers(0, 400),
    flip=st.integers(0, 255),
)
def test_truncated_and_flipped_valid_files(which: str, cut: int, flip: int) -> None:
    good = GOOD_METADATA if which == "metadata" else GOOD_DEFINITION
    broken = bytearray(good[: cut % (len(good) + 1)])
    if broken:
        broken[flip % len(broken)] = flip
    pair = (bytes(broken), GOOD_DEFINITION) if which == "metadata" else (GOOD_METADATA, broken)
    check_bounded(bytes(pair[0]), bytes(pair[1]))


@pytest.mark.parametrize(
    "metadata, definition",
    [
        (b"[" * 200_000, GOOD_DEFINITION),  # deep nesting
        (GOOD_METADATA, b"a: " + b"[" * 200_000),
        (GOOD_METADATA, b"a: &a [" + b"*a, " * 5000 + b"]"),  # alias bomb
        (b'{"a": ' + b"9" * 5000 + b"}", GOOD_DEFINITION),  # past int-to-str limit
        (GOOD_METADATA, GOOD_DEFINITION + b"n: 0x" + b"f" * 5000 + b"\n"),
        (b" " * (1024 * 1024 + 1), GOOD_DEFINITION),  # over 1 MiB
        (None, None),
    ],
    ids=["json-deep", "yaml-deep", "alias-bomb", "huge-int", "huge-hex", "over-1mib", "missing"],
)
def test_hostile_inputs_end_as_clear_failures(
    metadata: bytes | None, definition: bytes | None
) -> None:
    check_bounded(metadata, definition)
    result = CHECKER.check(PolicyFiles(folder=FOLDER, metadata=metadata, definition=definition))
    assert not result.ok


def random_bytes(rng: random.Random) -> bytes:
    """A mix of noise, valid files and near-valid files, like the hypothesis strategies."""
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 300))
    good = rng.choice([GOOD_METADATA, GOOD_DEFINITION])
    if kind == 1:
        return good
    if kind == 2:
        return good[: rng.randrange(len(good))]
    return "\n".join(rng.choice(YAML_PIECES) for _ in range(rng.randrange(1, 12))).encode()


def test_random_folders_black_box_under_xdist(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A release of 40 random folders: no INTERNALERROR, every item passes or fails with its
    files named, and the hub only ever sees versions that passed validation."""
    rng = random.Random(BUDGET.seed)
    repo = PolicyRepo(tmp_path / "repo")
    count = 40
    for i in range(count):
        folder = repo.path / "policies" / f"fuzz-{i:02d}" / "v1.0.0"
        folder.mkdir(parents=True)
        (folder / "metadata.json").write_bytes(
            GOOD_METADATA.replace(b"fuzzed", f"fuzz-{i:02d}".encode())
            if rng.random() < 0.3
            else random_bytes(rng)
        )
        (folder / "policy-definition.yaml").write_bytes(random_bytes(rng))
    repo.commit("random folders")
    with HubProcess(tmp_path / "hub") as hub:
        result = repo.release(
            hub, "-n", "2", "-p", "no:cacheprovider", "--json-report", "--json-report-file=r.json"
        )
    assert "INTERNALERROR" not in result.output and "Traceback" not in result.output
    assert result.returncode in (0, 1), result.output
    tests = json.loads((repo.path / "r.json").read_text())["tests"]
    assert len(tests) == count
    passed = {t["nodeid"].split("::")[1] for t in tests if t["outcome"] == "passed"}
    failed = {t["nodeid"].split("::")[1] for t in tests if t["outcome"] == "failed"}
    assert len(passed | failed) == count
    for test in tests:
        if test["outcome"] == "failed":
            assert "policies/fuzz-" in test["call"]["longrepr"], test
    created = {f"{name}@{version}" for name, version in creations(hub.db_path)}
    assert created == passed
    for method, path, _ in access_log(tmp_path / "hub"):
        assert method == "POST" or path.split("/")[2] + "@" + path.split("/")[3] in passed | failed
    record(figures_file(tmp_path_factory), "fuzz-black-box", inputs_fuzzed=2 * count)
