"""What every browser test shares: Debian's chromium (one for the session) and live servers.

Never Playwright's own browser download: the system chromium, launched quiet and offline.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

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


class QuietHandler(WSGIRequestHandler):
    """No access log lines in the test output."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class LiveServer:
    """A WSGI app on an ephemeral loopback port, served from a thread."""

    def __init__(self, app: Any) -> None:
        self.server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One chromium for the session. Missing chromium fails: CI installs it, so it must be there."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "Debian's chromium is not installed, and the browser tests need it: "
            "run `apt-get update && apt-get install -y chromium` (.ci/run does this).",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
