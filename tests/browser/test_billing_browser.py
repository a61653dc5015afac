"""Billing's whole life cycle in real Chromium with the local provider: register, add a site,
start a trial, upgrade through checkout, see the plan change, send events past the quota, see
the warning and then the over-quota behaviour (events dropped), upgrade again, and see
collection resume."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import APIRequestContext, Browser, Page, expect

from flask_tracking import ingest
from flask_tracking.ops.jobs import run_billing
from tests.billing.conftest import PLANS
from tests.browser.conftest import CHROME, LiveServer, axe_violations
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def served(app_factory: Any, tmp_path: Path) -> Iterator[tuple[Any, str]]:
    plans = tmp_path / "plans.toml"
    plans.write_text(PLANS)
    app = app_factory(
        WTF_CSRF_ENABLED=True,
        BILLING_PROVIDER="local",
        BILLING_PLANS_FILE=str(plans),
        INGEST_SITE_CACHE_SECONDS=0,
    )
    server = LiveServer(app)
    try:
        yield app, server.url
    finally:
        server.close()


def _events(request: APIRequestContext, url: str, site_id: int, count: int) -> list[str]:
    """Send pageviews as the tracker does; return each answer's drop reason ("" if kept)."""
    reasons = []
    for n in range(count):
        answer = request.post(
            f"{url}/api/event",
            data=json.dumps({"site": site_id, "url": f"https://shop.example/p{n}"}),
            headers={"Content-Type": "text/plain", "User-Agent": CHROME},
        )
        assert answer.status == 202
        reasons.append(answer.headers.get("x-tracking-dropped", ""))
    return reasons


def _job(app: Any) -> None:
    """What the server's writer does every few seconds: store, then update the standing."""
    ingest.drain(app)
    with app.app_context():
        run_billing(app.extensions["ingest"].writer, True)


def _pay(page: Page, button: str) -> None:
    page.goto(page.url.split("/billing")[0] + "/billing")
    page.get_by_role("button", name=button).click()
    expect(page.get_by_role("heading", name="Checkout")).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_role("button", name="(test payment)").click()


def test_register_trial_checkout_quota_and_upgrade(
    browser: Browser, served: tuple[Any, str]
) -> None:
    app, url = served
    errors: list[str] = []
    context = browser.new_context(user_agent=CHROME, viewport={"width": 1100, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{url}/register/")
    page.fill("input[name=name]", "Shop owner")
    page.fill("input[name=email]", "shop@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")
    page.goto(f"{url}/sites/")
    page.fill("input[name=base_url]", "https://shop.example")
    page.click("main form button[type=submit]")
    site_id = int(page.url.split("/sites/")[1].split("/")[0])

    page.get_by_role("link", name="Billing").click()
    expect(page.get_by_role("heading", name="Your plan: Free")).to_be_visible()
    page.get_by_role("button", name="Start a 14-day trial").click()
    expect(page.get_by_text("Your trial has started.")).to_be_visible()
    expect(page.get_by_role("heading", name="Your plan: Growth")).to_be_visible()
    expect(page.get_by_text("Trial, until")).to_be_visible()

    _pay(page, "Subscribe: €9.00 a month")
    expect(page.get_by_text("Paid (test payment): you are on Growth.")).to_be_visible()
    expect(page.get_by_text("Renews")).to_be_visible()
    expect(page.locator("table").last).to_contain_text("€9.00")
    assert axe_violations(page) == []

    # Growth allows 20 events a month (no grace): 17 of them warns at 80 %.
    assert _events(context.request, url, site_id, 17) == [""] * 17
    _job(app)
    page.reload()
    expect(page.get_by_text("You have used 85 % of this month's events.")).to_be_visible()
    # Past 20: over; what comes next is dropped, answered 202 with the reason.
    assert _events(context.request, url, site_id, 4) == [""] * 4
    _job(app)
    page.reload()
    expect(page.get_by_role("alert").filter(has_text="new events are not recorded")).to_be_visible()
    assert _events(context.request, url, site_id, 2) == ["over_quota"] * 2

    # Upgrade to Business (30 events): collection resumes.
    _pay(page, "Subscribe: €49.00 a month")
    expect(page.get_by_role("heading", name="Your plan: Business")).to_be_visible()
    _job(app)
    assert _events(context.request, url, site_id, 3) == [""] * 3
    _job(app)
    page.reload()
    expect(page.locator("#usage")).to_contain_text("24 of 30 events")

    # Business hides reports past its 33 (30 and 10 %): still collected, the dashboard asks
    # to upgrade.
    assert _events(context.request, url, site_id, 10) == [""] * 10
    _job(app)
    page.goto(f"{url}/sites/{site_id}")
    expect(page.get_by_role("heading", name="Reports paused")).to_be_visible()
    assert axe_violations(page) == []

    # The operator's view of it.
    granted = app.test_cli_runner().invoke(args=["admin", "grant", "shop@example.com"])
    assert granted.exit_code == 0
    page.goto(f"{url}/billing")
    page.get_by_role("link", name="Accounts").click()
    row = page.get_by_role("row").filter(has_text="shop@example.com")
    expect(row).to_contain_text("Business")
    expect(row).to_contain_text("34 / 30")
    assert axe_violations(page) == []
    assert errors == []
    context.close()
