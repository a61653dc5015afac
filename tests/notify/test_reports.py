"""Scheduled email reports end to end: the writer's job queues what is due (once per period),
the mail goes over SMTP to a real server on loopback (aiosmtpd), and the numbers in it are
the API's for the same period; one-click unsubscribe (RFC 8058) without logging in; outside
addresses confirm first; editors manage the schedule, viewers cannot.

The data set is the API tests' (tests/api/test_stats.py): a UTC site with five visitors on
2026-03-10, two on 2026-03-09, and a few earlier.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from sqlalchemy import func, select

from flask_tracking.extensions import db
from flask_tracking.ingest import drain
from flask_tracking.mail import deliver_due
from flask_tracking.notify import reports
from flask_tracking.notify.models import ReportSchedule, ReportSent
from flask_tracking.reports.goals import make_goal
from flask_tracking.tracking.experiments import Draft, add_experiment, set_status
from flask_tracking.tracking.goals import add_goal
from flask_tracking.tracking.models import Membership, Site
from flask_tracking.users import accounts
from tests.api.conversions.test_experiments import exposure, visitor
from tests.api.helpers import GB, new_site, spool_event, utc
from tests.api.test_stats import EVENTS
from tests.conftest import PASSWORD, geolite2_2018
from tests.mailbox import Inbox, queued

pytestmark = pytest.mark.integration

OWNER = "owner@example.com"


@pytest.fixture
def smtp(unused_port: int) -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=unused_port)
    controller.start()
    try:
        yield inbox, unused_port
    finally:
        controller.stop()


@pytest.fixture
def served(app_factory: Any, smtp: tuple[Inbox, int]) -> tuple[Flask, int, dict[str, str]]:
    """The app (mail to the loopback server) with the data set stored on the owner's site."""
    app = app_factory(
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=smtp[1],
        PUBLIC_URL="https://stats.example.com",
        **geolite2_2018(),
    )
    site_id, key = new_site(app, email=OWNER, name="Shop")
    for who, at, path, extra in EVENTS:
        spool_event(app, site_id, who, at, path, **extra)
    assert drain(app) == len(EVENTS)
    return app, site_id, key


def schedule(app: Flask, site_id: int, email: str, frequency: str, **when: Any) -> int:
    with app.test_request_context():
        site = db.session.get(Site, site_id)
        assert site is not None
        made = reports.add_schedule(
            site, email, frequency, when.get("weekday", 0), when.get("hour", 8)
        )
        made.created_at = made.confirmed_at = datetime(2026, 1, 1, tzinfo=UTC)
        db.session.commit()
        return made.id


def run_job(app: Flask, now: datetime) -> int:
    with app.app_context():
        sent = reports.send_due(now)
        deliver_due()  # the outbox's clock is the real one
        return sent


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def metric(text: str, label: str) -> str:
    found = re.search(rf"^{label}\s+(.+?)  \(", text, re.MULTILINE)
    assert found, f"no {label} in:\n{text}"
    return found.group(1)


def test_a_daily_report_says_what_the_api_says_and_goes_once(
    served: tuple[Flask, int, dict[str, str]], smtp: tuple[Inbox, int]
) -> None:
    app, site_id, key = served
    inbox = smtp[0]
    schedule(app, site_id, OWNER, "daily", hour=8)
    assert run_job(app, utc(2026, 3, 10, 7, 59)) == 1  # due yesterday at 08:00: 03-08's
    assert run_job(app, utc(2026, 3, 10, 8, 0)) == 1  # due now: 03-09's
    del inbox.received[0]
    [(_sender, recipients, message)] = inbox.received
    assert recipients == [OWNER]
    assert message["Subject"] == "Shop: daily report, 2026-03-09"
    text = text_of(message)
    api = app.test_client().get(
        f"/api/v1/sites/{site_id}/stats/aggregate?period=custom&from=2026-03-09&to=2026-03-09",
        headers=key,
    )
    results = api.get_json()["results"]
    assert metric(text, "Visitors") == f"{results['visitors']['value']:,}" == "2"
    assert metric(text, "Visits") == f"{results['visits']['value']:,}"
    assert metric(text, "Pageviews") == f"{results['pageviews']['value']:,}" == "3"
    assert metric(text, "Bounce rate") == f"{results['bounce_rate']['value']:.1f} %" == "50.0 %"
    assert metric(text, "Visit length") == "5 min 00 s"  # 300 s
    assert results["visit_duration"]["value"] == 300
    assert "/blog" in text and "/docs" in text and "United States" in text
    dashboard = f"https://stats.example.com/sites/{site_id}?period=custom"
    assert f"{dashboard}&from=2026-03-09&to=2026-03-09" in text
    html = message.get_body(("html",))
    assert html is not None and 'class="metric-visitors">2<' in html.get_content()
    # The job runs again and again: the period is not sent twice, and the next day's comes.
    assert run_job(app, utc(2026, 3, 10, 8, 30)) == 0
    assert run_job(app, utc(2026, 3, 10, 23, 0)) == 0
    assert len(inbox.received) == 1
    assert run_job(app, utc(2026, 3, 11, 8, 0)) == 1
    assert inbox.received[-1][2]["Subject"] == "Shop: daily report, 2026-03-10"
    assert metric(text_of(inbox.received[-1][2]), "Visitors") == "5"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReportSent)) == 3


