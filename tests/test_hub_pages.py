"""The hub's web pages (docs/contract.md section 6, "Its web pages") in a real headless Chromium
against a real hub process with published policies: each page's content, hostile policy text shown
literally (no alert, no injected element), the read-token cookie and its flags, the security
headers, a phone's width without horizontal scrolling, and a screenshot of every page (printed
folder; also `test-artifacts/` when POLICYHUB_ARTIFACTS is set). One hub and one browser serve
the whole module; the HTTP-only checks (statuses, headers, HTTPS cookie) need no browser.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme

from policy_checks import policy_digest
from tests.browser import (
    SCREENSHOTS_PROPERTY,
    BrowserUnavailable,
    full_page_screenshot,
    start_chromium,
)
from tests.hubprocess import HubProcess, db_query, on_both_engines
from tests.test_hub_api import RELEASE_SHA, auth
from tests.test_hub_verify import GITHUB_PUBLISHER

ARTIFACTS_ENV = "POLICYHUB_ARTIFACTS"
PHONE = (390, 844)
DESKTOP = (1280, 900)

HOSTILE = (
    '<script>alert("desc")</script> <img src=x onerror=alert(2)> '
    "bell\x07 escape\x1b[31m red \u202eevil"
)
BIG = "long " * (1024 * 1024 // 5)  # a 1 MiB description


def definition(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "severity": "high",
        "targets": [{"kind": "storage.bucket"}],
        "parameters": {"tag": {"type": "string", "default": "cost-center"}},
        "rules": [
            {
                "id": "has-cost-center",
                "description": "Every bucket carries the tag",
                "condition": "params.tag in resource.tags",
            }
        ],
    }
    base.update(spec)
    return {"apiVersion": "policyhub/v1", "kind": "PolicyDefinition", "spec": base}


def publish(hub: HubProcess, name: str, version: str, metadata: dict[str, Any], spec: Any) -> None:
    meta = {"name": name, "version": version, "owner": "platform-security", **metadata}
    meta.setdefault("description", "Resources must carry a cost-center tag.")
    body = {
        "name": name,
        "version": version,
        "metadata": meta,
        "definition": spec,
        "release_sha": RELEASE_SHA,
        "digest": policy_digest(meta, spec),
    }
    answer = requests.post(
        f"{hub.url}/policies", json=body, headers=auth(hub.token, f"{name}@{version}"), timeout=30
    )
    assert answer.status_code == 201, answer.text


def seed(hub: HubProcess) -> None:
    title = {"title": "Require cost-center tags", "tags": ["tagging", "cost"]}
    publish(hub, "require-tags", "1.0.0", title, definition())
    publish(hub, "require-tags", "1.1.0", title, definition(enforcement="deny"))
    second = definition(
        severity="critical",
        enforcement="deny",
        parameters={"tag": {"type": "list(string)", "default": ["cost-center", "team"]}},
        rules=[
            {
                "id": "has-cost-center",
                "description": "Every bucket carries every tag",
                "condition": "params.tag.all(t, t in resource.tags)",
            },
            {"id": "no-public", "description": "Not public", "condition": "!resource.public"},
        ],
    )
    publish(hub, "require-tags", "2.0.0", {**title, "owner": "cloud-team"}, second)
    publish(hub, "deny-public-buckets", "0.1.0", {"title": "No public buckets"}, definition())
    hostile_rule = {
        "id": "hostile",
        "description": HOSTILE,
        "condition": '"</pre><script>alert(3)</script>" == resource.name',
    }
    hostile = definition(
        parameters={"p": {"type": "string", "default": "<img src=x onerror=alert(4)>"}},
        rules=[hostile_rule],
    )
    publish(
        hub,
        "hostile",
        "1.0.0",
        {"title": "<b>bold</b> title", "owner": '"><svg onload=alert(5)>', "description": HOSTILE},
        hostile,
    )
    publish(hub, "hostile", "1.1.0", {"description": BIG}, definition())
    # A repository with its own schema: the hub stores any object as the definition.
    publish(hub, "odd-shape", "1.0.0", {}, {"spec": "not an object", "rules": 3})


@pytest.fixture(scope="module")
def pages_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    with HubProcess(tmp_path_factory.mktemp("pages-hub")) as hub:
        seed(hub)
        yield hub


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The folder of this run's screenshots, printed at the end (tests/conftest.py)."""
    folder = tmp_path_factory.getbasetemp() / "page-screenshots"
    folder.mkdir(exist_ok=True)
    yield folder
    if os.environ.get(ARTIFACTS_ENV):
        target = Path("test-artifacts") / "page-screenshots"
        target.mkdir(parents=True, exist_ok=True)
        for png in folder.glob("*.png"):
            shutil.copy2(png, target / png.name)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    try:
        driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    except BrowserUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is required when CI is set: {exc}", pytrace=False)
        pytest.skip(f"Chromium cannot be started here: {exc}")
    yield driver
    driver.quit()


