"""`policyhub-eval` on Kubernetes-style manifests (docs/contract.md section 8, "Evaluating by
hand"): several YAML documents a file, the items of a `kind: List`, each a resource named by file,
position and kind/name, and `--output json` (JSON Lines). Run in-process through `main()`, against a
version folder written to a temporary directory; the README's example against the project's own
`policies/require-tags/v1.0.0`.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from policy_checks.evalcli import main
from tests.policyrepo import metadata

pytestmark = pytest.mark.fast

VERSION = "policies/labels/v1.0.0"
DEFINITION = {
    "apiVersion": "policyhub/v1",
    "kind": "PolicyDefinition",
    "spec": {
        "severity": "medium",
        "targets": [{"kind": "Deployment"}, {"kind": "Service"}],
        "parameters": {"label": {"type": "string", "default": "team"}},
        "rules": [
            {
                "id": "has-label",
                "description": "Every workload carries the label",
                "condition": "params.label in resource.metadata.labels",
            },
            {
                "id": "named",
                "description": "Every workload has a name",
                "condition": "has(resource.metadata.name)",
            },
        ],
    },
}
THREE_DOCUMENTS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {team: shop}}
---
apiVersion: v1
kind: Service
metadata: {name: web, labels: {app: web}}
---
kind: Deployment
metadata: {labels: {team: shop}}
---
"""


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


Eval = Callable[..., Outcome]