def test_a_weekly_report_covers_seven_days_with_the_change(
    served: tuple[Flask, int, dict[str, str]], smtp: tuple[Inbox, int]
) -> None:
    app, site_id, key = served
    schedule(app, site_id, OWNER, "weekly", weekday=1, hour=6)  # Tuesdays
    assert run_job(app, utc(2026, 3, 10, 12)) == 1
    [(_s, _r, message)] = smtp[0].received
    assert message["Subject"] == "Shop: weekly report, 2026-03-03 to 2026-03-09"
    api = app.test_client().get(
        f"/api/v1/sites/{site_id}/stats/aggregate?period=custom&from=2026-03-03&to=2026-03-09",
        headers=key,
    )
    visitors = api.get_json()["results"]["visitors"]
    text = text_of(message)
    assert metric(text, "Visitors") == str(visitors["value"])
    change = visitors["change"]
    assert (
        f"Visitors      {visitors['value']}  (" + ("—" if change is None else f"{change:+.1f} %")
        in text
    )


def test_one_click_unsubscribe_without_logging_in(
    app_factory: Any, served: tuple[Flask, int, dict[str, str]], smtp: tuple[Inbox, int]
) -> None:
    app, site_id, _key = served
    app.config["WTF_CSRF_ENABLED"] = True  # the one-click POST carries no CSRF token
    schedule(app, site_id, OWNER, "daily", hour=8)
    run_job(app, utc(2026, 3, 10, 9))
    message = smtp[0].received[0][2]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = message["List-Unsubscribe"].strip().strip("<>")
    assert url.startswith("https://stats.example.com/reports/unsubscribe/")
    path = url.removeprefix("https://stats.example.com")
    assert "Stop these emails" in app.test_client().get(path).get_data(True)  # GET asks only
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReportSchedule)) == 1
    answer = app.test_client().post(path, data="List-Unsubscribe=One-Click")
    assert answer.status_code == 200
    assert f"{OWNER} no longer gets the report of Shop" in answer.get_data(True)
    again = app.test_client().post(path, data="List-Unsubscribe=One-Click")
    assert again.status_code == 200  # a second click is fine
    assert run_job(app, utc(2026, 3, 11, 9)) == 0
    forged = app.test_client().post(path[:-3] + "abc")
    assert forged.status_code == 200 and "not being sent" in forged.get_data(True)


def test_an_outside_address_confirms_first(
    served: tuple[Flask, int, dict[str, str]], smtp: tuple[Inbox, int]
) -> None:
    app, site_id, _key = served
    with app.test_request_context():
        site = db.session.get(Site, site_id)
        assert site is not None
        made = reports.add_schedule(site, "Boss@Elsewhere.example", "daily", 0, 8)
        assert made.confirmed_at is None and made.email == "boss@elsewhere.example"
    [confirm] = queued(app, kind="report_confirm")
    assert confirm.to == "boss@elsewhere.example"
    assert run_job(app, utc(2026, 3, 10, 9)) == 0  # nothing before the address says yes
    link = confirm.link("stats.example.com")
    client = app.test_client()
    assert "Yes, send it" in client.get(link).get_data(True)  # a GET changes nothing
    assert client.post(link).status_code == 200
    with app.app_context():
        made = db.session.scalar(select(ReportSchedule))
        assert made is not None and made.confirmed_at is not None
        made.confirmed_at = utc(2026, 3, 10, 10)  # as if confirmed then, for the frozen clock
        db.session.commit()
    # From its confirmation on: the next day's report, not one of before.
    assert run_job(app, utc(2026, 3, 10, 11)) == 0
    assert run_job(app, utc(2026, 3, 11, 9)) == 1
    assert client.get("/reports/confirm/not-a-token").status_code == 400