@pytest.fixture
def shots_of_test(shots: Path, record_property: Any) -> Path:
    """The screenshot folder, named on the test's report: tests/conftest.py prints it at the
    end of the run (also from xdist workers, whose reports carry it to the controller)."""
    print(f"page screenshots: {shots}")
    record_property(SCREENSHOTS_PROPERTY, str(shots))
    return shots


def look(driver: Any, url: str, shots: Path, name: str) -> str:
    """Load `url` at desktop and phone width, save both screenshots, check the phone has no
    horizontal scroll and no script ran (no alert); the desktop body's text."""
    from selenium.common.exceptions import NoAlertPresentException

    texts = []
    for label, (width, height) in (("desktop", DESKTOP), ("phone", PHONE)):
        driver.set_window_size(width, height)
        driver.get(url)
        with pytest.raises(NoAlertPresentException):
            _ = driver.switch_to.alert.text
        full_page_screenshot(driver, shots / f"{name}-{label}.png")
        scroll, viewport = driver.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert scroll <= viewport, f"{name} scrolls sideways at {width} px: {scroll} > {viewport}"
        texts.append(driver.find_element("tag name", "body").text)
    driver.set_window_size(*DESKTOP)
    return str(texts[0])


def signature_state(driver: Any) -> str:
    """The state the version page gives its signature: none, verified or failed."""
    badge = driver.find_element("css selector", "[class*='att-']")
    [state] = [c[4:] for c in badge.get_attribute("class").split() if c.startswith("att-")]
    return str(state)


def sign_in(driver: Any, hub: HubProcess, token: str) -> None:
    driver.get(f"{hub.url}/")
    field = driver.find_element("id", "token")
    field.send_keys(token)
    field.submit()


@pytest.fixture
def reader(browser: Any, pages_hub: HubProcess) -> Any:
    """The module's browser, signed in with the read token (once: its cookie then stays)."""
    browser.get(f"{pages_hub.url}/")
    if not browser.get_cookies():
        sign_in(browser, pages_hub, pages_hub.read_token)
    return browser


def test_a_reader_signs_in_once_and_the_cookie_keeps_the_token(
    browser: Any, pages_hub: HubProcess, shots_of_test: Path
) -> None:
    shots = shots_of_test
    browser.delete_all_cookies()
    text = look(browser, f"{pages_hub.url}/ui/policies/require-tags", shots, "sign-in")
    assert "Read token needed" in text
    assert "require-tags" not in text.replace("/ui/policies/require-tags", "")
    sign_in(browser, pages_hub, "not-a-token")
    assert "That token is not accepted." in browser.find_element("tag name", "body").text
    assert browser.get_cookies() == []
    sign_in(browser, pages_hub, pages_hub.read_token)
    assert browser.find_element("tag name", "h1").text == "Policies"
    [cookie] = browser.get_cookies()
    assert cookie["name"] == "policyhub_read"
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # served over plain http here; see the HTTPS test
    assert cookie["path"] == "/"
    assert "expiry" not in cookie  # a session cookie
    # The token itself never comes back in a page.
    assert pages_hub.read_token not in browser.page_source
    assert browser.execute_script("return document.cookie") == ""  # HttpOnly: not for script


