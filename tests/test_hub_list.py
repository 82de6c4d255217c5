"""`GET /policies` (docs/contract.md section 6, "Browsing it") against a real hub process on both
engines: names in byte order, paging by `after` and `limit`, `latest` in SemVer order, the read
scope, and the 422 that names a parameter out of range.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from policy_hub.sqlite_store import SqliteStore
from policy_hub.store import like_pattern, summaries
from tests.hubprocess import HubProcess, on_both_engines
from tests.test_hub_api import assert_json_error, auth, policy_body, post


def listing(hub: HubProcess, token: str | None = None, **params: Any) -> requests.Response:
    return requests.get(
        f"{hub.url}/policies", params=params, headers=auth(token or hub.read_token), timeout=10
    )


@on_both_engines
def test_policies_are_listed_in_name_order_a_page_at_a_time(hub: HubProcess) -> None:
    # "a-b" before "a0" before "ab" in byte order; a locale's collation would say otherwise.
    names = ["ab", "a0", "a-b", "zeta", "m-1", "m"]
    for name in names:
        assert post(hub, policy_body(name, "1.0.0"), key=f"k-{name}").status_code == 201
    first = listing(hub, limit=4)
    assert first.status_code == 200, first.text
    body = first.json()
    assert [p["name"] for p in body["policies"]] == ["a-b", "a0", "ab", "m"]
    assert body["next"] == "m"
    second = listing(hub, limit=4, after=body["next"]).json()
    assert [p["name"] for p in second["policies"]] == ["m-1", "zeta"]
    assert second["next"] is None
    everything = listing(hub).json()
    assert [p["name"] for p in everything["policies"]] == sorted(names)
    assert everything["next"] is None
    assert listing(hub, after="zeta").json() == {"policies": [], "next": None}


@on_both_engines
def test_latest_is_the_highest_semver_and_versions_lists_them_in_order(hub: HubProcess) -> None:
    for version in ("1.2.0", "1.10.0", "2.0.0-rc.1", "1.9.9"):
        assert post(hub, policy_body("require-tags", version), key=version).status_code == 201
    [entry] = listing(hub).json()["policies"]
    assert entry["name"] == "require-tags"
    assert entry["latest"] == "2.0.0-rc.1"
    assert entry["versions"] == ["1.2.0", "1.9.9", "1.10.0", "2.0.0-rc.1"]
    stored = hub.query("SELECT MAX(published_at) FROM policies")[0][0]
    assert entry["published_at"] == stored
    assert set(entry) == {"name", "latest", "versions", "published_at"}


def test_latest_skips_yanked_versions() -> None:
    """`latest` from the rows the engines read (name, version, published_at, yanked)."""
    rows = [
        ("a", "1.0.0", "2026-01-01T00:00:00Z", None),
        ("a", "1.1.0", "2026-01-03T00:00:00Z", '{"at": "x", "reason": "broken"}'),
        ("a", "1.0.1", "2026-01-02T00:00:00Z", None),
        ("b", "1.0.0", "2026-01-01T00:00:00Z", "yanked"),
        ("c", "1.0.0-rc.1", "2026-01-05T00:00:00Z", None),
        ("c", "1.0.0", "2026-01-04T00:00:00Z", None),
    ]
    assert summaries(rows) == {
        # latest, versions, last published, the version whose title and owner are shown
        "a": ("1.0.1", ("1.0.0", "1.0.1", "1.1.0"), "2026-01-03T00:00:00Z", "1.0.1"),
        "b": (None, ("1.0.0",), "2026-01-01T00:00:00Z", "1.0.0"),
        "c": ("1.0.0", ("1.0.0-rc.1", "1.0.0"), "2026-01-05T00:00:00Z", "1.0.0"),
    }


def test_a_search_matches_literally() -> None:
    assert like_pattern("a_b%") == "%a\\_b\\%%"


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after": "Not A Name"}, "after"),
        ({"after": "a" * 65}, "after"),
    ],
)
def test_after_or_limit_out_of_range_is_422_naming_it(
    hub: HubProcess, params: dict[str, Any], named: str
) -> None:
    body = assert_json_error(listing(hub, **params), 422, "invalid")
    assert f"query.{named}" in body["detail"]


def test_a_limit_of_500_is_accepted(hub: HubProcess) -> None:
    assert listing(hub, limit=500).status_code == 200


def test_listing_needs_a_read_token(hub: HubProcess) -> None:
    missing = requests.get(f"{hub.url}/policies", timeout=10)
    assert_json_error(missing, 401, "unauthorized")
    wrong = requests.get(f"{hub.url}/policies", headers=auth("nope"), timeout=10)
    assert_json_error(wrong, 401, "unauthorized")
    assert listing(hub, token=hub.token).status_code == 200  # write implies read


class CountingStore(SqliteStore):
    """A real SQLite store that counts the statements each connection runs."""

    statements: list[str] = []  # noqa: RUF012 - replaced before each measured call

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        with super().connect() as conn:
            conn.set_trace_callback(self.statements.append)
            yield conn


def test_a_page_is_three_queries_whatever_its_size(hub: HubProcess) -> None:
    for n in range(120):
        for version in ("1.0.0", "1.1.0"):
            body = policy_body(f"p{n:03d}", version)
            assert post(hub, body, key=f"k{n}-{version}").status_code == 201
    # The hub's own file, read by the store's code beside the running hub (WAL).
    store = CountingStore(hub.db_path)
    sizes = {}
    for limit in (3, 100):
        store.statements = []
        found, following = store.policy_page(None, limit)
        assert len(found) == limit and following == f"p{limit - 1:03d}"
        assert {s.latest for s in found} == {"1.1.0"} and {s.versions for s in found} == {
            ("1.0.0", "1.1.0")
        }
        assert found[0].owner == "o" and found[0].title is None
        sizes[limit] = [s for s in store.statements if s.lstrip().upper().startswith("SELECT")]
    assert len(sizes[3]) == len(sizes[100]) == 3
    searched, _ = store.policy_page(None, 500, contains="p11")
    assert [s.name for s in searched] == [f"p{n}" for n in range(110, 120)]


@on_both_engines
def test_a_list_shows_title_and_owner_only_when_text_and_cut(hub: HubProcess) -> None:
    long_title = "T" * 2000
    bodies = [
        policy_body("a", "1.0.0", metadata={"title": long_title, "description": "d" * 2**20}),
        policy_body("b", "1.0.0", metadata={"title": {"not": "text"}, "owner": 7}),
        policy_body("c", "1.0.0", metadata={"title": "old"}),
        policy_body("c", "2.0.0", metadata={"title": "new <b>"}),
    ]
    for n, body in enumerate(bodies):
        assert post(hub, body, key=f"k{n}").status_code == 201
    # The list the pages show, read by the store's code from the hub's own database.
    if isinstance(hub.db, str):
        from policy_hub.postgres_store import PostgresStore

        store: Any = PostgresStore(hub.db)
    else:
        store = SqliteStore(hub.db_path)
    store.initialize()
    try:
        found, following = store.policy_page(None, 10)
        assert following is None
        by_name = {s.name: s for s in found}
        assert by_name["a"].title == "T" * 500 and by_name["a"].owner == "o"
        assert by_name["b"].title is None and by_name["b"].owner is None
        assert (by_name["c"].title, by_name["c"].latest, by_name["c"].versions) == (
            "new <b>",
            "2.0.0",
            ("1.0.0", "2.0.0"),
        )
    finally:
        store.close()


@on_both_engines
def test_a_yanked_version_is_never_the_latest(hub: HubProcess) -> None:
    """With the yank of docs/contract.md section 9 (POST .../yank): `latest` skips it, in the
    list and on the pages."""
    for version in ("1.0.0", "1.1.0"):
        assert post(hub, policy_body("require-tags", version), key=version).status_code == 201
    yank = requests.post(
        f"{hub.url}/policies/require-tags/1.1.0/yank",
        json={"reason": "breaks <b>prod</b>"},
        headers=auth(hub.token),
        timeout=10,
    )
    assert yank.status_code == 200, yank.text
    [entry] = listing(hub).json()["policies"]
    assert (entry["latest"], entry["versions"]) == ("1.0.0", ["1.0.0", "1.1.0"])
    session = requests.Session()
    session.post(f"{hub.url}/ui/login", data={"token": hub.read_token}, timeout=10)
    index = session.get(f"{hub.url}/", timeout=10).text
    assert ">1.0.0</a>" in index and ">1.1.0</a>" not in index
    versions = session.get(f"{hub.url}/ui/policies/require-tags", timeout=10).text
    assert "yanked" in versions and "breaks &lt;b&gt;prod&lt;/b&gt;" in versions
    page = session.get(f"{hub.url}/ui/policies/require-tags/1.1.0", timeout=10).text
    assert "Yanked" in page and "Do not use this version." in page