def test_editors_schedule_reports_on_the_page_and_viewers_cannot(
    served: tuple[Flask, int, dict[str, str]],
) -> None:
    app, site_id, _key = served
    with app.app_context():
        viewer = accounts.register("viewer@example.com", PASSWORD, verified=True)
        editor = accounts.register("editor@example.com", PASSWORD, verified=True)
        db.session.add(Membership(site_id=site_id, user_id=viewer.id, role="viewer"))
        db.session.add(Membership(site_id=site_id, user_id=editor.id, role="editor"))
        db.session.commit()
    clients = {}
    for who in ("viewer", "editor"):
        clients[who] = app.test_client()
        clients[who].post("/login/", data={"email": f"{who}@example.com", "password": PASSWORD})
    form = {"email": "viewer@example.com", "frequency": "weekly", "weekday": "4", "hour": "7"}
    assert clients["viewer"].get(f"/sites/{site_id}/reports").status_code == 403
    assert clients["viewer"].post(f"/sites/{site_id}/reports", data=form).status_code == 403
    assert clients["editor"].post(f"/sites/{site_id}/reports", data=form).status_code == 302
    page = clients["editor"].get(f"/sites/{site_id}/reports").get_data(True)
    assert "viewer@example.com" in page and "every Friday at 07:00" in page and "active" in page
    again = clients["editor"].post(f"/sites/{site_id}/reports", data=form)
    assert again.status_code == 400
    assert "already gets the weekly report" in again.get_data(True)
    bad = clients["editor"].post(f"/sites/{site_id}/reports", data={**form, "hour": "24"})
    assert bad.status_code == 400
    hostile = {**form, "email": "x@example.com", "frequency": "daily"}
    assert clients["editor"].post(f"/sites/{site_id}/reports", data=hostile).status_code == 302
    with app.app_context():
        ids = list(db.session.scalars(select(ReportSchedule.id).order_by(ReportSchedule.id)))
    assert clients["editor"].post(f"/sites/{site_id}/reports/{ids[0]}/remove").status_code == 302
    with app.app_context():
        assert list(db.session.scalars(select(ReportSchedule.id))) == ids[1:]


def test_tracked_values_are_escaped_in_the_email(
    served: tuple[Flask, int, dict[str, str]], smtp: tuple[Inbox, int]
) -> None:
    app, site_id, _key = served
    hostile = "/<img src=x onerror=alert(1)>"
    spool_event(app, site_id, GB, utc(2026, 3, 4, 9), hostile, referrer="https://<b>evil</b>/")
    assert drain(app) == 1
    schedule(app, site_id, OWNER, "daily", hour=8)
    assert run_job(app, utc(2026, 3, 5, 8)) == 1
    message = smtp[0].received[0][2]
    html = message.get_body(("html",))
    assert html is not None
    content = html.get_content()
    assert "<img src=x" not in content and "&lt;img src=x onerror=alert(1)&gt;" in content
    assert hostile in text_of(message)  # plain text is text: shown as it is


def test_a_report_draws_the_period_and_states_running_experiments(
    served: tuple[Flask, int, dict[str, str]], smtp: tuple[Inbox, int]
) -> None:
    app, site_id, _key = served
    with app.app_context():
        site = db.session.get(Site, site_id)
        signup = add_goal(site, make_goal("Signup", "event", event="Signup"))
        row = add_experiment(
            site, Draft("copy", "<b>Copy</b> test", [("A", 1), ("B", 1)], [signup.id])
        )
        set_status(row, "running", utc(2026, 3, 1))
    for number, variant in enumerate("AAABB"):
        spool_event(
            app,
            site_id,
            visitor(number),
            utc(2026, 3, 9, 9, number),
            "/",
            **exposure("copy", variant),
        )
    spool_event(app, site_id, visitor(0), utc(2026, 3, 9, 10), "/", name="Signup")
    assert drain(app) == 6
    schedule(app, site_id, OWNER, "weekly", weekday=1, hour=6)
    assert run_job(app, utc(2026, 3, 10, 12)) == 1
    message = smtp[0].received[0][2]
    html = message.get_body(("html",))
    assert html is not None
    content = str(html.get_content())
    chart = re.search(r'<svg class="report-chart".*?</svg>', content, re.DOTALL)
    assert chart is not None
    current = re.findall(r'points="([^"]*)"', chart.group(0))[1]
    assert len(current.split()) == 7  # a point per day of the week
    assert "&lt;b&gt;Copy&lt;/b&gt; test" in content and "<b>Copy" not in content
    text = text_of(message)
    assert "Running experiments:" in text
    assert "    A: 3 visitors, 33.3 %" in text and "    B: 2 visitors, 0.0 %" in text
    assert "    B: " in text.split("Running experiments:")[1]