def test_every_page_reads_as_a_person_expects(
    reader: Any, pages_hub: HubProcess, shots_of_test: Path
) -> None:
    browser, shots = reader, shots_of_test
    url = pages_hub.url
    index = look(browser, f"{url}/", shots, "index")
    lines = index.splitlines()
    assert "Require cost-center tags" in index and "cloud-team" in index
    row = next(line for line in lines if line.startswith("require-tags"))
    assert "2.0.0" in row and "3 versions" in row
    names = [a.text for a in browser.find_elements("css selector", "td a.name")]
    assert names == ["deny-public-buckets", "hostile", "odd-shape", "require-tags"]

    versions = look(browser, f"{url}/ui/policies/require-tags", shots, "policy")
    shown = [a.text for a in browser.find_elements("css selector", "td a.version")]
    assert shown == ["2.0.0", "1.1.0", "1.0.0"]
    digest = browser.find_elements("css selector", "code.digest")[0]
    stored = pages_hub.query(
        "SELECT digest FROM policies WHERE name = 'require-tags' AND version = '2.0.0'"
    )[0][0]
    assert digest.get_attribute("title") == stored
    assert digest.text == f"{str(stored)[:19]}…"
    assert "latest" in versions and "changes since 1.1.0" in versions

    page = look(browser, f"{url}/ui/policies/require-tags/2.0.0", shots, "version")
    for expected in (
        "severity: critical",
        "enforcement: deny",
        "storage.bucket",
        "list(string)",
        '["cost-center", "team"]',
        "no-public",
        "params.tag.all(t, t in resource.tags)",
        "Every bucket carries every tag",
        "apiVersion: policyhub/v1",
    ):
        assert expected in page, expected
    # Who published it (a token of the token file, without a label) and its signature.
    assert "a hub token" in page and "signed by this hub, key" in page
    assert signature_state(browser) == "verified"

    diff = look(browser, f"{url}/ui/policies/require-tags/diff/1.0.0...2.0.0", shots, "diff")
    for expected in (
        "rule added no-public",
        "severity changed",
        "enforcement changed",
        "parameter tag type changed",
        "rule has-cost-center condition changed",
        "metadata owner changed",
        "+  severity: critical",
    ):
        assert expected in diff, expected
    itself = look(browser, f"{url}/ui/policies/require-tags/diff/1.0.0...1.0.0", shots, "diff-self")
    assert "compares a version with itself" in itself
    other = look(
        browser,
        f"{url}/ui/policies/require-tags/diff/1.0.0...deny-public-buckets@0.1.0",
        shots,
        "diff-other",
    )
    assert "two different policies" in other

    browser.get(f"{url}/ui/policies/require-tags")
    browser.find_element("css selector", ".compare button").submit()
    assert browser.current_url.endswith("/ui/policies/require-tags/diff/1.1.0...2.0.0")

    missing = look(browser, f"{url}/ui/policies/require-tags/9.9.9", shots, "not-found")
    assert "Not found" in missing and "require-tags@9.9.9 is not in this hub" in missing
    odd = look(browser, f"{url}/ui/policies/odd-shape/1.0.0", shots, "odd-shape")
    assert "lists no rules" in odd and "spec: not an object" in odd


