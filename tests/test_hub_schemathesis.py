"""Property-based tests generated from the hub's OpenAPI document and sent to a running hub
process, in-process through pytest and from the outside with `st run --checks all`: whatever the
document allows, the hub answers without a 5xx and as documented.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from policy_checks import policy_digest
from policy_checks.digest import DIGEST_RE
from policy_hub.app import create_app
from policy_hub.auth import Tokens
from policy_hub.sqlite_store import SqliteStore
from tests.hubprocess import HubProcess
from tests.test_hub_api import auth


@pytest.fixture(scope="module")
def schema_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    with HubProcess(tmp_path_factory.mktemp("schemathesis")) as process:
        yield process


def served_document() -> dict[str, Any]:
    """The document the hub serves, built in-process so tests can be generated at import."""
    # schemathesis.pytest.from_fixture (the lazy loader that could read the running
    # process's /openapi.json) breaks on pytest 9 (it sets Function._nodeid), so the
    # schema is built here and test_served_document_is_the_tested_one ties the two together.
    return create_app(SqliteStore(Path("unused.sqlite3")), Tokens()).openapi()


# The hub refuses some bodies its schema allows, each with a documented 422: a digest that is
# not the content's and metadata naming another version (rules between fields, which JSON
# Schema cannot state), and an Idempotency-Key reused with another body. Schemathesis's
# "schema-valid request rejected" check (ST202) is told so, as `st explain ST202` advises; the
# same text is the config of an outside `st run` (docs/hub.md).
SCHEMATHESIS_TOML = """\
[[operations]]
include-name = "POST /policies"
checks.positive_data_acceptance.expected-statuses = [
  "2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx",
]
"""

schema = schemathesis.openapi.from_dict(
    served_document(), config=SchemathesisConfig.from_str(SCHEMATHESIS_TOML)
)


def test_served_document_is_the_tested_one(schema_hub: HubProcess) -> None:
    served = requests.get(f"{schema_hub.url}/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == served_document()


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_hub_honours_its_openapi_document(case: Any, schema_hub: HubProcess) -> None:
    body = case.body
    if (
        isinstance(body, dict)
        and isinstance(body.get("metadata"), dict)
        and isinstance(body.get("definition"), dict)
        and DIGEST_RE.fullmatch(str(body.get("digest")))
    ):
        # A random digest is always a 422; the right one takes generated content into the store.
        # A digest the document refuses stays: that case is schemathesis's negative data.
        body["digest"] = policy_digest(body["metadata"], body["definition"])
    # Every check schemathesis has (conformance of status, headers, content type and body;
    # negative data rejected, positive data accepted; auth not ignored; ...).
    case.call_and_validate(base_url=schema_hub.url, headers=auth(schema_hub.token), timeout=10)


def test_st_run_with_all_checks_passes(schema_hub: HubProcess, tmp_path: Path) -> None:
    # The outside view: schemathesis's own command line, every phase (examples, coverage,
    # fuzzing, stateful), every check, against the document the process serves.
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st is not None, "schemathesis's `st` is installed with the dev extra"
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_TOML)
    command = [st, "--config-file", str(config), "run", f"{schema_hub.url}/openapi.json"]
    command += ["--checks", "all", "--header", f"Authorization: Bearer {schema_hub.token}"]
    command += ["--max-examples", "30", "--seed", "1", "--no-color"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