def invoke(
    argv: list[str],
    stdin: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Outcome:
    """`policyhub-eval ARGV...` as its console script runs it, with `stdin` as standard input."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    code = main(argv)
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


@pytest.fixture
def policyhub_eval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Eval:
    """Runs `policyhub-eval VERSION ARGS...` in `tmp_path`, which holds the version folder."""
    folder = tmp_path / VERSION
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(json.dumps(metadata("labels", "1.0.0")))
    (folder / "policy-definition.yaml").write_text(yaml.safe_dump(DEFINITION, sort_keys=False))
    monkeypatch.chdir(tmp_path)

    def run(*args: str, stdin: str = "") -> Outcome:
        return invoke([VERSION, *args], stdin, monkeypatch, capsys)

    return run


def test_each_document_is_a_resource_and_a_trailing_separator_is_none(
    policyhub_eval: Eval, tmp_path: Path
) -> None:
    (tmp_path / "app.yaml").write_text(THREE_DOCUMENTS)
    result = policyhub_eval("app.yaml")
    assert result.code == 1, result.err
    assert result.err == ""
    assert result.out == (
        "app.yaml[0] Deployment/web\n"
        "  has-label  pass\n"
        "  named      pass\n"
        "app.yaml[1] Service/web\n"
        "  has-label  fail\n"
        "  named      pass\n"
        "app.yaml[2] Deployment\n"
        "  has-label  pass\n"
        "  named      fail\n"
    )


def test_a_file_of_several_documents_is_no_longer_refused(
    policyhub_eval: Eval, tmp_path: Path
) -> None:
    (tmp_path / "app.yaml").write_text(THREE_DOCUMENTS)
    result = policyhub_eval("app.yaml", "--param", "label=app")
    assert "more than one YAML document" not in result.out + result.err
    assert "remove the '---' separator" not in result.out + result.err
    assert result.code == 1  # app.yaml[0] has no label app, app.yaml[2] no name
    assert result.out.splitlines()[4] == "  has-label  pass"  # the Service, with --param


def test_the_items_of_a_list_are_resources_of_their_own(
    policyhub_eval: Eval, tmp_path: Path
) -> None:
    (tmp_path / "list.yaml").write_text(
        "apiVersion: v1\n"
        "kind: List\n"
        "items:\n"
        "  - {kind: Deployment, metadata: {name: a, labels: {team: x}}}\n"
        "  - {kind: Service, metadata: {name: b, labels: {team: x}}}\n"
        "---\n"
        "kind: Service\n"
        "metadata: {name: c, labels: {team: x}}\n"
    )
    result = policyhub_eval("list.yaml")
    assert result.code == 0, result.out + result.err
    assert result.out == (
        "list.yaml[0] Deployment/a\n"
        "  has-label  pass\n"
        "  named      pass\n"
        "list.yaml[1] Service/b\n"
        "  has-label  pass\n"
        "  named      pass\n"
        "list.yaml[2] Service/c\n"
        "  has-label  pass\n"
        "  named      pass\n"
    )


def test_a_json_list_from_kubectl_is_read_the_same_way(
    policyhub_eval: Eval, tmp_path: Path
) -> None:
    items = [{"kind": "Service", "metadata": {"name": "b", "labels": {}}}]
    (tmp_path / "list.json").write_text(json.dumps({"kind": "List", "items": items}))
    result = policyhub_eval("list.json")
    assert result.code == 1
    assert result.out == "list.json[0] Service/b\n  has-label  fail\n  named      pass\n"


def test_a_kind_the_policy_does_not_target_is_skipped(policyhub_eval: Eval, tmp_path: Path) -> None:
    (tmp_path / "mixed.yaml").write_text(
        "kind: ConfigMap\n"
        "metadata: {name: settings}\n"
        "data: {a: b}\n"
        "---\n"
        "kind: Deployment\n"
        "metadata: {name: web, labels: {team: shop}}\n"
    )
    result = policyhub_eval("mixed.yaml")
    assert result.code == 0, result.out + result.err
    assert result.out == (
        "mixed.yaml[0] ConfigMap/settings\n"
        "  has-label  skip\n"
        "  named      skip\n"
        "mixed.yaml[1] Deployment/web\n"
        "  has-label  pass\n"
        "  named      pass\n"
    )


def test_a_document_that_is_not_a_mapping_is_an_error_for_that_resource_only(
    policyhub_eval: Eval, tmp_path: Path
) -> None:
    (tmp_path / "odd.yaml").write_text(
        "kind: Deployment\n"
        "metadata: {name: web, labels: {team: shop}}\n"
        "---\n"
        "- just\n"
        "- a list\n"
        "---\n"
        "kind: List\n"
        "items: [plain text, {kind: Service, metadata: {name: api, labels: {team: x}}}]\n"
    )
    result = policyhub_eval("odd.yaml")
    assert result.code == 1
    assert result.err == ""
    document = "not a resource: the document at line 4 is a list, not a mapping"
    item = "not a resource: the List item at line 8 is a string, not a mapping"
    assert result.out == (
        "odd.yaml[0] Deployment/web\n"
        "  has-label  pass\n"
        "  named      pass\n"
        "odd.yaml[1]\n"
        f"  has-label  error  {document}\n"
        f"  named      error  {document}\n"
        "odd.yaml[2]\n"
        f"  has-label  error  {item}\n"
        f"  named      error  {item}\n"
        "odd.yaml[3] Service/api\n"
        "  has-label  pass\n"
        "  named      pass\n"
    )


def test_output_json_is_one_object_a_resource_a_line(policyhub_eval: Eval, tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(THREE_DOCUMENTS + "[not, a, mapping]\n")
    result = policyhub_eval("app.yaml", "--output", "json")
    assert result.code == 1
    assert result.err == ""
    lines = result.out.splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "file": "app.yaml",
            "index": 0,
            "kind": "Deployment",
            "name": "web",
            "rules": {
                "has-label": {"result": "pass", "error": None},
                "named": {"result": "pass", "error": None},
            },
        },
        {
            "file": "app.yaml",
            "index": 1,
            "kind": "Service",
            "name": "web",
            "rules": {
                "has-label": {"result": "fail", "error": None},
                "named": {"result": "pass", "error": None},
            },
        },
        {
            "file": "app.yaml",
            "index": 2,
            "kind": "Deployment",
            "name": None,
            "rules": {
                "has-label": {"result": "pass", "error": None},
                "named": {"result": "fail", "error": None},
            },
        },
        {
            "file": "app.yaml",
            "index": 3,
            "kind": None,
            "name": None,
            "rules": {
                rule: {
                    "result": "error",
                    "error": "not a resource: the document at line 12 is a list, not a mapping",
                }
                for rule in ("has-label", "named")
            },
        },
    ]


def test_stdin_is_a_manifest_too(policyhub_eval: Eval) -> None:
    text = THREE_DOCUMENTS.replace("app: web", "team: web")
    result = policyhub_eval("-", "--output", "json", stdin=text)
    assert result.code == 1  # the third has no name
    objects = [json.loads(line) for line in result.out.splitlines()]
    assert [(o["file"], o["index"], o["kind"], o["name"]) for o in objects] == [
        ("<stdin>", 0, "Deployment", "web"),
        ("<stdin>", 1, "Service", "web"),
        ("<stdin>", 2, "Deployment", None),
    ]
    assert objects[1]["rules"]["has-label"] == {"result": "pass", "error": None}

    text_result = policyhub_eval("-", stdin="kind: Service\nmetadata: {labels: {}}\n---\n")
    assert text_result.out == "<stdin>[0] Service\n  has-label  fail\n  named      fail\n"


def test_a_missing_key_is_an_error_with_its_message_in_json(
    policyhub_eval: Eval, tmp_path: Path
) -> None:
    (tmp_path / "bare.yaml").write_text("kind: Service\n")
    result = policyhub_eval("bare.yaml", "--output", "json")
    assert result.code == 1
    rules = json.loads(result.out)["rules"]
    assert rules["has-label"] == {"result": "error", "error": 'no such key: "metadata"'}


@pytest.mark.parametrize(
    ("manifest", "args", "message"),
    [
        (  # what the safe loader refuses in any document stays a refusal of the file
            "kind: Service\n---\nkind: Service\nkind: Deployment\n",
            [],
            'bad.yaml:4: $[1].kind: duplicate key "kind" (first at line 3)',
        ),
        ("kind: Service\n---\nb: &x 1\nc: *x\n", [], "bad.yaml:4: $[1].c: YAML aliases"),
        ("---\n# nothing\n---\n", [], "bad.yaml:1: every YAML document of the file is empty"),
        ("kind: Service\n", ["--output", "xml"], "argument --output: invalid choice: 'xml'"),
        ("kind: Service\n", ["--param", "lable=x"], "did you mean label?"),
    ],
)
def test_usage_errors_go_to_stderr_and_exit_4_in_either_output(
    policyhub_eval: Eval, tmp_path: Path, manifest: str, args: list[str], message: str
) -> None:
    (tmp_path / "bad.yaml").write_text(manifest)
    for output in ("text", "json"):
        result = policyhub_eval("bad.yaml", "--output", output, *args)
        assert result.code == 4, result.out + result.err
        assert result.out == ""
        assert message in result.err


def test_a_file_over_the_size_limit_is_refused(policyhub_eval: Eval, tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_text("kind: Service\n---\n" + "# padding\n" * 110_000)
    result = policyhub_eval("big.yaml", "--output", "json")
    assert result.code == 4
    assert result.out == ""
    assert "big.yaml: file is larger than 1 MiB" in result.err


def test_in_json_output_an_invalid_version_is_reported_on_stderr(
    policyhub_eval: Eval, tmp_path: Path
) -> None:
    definition = tmp_path / VERSION / "policy-definition.yaml"
    definition.write_text(definition.read_text().replace("params.label in", "params.lable in"))
    (tmp_path / "app.yaml").write_text(THREE_DOCUMENTS)
    result = policyhub_eval("app.yaml", "--output", "json")
    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith(f"{VERSION} is not a valid policy version:\n")
    assert "params.lable is not a declared parameter" in result.err


ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_example_prints_what_the_readme_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [manifest] = re.findall(r"```yaml\n# resources\.yaml\n(.*?)```", readme, re.S)
    [transcript] = re.findall(r"```console\n(\$ policyhub-eval .*?)```", readme, re.S)
    version = "policies/require-tags/v1.0.0"
    shutil.copytree(ROOT / version, tmp_path / version)
    (tmp_path / "resources.yaml").write_text(manifest)
    monkeypatch.chdir(tmp_path)
    commands = re.split(r"^\$ policyhub-eval (.*)\n", transcript, flags=re.M)[1:]
    assert len(commands) == 4  # two commands, each with its output
    for command, shown in zip(commands[::2], commands[1::2], strict=True):
        result = invoke(command.split(), "", monkeypatch, capsys)
        assert (result.code, result.out, result.err) == (1, shown, "")