def test_hostile_policy_text_is_shown_literally(
    reader: Any, pages_hub: HubProcess, shots_of_test: Path
) -> None:
    browser, shots = reader, shots_of_test
    for path, name in (
        ("/", "hostile-index"),
        ("/ui/policies/hostile", "hostile-policy"),
        ("/ui/policies/hostile/1.0.0", "hostile-version"),
        ("/ui/policies/hostile/diff/1.0.0...1.1.0", "hostile-diff"),
    ):
        text = look(browser, f"{pages_hub.url}{path}", shots, name)
        # Only the page's own elements: nothing the policy wrote became markup.
        for tag in ("script", "img", "svg", "b", "iframe"):
            assert browser.find_elements("tag name", tag) == [], (path, tag)
        if name == "hostile-version":
            assert '<script>alert("desc")</script> <img src=x onerror=alert(2)>' in text
            assert "bell\\x07 escape\\x1b[31m red \\u202eevil" in text
            assert '"</pre><script>alert(3)</script>" == resource.name' in text
            assert "<img src=x onerror=alert(4)>" in text
            assert '"><svg onload=alert(5)>' in text
            assert "<b>bold</b> title" in text
    big = look(browser, f"{pages_hub.url}/ui/policies/hostile/1.1.0", shots, "long-description")
    assert "more characters not shown" in big
    assert len(browser.page_source) < 300_000  # of a 1 MiB description


def test_a_public_hub_needs_no_token_to_read(
    browser: Any, tmp_path_factory: pytest.TempPathFactory, shots_of_test: Path
) -> None:
    shots = shots_of_test
    with HubProcess(tmp_path_factory.mktemp("public"), extra_args=("--public-read",)) as hub:
        publish(hub, "require-tags", "1.0.0", {"title": "Tags"}, definition())
        browser.delete_all_cookies()
        text = look(browser, f"{hub.url}/", shots, "public-index")
        assert "require-tags" in text and "Sign out" not in text
        api = requests.get(f"{hub.url}/policies", timeout=10)
        assert api.status_code == 200 and api.json()["policies"][0]["name"] == "require-tags"
        assert requests.get(f"{hub.url}/policies/require-tags/1.0.0", timeout=10).ok
        # A wrong token is still refused, and writing still needs one.
        wrong = requests.get(f"{hub.url}/policies", headers=auth("nope"), timeout=10)
        assert wrong.status_code == 401
        assert requests.post(f"{hub.url}/policies", json={}, timeout=10).status_code == 401


# -- over HTTP alone: statuses and headers ------------------------------------------------------


class ReadOnlyHub(HubProcess):
    """`policy-hub serve --public-read` with no token at all, on another hub's database."""

    def command(self) -> list[str]:
        command = super().command()
        at = command.index("--token-file")
        return command[:at] + command[at + 2 :]


def test_public_read_without_tokens_is_a_read_only_hub(tmp_path: Path) -> None:
    """How a person looks at what the embedded hub of a local release holds (README)."""
    with HubProcess(tmp_path / "release") as writer:
        publish(writer, "require-tags", "1.0.0", {"title": "Tags"}, definition())
    db = tmp_path / "release" / "hub.sqlite3"
    with ReadOnlyHub(tmp_path / "browse", db=str(db), extra_args=("--public-read",)) as hub:
        assert "read-only: no token is configured" in hub.stderr()
        page = requests.get(f"{hub.url}/", timeout=10)
        assert page.status_code == 200 and "require-tags" in page.text
        assert requests.get(f"{hub.url}/policies", timeout=10).json()["policies"][0]["latest"] == (
            "1.0.0"
        )
        refused = requests.post(
            f"{hub.url}/policies", json={}, headers=auth(writer.token, "k"), timeout=10
        )
        assert refused.status_code == 401


PAGES = (
    "/",
    "/?q=tags",
    "/ui/policies/require-tags",
    "/ui/policies/require-tags/1.0.0",
    "/ui/policies/require-tags/diff/1.0.0...1.1.0",
)


def session_of(hub: HubProcess) -> requests.Session:
    session = requests.Session()
    answer = session.post(
        f"{hub.url}/ui/login", data={"token": hub.read_token, "next": "/"}, timeout=10
    )
    assert answer.status_code == 200 and answer.url == f"{hub.url}/"
    return session


