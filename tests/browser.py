"""A real headless Chromium for the page tests, driven by Selenium through the system's
chromedriver: found on PATH (Debian's `chromium` and `chromium-driver`), with a fresh profile.
Outside CI a machine without them skips those tests; with `CI` set, it fails them.

    driver = start_chromium(tmp_path / "profile")   # BrowserUnavailable says why it cannot
    full_page_screenshot(driver, path)
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Flags that work in a container as root: no sandbox, no GPU, nothing fetched in the background.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
# Every wait on the browser is bounded: a page load and a script here; chromedriver's start by
# Selenium itself (70 polls, about 30 s, then WebDriverException: BrowserUnavailable); each
# WebDriver command by Selenium's HTTP client timeout (120 s by default).
PAGE_LOAD_SECONDS = 20
# A full-page screenshot is cut at this height (a page with a 1 MiB description is long).
SCREENSHOT_MAX_HEIGHT = 8000


# The user property that names a test's screenshot folder (printed by tests/conftest.py).
SCREENSHOTS_PROPERTY = "page_screenshots"


class BrowserUnavailable(Exception):
    """Chromium or chromedriver is missing, or the driver did not start."""


def find_chromium() -> tuple[str, str]:
    """(browser, chromedriver) paths, or BrowserUnavailable naming what is missing."""
    browser = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        missing = " and ".join(
            what for what, path in (("chromium", browser), ("chromedriver", driver)) if not path
        )
        raise BrowserUnavailable(
            f"{missing} not found on PATH (Debian: apt-get install chromium chromium-driver)"
        )
    return browser, driver


def start_chromium(profile: Path, width: int = 1280, height: int = 900) -> Any:
    """A started headless Chromium WebDriver with its own profile folder."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:  # pragma: no cover - selenium is in [dev]
        raise BrowserUnavailable(f"selenium is not installed: {exc}") from exc
    browser, driver_path = find_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    try:
        driver = webdriver.Chrome(options=options, service=Service(driver_path))
    except WebDriverException as exc:
        raise BrowserUnavailable(f"chromium did not start: {str(exc).splitlines()[0]}") from exc
    driver.set_page_load_timeout(PAGE_LOAD_SECONDS)
    driver.set_script_timeout(PAGE_LOAD_SECONDS)
    return driver


def full_page_screenshot(driver: Any, path: Path) -> Path:
    """The whole page (up to SCREENSHOT_MAX_HEIGHT pixels) as a PNG at `path`."""
    # The capture lays the page out again without a vertical scrollbar: the window's whole
    # width, not the width the scrollbar left.
    size = driver.execute_script(
        "return [Math.max(document.documentElement.scrollWidth, window.innerWidth),"
        " document.documentElement.scrollHeight]"
    )
    width = int(size[0])
    height = min(int(size[1]), SCREENSHOT_MAX_HEIGHT)
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
