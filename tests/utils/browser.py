"""Headless Chromium for the browser tests (tests/test_browser.py, tests/test_console_browser.py).

Debian's Chromium (``scripts/browser`` installs it) driven by Playwright's sync API, which is
told to use /usr/bin/chromium and downloads nothing. A ``Session`` is one fresh browser profile
and page that records every request (to check none leaves 127.0.0.1) and every console error,
and names its screenshots after the test.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest

from bot.settings import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = PROJECT_ROOT / "var" / "test-artifacts" / "browser"  # git-ignored (/var/)
TIMEOUT_MS = 60_000


@contextlib.contextmanager
def chromium(artifacts: Path = ARTIFACTS) -> Iterator:
    """A launched Chromium; the screenshots of an earlier run in ``artifacts`` are removed."""
    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: run scripts/browser (installs chromium with apt-get)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: scripts/setup installs requirements.lock")
    artifacts.mkdir(parents=True, exist_ok=True)
    for old in artifacts.glob("*.png"):
        old.unlink()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


class Session:
    """One fresh browser profile and page; what it requested; screenshots named per test."""

    def __init__(self, browser, test_name: str, width: int, height: int,
                 artifacts: Path = ARTIFACTS) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height},
                                           locale="en-GB")
        self.context.set_default_timeout(TIMEOUT_MS)
        self.requests: list = []  # Playwright's Request objects
        self.finished: list = []
        self.errors: list[str] = []  # the console's errors and uncaught exceptions
        self.context.on("request", lambda r: self.requests.append(r))
        self.context.on("requestfinished", lambda r: self.finished.append(r))
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.name = re.sub(r"[^A-Za-z0-9_.-]+", "-", test_name).strip("-")
        self.artifacts = artifacts
        self.shots = 0

    def shot(self, step: str) -> Path:
        self.shots += 1
        path = self.artifacts / f"{self.name}-{self.shots:02d}-{step}.png"
        self.page.screenshot(path=str(path))
        return path

    def outside_requests(self) -> list[str]:
        urls = [r.url for r in self.requests]
        return [url for url in urls if urlsplit(url).scheme not in ("data", "about", "blob")
                and urlsplit(url).hostname != "127.0.0.1"]