def test_every_page_sends_the_security_headers(pages_hub: HubProcess) -> None:
    session = session_of(pages_hub)
    for path in (*PAGES, "/ui/policies/nothing", "/ui/nowhere"):
        answer = session.get(f"{pages_hub.url}{path}", timeout=10)
        assert answer.headers["content-type"] == "text/html; charset=utf-8", path
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "style-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp
        # Nothing else is allowed: no script, image, font, frame or connection of any origin.
        directives = {d.split()[0] for d in csp.split(";") if d.strip()}
        assert directives == {
            "default-src",
            "style-src",
            "form-action",
            "frame-ancestors",
            "base-uri",
        }
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["cache-control"] == "no-store"
        assert "<script" not in answer.text and " style=" not in answer.text
    css = requests.get(f"{pages_hub.url}/ui/static/hub.css", timeout=10)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/ui/policies/nothing", 404),
        ("/ui/policies/require-tags/9.9.9", 404),
        ("/ui/policies/require-tags/not-semver", 404),
        ("/ui/policies/NOT_A_NAME", 404),
        ("/ui/policies/require-tags/diff/1.0.0", 404),
        ("/ui/policies/require-tags/diff/1.0.0...9.9.9", 404),
        ("/ui/policies/require-tags/diff/9.9.9...1.0.0", 404),
        ("/ui/policies/require-tags/diff/1.0.0...nothing@1.0.0", 404),
        ("/ui/nowhere", 404),
        ("/?after=NOT%20A%20NAME&q=%00%3Cscript%3E", 200),
        ("/?q=" + "x" * 5000, 200),
    ],
)
def test_a_missing_or_malformed_address_is_an_html_page_never_a_500(
    pages_hub: HubProcess, path: str, status: int
) -> None:
    answer = session_of(pages_hub).get(f"{pages_hub.url}{path}", timeout=10)
    assert answer.status_code == status, answer.text[:500]
    assert answer.headers["content-type"].startswith("text/html")
    assert "<script>" not in answer.text


def test_without_a_token_no_page_shows_any_policy(pages_hub: HubProcess) -> None:
    for path in (*PAGES, "/ui/policies/nothing", "/ui/policies/require-tags/9.9.9"):
        answer = requests.get(f"{pages_hub.url}{path}", timeout=10)
        # The same form whether the policy exists or not: nothing about it leaks.
        assert answer.status_code == 401, path
        assert "Read token needed" in answer.text
        assert "Require cost-center tags" not in answer.text
        assert "platform-security" not in answer.text


def test_a_wrong_token_is_refused_alike_and_never_echoed(pages_hub: HubProcess) -> None:
    answers = []
    for token in ("wrong-token-1", pages_hub.read_token + "x", "", "a b c"):
        answer = requests.post(
            f"{pages_hub.url}/ui/login",
            data={"token": token, "next": "/"},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 401
        assert "set-cookie" not in answer.headers
        assert token not in answer.text or not token
        answers.append(answer.text)
    assert len(set(answers)) == 1  # nothing tells one wrong token from another
    # Write implies read; the cookie of a write token reads, and neither token is ever logged.
    # The page it goes back to is one of this hub's, never another site.
    for target, location in (
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/ui/policies/require-tags?x=1", "/ui/policies/require-tags?x=1"),
    ):
        write = requests.post(
            f"{pages_hub.url}/ui/login",
            data={"token": pages_hub.token, "next": target},
            allow_redirects=False,
            timeout=10,
        )
        assert write.status_code == 303 and write.headers["location"] == location, target
    stderr = pages_hub.stderr()
    assert pages_hub.token not in stderr and pages_hub.read_token not in stderr


def test_the_cookie_is_secure_over_https(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "cert.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    args = ("--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "cert.pem"))
    with HubProcess(tmp_path / "hub", extra_args=args) as hub:
        answer = requests.post(
            f"{hub.url}/ui/login",
            data={"token": hub.read_token},
            allow_redirects=False,
            verify=str(tmp_path / "ca.pem"),
            timeout=10,
        )
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"]
        for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
            assert flag in cookie, cookie


