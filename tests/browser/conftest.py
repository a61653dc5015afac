"""What every browser test shares: Debian's chromium (one for the session) and live servers
(tests/live.py).

Never Playwright's own browser download: the system's Chromium (tools/prerequisites.py finds
it), launched quiet and offline.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.live import LiveServer
from tools import prerequisites

# A desktop Chrome: the default HeadlessChrome user agent is (rightly) dropped as a bot.
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
__all__ = ["CHROME", "CHROMIUM_ARGS", "LiveServer"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One chromium for the session. Missing chromium fails: `make test` installs it (or says
    what to install) before the suite runs, so it must be there."""
    executable = prerequisites.find_chromium()
    if executable is None:
        pytest.fail(
            "No Chromium found, and the browser tests need it: run `make test` (it installs "
            "Debian's chromium as root, or says what to install), or set CHROMIUM to one.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
