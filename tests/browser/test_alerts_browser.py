"""Reports and alerts as a site owner sets them up, in real Chromium against a live server:
a weekly email report scheduled, a Slack channel added (its receiver a real HTTP server on
loopback), a spike alert sending to it, "send test" pressed, and the delivery seen recorded
on the page (and the Block Kit message arrived at the receiver)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select

from flask_tracking.extensions import db
from flask_tracking.notify.models import AlertRule, ReportSchedule
from flask_tracking.tracking.models import Site
from flask_tracking.users import accounts
from tests.browser.conftest import CHROME, LiveServer
from tests.conftest import PASSWORD
from tests.receiver import Receiver

pytestmark = [pytest.mark.browser, pytest.mark.integration]

OWNER = "owner@example.com"


@pytest.fixture
def served(app_factory: Any) -> Iterator[tuple[Any, str, int, Receiver]]:
    app = app_factory(WTF_CSRF_ENABLED=True, ALERTS_ALLOW_PRIVATE_TARGETS=True)
    receiver = Receiver().start()
    with app.app_context():
        owner = accounts.register(OWNER, PASSWORD, "Owner", verified=True)
        site = Site(owner_id=owner.id, base_url="https://shop.example", name="Shop")
        db.session.add(site)
        db.session.commit()
        site_id = site.id
    server = LiveServer(app)
    try:
        yield app, server.url, site_id, receiver
    finally:
        server.close()
        receiver.stop()


def test_a_weekly_report_and_a_spike_alert_to_slack_with_a_test_delivery(
    browser: Browser, served: tuple[Any, str, int, Receiver]
) -> None:
    app, url, site_id, receiver = served
    errors: list[str] = []
    context = browser.new_context(user_agent=CHROME, viewport={"width": 1100, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{url}/login/")
    page.fill("input[name=email]", OWNER)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.goto(f"{url}/sites/{site_id}")
    page.get_by_role("link", name="Email reports").click()
    page.get_by_label("Send to").fill(OWNER)
    page.get_by_label("How often").select_option("weekly")
    page.get_by_label("On (weekly)").select_option(label="Monday")
    page.get_by_label("At (the site's time)").select_option(label="08:00")
    page.get_by_role("button", name="Schedule it").click()
    expect(page.get_by_text(f"{OWNER} gets the report every Monday at 08:00.")).to_be_visible()

    page.get_by_role("link", name="Alerts").click()
    page.get_by_label("Kind").select_option("slack")
    page.get_by_label("Name").fill("#ops")
    page.get_by_label("Address or URL").fill(receiver.url)
    page.get_by_role("button", name="Add the channel").click()
    expect(page.get_by_text("Channel “#ops” added")).to_be_visible()
    page.get_by_label("When").select_option("spike")
    page.get_by_label("Threshold (N visitors").fill("50")
    page.get_by_label("#ops (slack)").check()
    page.get_by_role("button", name="Add the alert").click()
    expect(
        page.get_by_text("Alert added: at least 50 visitors in the last 5 minutes.")
    ).to_be_visible()

    page.get_by_role("button", name="Send a test to #ops").click()
    expect(page.get_by_text("Test sent to “#ops”.")).to_be_visible()
    row = page.locator("table.alert-deliveries tbody tr").first
    expect(row.locator("td").nth(1)).to_have_text("test")
    expect(row.locator("td").nth(2)).to_have_text("#ops")
    expect(row.locator("td.delivery-status")).to_have_text("sent")
    expect(row.locator("td").nth(4)).to_have_text("1")

    [received] = receiver.received
    payload = json.loads(received.body)
    assert payload["text"] == "Shop: a test of the channel “#ops”"
    assert payload["blocks"][0]["type"] == "header"
    with app.app_context():
        [report] = db.session.scalars(select(ReportSchedule)).all()
        assert (report.frequency, report.weekday, report.hour) == ("weekly", 0, 8)
        [alert] = db.session.scalars(select(AlertRule)).all()
        assert (alert.kind, alert.threshold, [c.name for c in alert.channels]) == (
            "spike",
            50,
            ["#ops"],
        )
    assert errors == []
    context.close()