def test_pages_change_nothing(pages_hub: HubProcess) -> None:
    before = pages_hub.records()
    session = session_of(pages_hub)
    for path in PAGES:
        assert session.post(f"{pages_hub.url}{path}", timeout=10).status_code in (404, 405)
    assert pages_hub.records() == before


def test_the_record_in_a_page_is_the_stored_one(pages_hub: HubProcess) -> None:
    record = requests.get(
        f"{pages_hub.url}/policies/require-tags/2.0.0",
        headers=auth(pages_hub.read_token),
        timeout=10,
    ).json()
    page = session_of(pages_hub).get(f"{pages_hub.url}/ui/policies/require-tags/2.0.0", timeout=10)
    assert record["digest"] in page.text
    assert copy.deepcopy(record)["metadata"]["owner"] in page.text


# -- provenance and yank, as records carry them under docs/contract.md section 9 ------------------


# What each version's record carries besides what its publish gave it, hostile text included.
PROVENANCE: dict[str, dict[str, Any]] = {
    "1.0.0": {"publisher": GITHUB_PUBLISHER},
    "1.1.0": {
        "publisher": {"kind": "token", "label": "ci <b>bot</b>"},
        "yanked": ("2026-12-06T11:00:00Z", "broke <script>alert(9)</script>"),
    },
    "1.2.0": {"publisher": {"kind": "github-oidc", "repository": "javascript:alert(1)//x/y"}},
}


