"""What every browser test shares: Debian's chromium (one for the session) and live servers
(tests/live.py).

Never Playwright's own browser download: the system's Chromium (tools/prerequisites.py finds
it), launched quiet and offline.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

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
__all__ = ["CHROME", "CHROMIUM_ARGS", "LiveServer", "axe_violations"]

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "assets" / "node_modules" / "axe-core" / "axe.min.js"
# axe-core's WCAG 2.0/2.1 A and AA rules; a violation of impact serious or critical fails.
AXE_RUN = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
  });
  return result.violations
    .filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " :: " + n.failureSummary),
    }));
}"""


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Run axe-core (from the pinned npm package, which `make assets` installs) on the page."""
    assert AXE.is_file(), f"{AXE} is missing: run `make assets` (it installs axe-core from npm)"
    page.evaluate(AXE.read_text(encoding="utf-8"))
    return page.evaluate(AXE_RUN)  # type: ignore[no-any-return]


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
