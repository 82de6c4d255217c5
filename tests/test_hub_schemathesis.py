"""Property-based tests generated from the hub's OpenAPI document and sent to a running hub
process: whatever the document allows, the hub answers without a 5xx and as documented.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from policy_hub.app import create_app
from policy_hub.auth import Tokens
from policy_hub.models import content_digest
from policy_hub.store import Store
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
    return create_app(Store(Path("unused.sqlite3")), Tokens()).openapi()


schema = schemathesis.openapi.from_dict(served_document())


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
    ):
        # A random digest is always a 422; the right one takes generated content into the store.
        body["digest"] = content_digest(body["metadata"], body["definition"])
    case.call_and_validate(
        base_url=schema_hub.url,
        headers=auth(schema_hub.token),
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
        timeout=10,
    )