@pytest.fixture(scope="module")
def provenance_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `--public-read` hub whose records carry publishers and a yank (contract section 9):
    published through the API, then given PROVENANCE in the database, as a record written by
    another process (or tampered with) would read."""
    folder = tmp_path_factory.mktemp("provenance")
    with HubProcess(folder / "seed") as seeder:
        for version in PROVENANCE:
            publish(seeder, "signed", version, {"description": "d", "owner": "o"}, definition())
    db = folder / "seed" / "hub.sqlite3"
    for version, extra in PROVENANCE.items():
        at, reason = extra.get("yanked", (None, None))
        db_query(
            db,
            "UPDATE policies SET publisher = ?, yanked_at = ?, yank_reason = ?"
            " WHERE name = 'signed' AND version = ?",
            (json.dumps(extra["publisher"]), at, reason, version),
        )
    with ReadOnlyHub(folder / "browse", db=str(db), extra_args=("--public-read",)) as hub:
        yield hub.url


def test_provenance_and_yank_are_shown(
    browser: Any, provenance_hub: str, shots_of_test: Path
) -> None:
    text = look(browser, f"{provenance_hub}/ui/policies/signed/1.0.0", shots_of_test, "provenance")
    for expected in (
        "GitHub Actions (trusted publishing)",
        "acme/security-policies",
        GITHUB_PUBLISHER["sha"][:12],
        GITHUB_PUBLISHER["workflow_ref"],
        GITHUB_PUBLISHER["environment"],
        GITHUB_PUBLISHER["run_id"],
    ):
        assert expected in text, expected
    # The records claim a publisher the hub never signed: the signature does not hold.
    assert signature_state(browser) == "failed"
    assert "the record's publisher, release_sha or published_at is not what was signed" in text
    links = {a.text: a.get_attribute("href") for a in browser.find_elements("css selector", "dd a")}
    assert links["acme/security-policies"] == "https://github.com/acme/security-policies"
    sha, run = GITHUB_PUBLISHER["sha"], GITHUB_PUBLISHER["run_id"]
    assert links[sha[:12]] == f"https://github.com/acme/security-policies/commit/{sha}"
    assert links[run] == f"https://github.com/acme/security-policies/actions/runs/{run}"

    yanked = look(browser, f"{provenance_hub}/ui/policies/signed/1.1.0", shots_of_test, "yanked")
    assert "Yanked on 2026-12-06 11:00 UTC: broke <script>alert(9)</script>" in yanked
    assert "a hub token labelled ci <b>bot</b>" in yanked
    assert browser.find_elements("tag name", "script") == []

    odd = look(
        browser, f"{provenance_hub}/ui/policies/signed/1.2.0", shots_of_test, "odd-publisher"
    )
    assert "javascript:alert(1)//x/y" in odd
    assert not [
        a
        for a in browser.find_elements("tag name", "a")
        if "javascript" in (a.get_attribute("href") or "")
    ]

    look(browser, f"{provenance_hub}/ui/policies/signed", shots_of_test, "versions-yanked")
    rows = {
        row.find_element("css selector", "a.version").text: row.text
        for row in browser.find_elements("css selector", "tbody tr")
    }
    assert "latest" in rows["1.2.0"]
    assert "yanked" in rows["1.1.0"] and "broke <script>alert(9)</script>" in rows["1.1.0"]
    assert "acme/security-policies" in rows["1.0.0"] and "token ci <b>bot</b>" in rows["1.1.0"]


@on_both_engines
def test_the_pages_read_alike_on_both_engines(hub: HubProcess) -> None:
    title = {"title": "Require cost-center tags"}
    publish(hub, "require-tags", "1.0.0", title, definition())
    publish(hub, "require-tags", "1.10.0", title, definition(severity="low"))
    publish(hub, "require-tags", "1.9.0", title, definition())
    session = session_of(hub)
    index = session.get(f"{hub.url}/", timeout=10).text
    assert "Require cost-center tags" in index and ">1.10.0</a>" in index
    versions = session.get(f"{hub.url}/ui/policies/require-tags", timeout=10).text
    assert versions.index(">1.10.0<") < versions.index(">1.9.0<") < versions.index(">1.0.0<")
    page = session.get(f"{hub.url}/ui/policies/require-tags/1.10.0", timeout=10).text
    assert "severity: low" in page
    diff = session.get(f"{hub.url}/ui/policies/require-tags/diff/1.9.0...1.10.0", timeout=10)
    assert diff.status_code == 200 and "severity" in diff.text and "+  severity: low" in diff.text


def test_the_index_pages_and_searches(hub: HubProcess) -> None:
    for n in range(105):
        publish(hub, f"p{n:03d}", "1.0.0", {}, definition())
    session = session_of(hub)
    first = session.get(f"{hub.url}/", timeout=10).text
    assert first.count('class="name"') == 100 and ">p099</a>" in first and "p100" not in first
    assert 'href="/?after=p099">Next page »</a>' in first
    second = session.get(f"{hub.url}/?after=p099", timeout=10).text
    assert second.count('class="name"') == 5 and ">p104</a>" in second
    assert "Next page" not in second and "« First page" in second
    found = session.get(f"{hub.url}/", params={"q": "P10"}, timeout=10).text
    assert [f"p{n}" for n in range(100, 105)] == re.findall(
        r'class="name" href="[^"]+">([^<]+)<', found
    )
    none = session.get(f"{hub.url}/", params={"q": "<zzz>"}, timeout=10).text
    assert "No policy name contains “&lt;zzz&gt;”." in none


def test_a_record_changed_after_signing_does_not_verify(hub: HubProcess) -> None:
    publish(hub, "require-tags", "1.0.0", {}, definition())
    publish(hub, "require-tags", "1.1.0", {}, definition())
    hub.query("UPDATE policies SET release_sha = ? WHERE version = '1.1.0'", ("f" * 40,))
    session = session_of(hub)
    intact = session.get(f"{hub.url}/ui/policies/require-tags/1.0.0", timeout=10).text
    assert 'class="badge att-verified">verified<' in intact
    changed = session.get(f"{hub.url}/ui/policies/require-tags/1.1.0", timeout=10).text
    assert 'class="badge att-failed">does not verify<' in changed
    assert (
        "the record&#39;s publisher, release_sha or published_at is not what was signed" in changed
    )
