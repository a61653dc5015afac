"""Sites: list, add, edit, delete; another user's site is a 404 everywhere."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_tracking.extensions import db
from flask_tracking.ingest import drain
from flask_tracking.tracking.models import Site
from flask_tracking.tracking.sites import InvalidSiteURL, normalise_base_url
from flask_tracking.users.models import User


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("https://Example.COM/", "https://example.com"),
        ("example.com", "https://example.com"),
        ("  http://example.com:8080/blog/  ", "http://example.com:8080/blog"),
        ("HTTPS://bücher.example", "https://xn--bcher-kva.example"),
        ("http://[2001:db8::1]:8000", "http://[2001:db8::1]:8000"),
    ],
)
def test_base_url_is_normalised(raw: str, normalised: str) -> None:
    assert normalise_base_url(raw) == normalised


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "ftp://example.com",
        "javascript:alert(1)",
        "https://",
        "http://user:pw@example.com",
        "http://exa mple.com",
        "http://example.com:99999",
        "\u008f\u00f4G9",  # IDNA refuses these characters in a host
        "https://example.com/\x00",
        "https://exa\ud800mple.com",
        "example.com/" + "a" * 2030,  # 2048 typed, over 2048 once "https://" is added
    ],
)
def test_bad_base_urls_are_refused(raw: str) -> None:
    with pytest.raises(InvalidSiteURL):
        normalise_base_url(raw)


def test_add_a_site(client: FlaskClient, app: Flask, logged_in: User) -> None:
    response = client.post("/sites/", data={"base_url": "Example.com/", "name": "Blog"})
    assert response.status_code == 302
    with app.app_context():
        site = db.session.scalar(select(Site))
        assert site is not None
        assert (site.base_url, site.name, site.owner_id) == (
            "https://example.com",
            "Blog",
            logged_in.id,
        )
    assert response.headers["Location"] == f"/sites/{site.id}/setup"  # onboarding next


def test_the_setup_page_waits_then_sees_the_first_event(
    client: FlaskClient, app: Flask, logged_in: User, make_site: Any, make_user: Any
) -> None:
    site_id = make_site(logged_in)
    page = client.get(f"/sites/{site_id}/setup").get_data(as_text=True)
    assert "Waiting for the first pageview" in page and 'class="setup-status card waiting"' in page
    assert "data-site=&#34;" in page or 'data-site="' in page  # the snippet, as text
    assert "script-src http://localhost; connect-src http://localhost" in page  # the CSP line
    status = f"/sites/{site_id}/setup/status"
    assert client.get(status).json == {"events": 0, "last": None, "dropped": {}}
    # A bot's hit is received but not counted: the page says why; a browser's is stored.
    bot = {"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}
    client.get(f"/sites/{site_id}/visit", query_string={"url": "https://example.com/"}, headers=bot)
    client.get(
        f"/sites/{site_id}/visit", query_string={"url": "https://example.com/"}, headers=FIREFOX
    )
    drain(app)
    found = client.get(status).json
    assert found["events"] == 1 and found["last"] and found["dropped"] == {"bot": 1}
    assert client.get(status).headers["Cache-Control"] == "no-store"
    page = client.get(f"/sites/{site_id}/setup").get_data(as_text=True)
    assert "Receiving events" in page and "1 from bots and crawlers" in page
    client.post("/logout/")
    make_user("someone@example.com")
    client.post(
        "/login/", data={"email": "someone@example.com", "password": "correct horse battery"}
    )
    assert client.get(f"/sites/{site_id}/setup").status_code == 404
    assert client.get(status).status_code == 404


def test_add_a_site_with_a_bad_url_shows_the_error(
    client: FlaskClient, app: Flask, row_count: Any, logged_in: User
) -> None:
    response = client.post("/sites/", data={"base_url": "ftp://example.com"})
    assert response.status_code == 200
    assert b"Only http:// and https:// sites can be tracked." in response.data
    assert row_count(app, Site) == 0


def test_sites_lists_only_my_sites(
    client: FlaskClient, logged_in: User, make_user: Any, make_site: Any
) -> None:
    stranger = make_user(email="stranger@example.com")
    make_site(logged_in, "https://mine.example")
    make_site(stranger, "https://theirs.example")
    page = client.get("/sites/").data
    assert b"https://mine.example" in page
    assert b"theirs.example" not in page


def test_site_page_shows_the_snippet(client: FlaskClient, logged_in: User, make_site: Any) -> None:
    site_id = make_site(logged_in)
    page = client.get(f"/sites/{site_id}").get_data(as_text=True)
    assert f"http://localhost/sites/{site_id}/visit" in page
    assert "&lt;noscript&gt;&lt;img src=&#34;http://localhost/sites/" in page
    assert "event=PageLoad" in page


def test_edit_a_site(client: FlaskClient, app: Flask, logged_in: User, make_site: Any) -> None:
    site_id = make_site(logged_in)
    response = client.post(
        f"/sites/{site_id}/edit", data={"base_url": "https://new.example", "name": "New"}
    )
    assert response.status_code == 302
    with app.app_context():
        site = db.session.get(Site, site_id)
        assert site is not None
        assert (site.base_url, site.name) == ("https://new.example", "New")


def test_delete_asks_first_then_removes_the_site_and_its_visits(
    client: FlaskClient, app: Flask, row_count: Any, logged_in: User, make_site: Any
) -> None:
    site_id = make_site(logged_in)
    client.get(f"/sites/{site_id}/visit", query_string={"url": "https://example.com/"})
    assert row_count(app, "events") == 1
    confirm = client.get(f"/sites/{site_id}/delete")
    assert confirm.status_code == 200
    assert b"all of its visits" in confirm.data
    assert row_count(app, Site) == 1
    response = client.post(f"/sites/{site_id}/delete")
    assert response.status_code == 302
    assert row_count(app, Site) == 0
    assert row_count(app, "events") == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/sites/{id}"),
        ("GET", "/sites/{id}/edit"),
        ("POST", "/sites/{id}/edit"),
        ("GET", "/sites/{id}/delete"),
        ("POST", "/sites/{id}/delete"),
    ],
)
def test_another_users_site_is_a_404_like_a_missing_one(
    client: FlaskClient,
    app: Flask,
    logged_in: User,
    make_user: Any,
    make_site: Any,
    method: str,
    path: str,
) -> None:
    stranger = make_user(email="stranger@example.com")
    theirs = make_site(stranger, "https://theirs.example")
    data = {"base_url": "https://hijacked.example"}
    other = client.open(path.format(id=theirs), method=method, data=data)
    missing = client.open(path.format(id=theirs + 1000), method=method, data=data)
    assert other.status_code == missing.status_code == 404
    assert b"theirs.example" not in other.data
    with app.app_context():
        site = db.session.get(Site, theirs)
        assert site is not None
        assert site.base_url == "https://theirs.example"


def test_visits_report_pages_newest_first(app_factory: Any, site_in: Any) -> None:
    app = app_factory(VISITS_PER_PAGE=2)
    client = app.test_client()
    site_id = site_in(app, email="pager@example.com")
    for n in range(5):
        client.get(f"/sites/{site_id}/visit", query_string={"url": f"https://example.com/p{n}"})
    drain(app)
    client.post("/login/", data={"email": "pager@example.com", "password": "correct horse battery"})
    first = client.get(f"/sites/{site_id}/visits").get_data(as_text=True)
    assert "https://example.com/p4" in first
    assert "https://example.com/p3" in first
    assert "Page 1 of 3 (5 events)" in first
    last = client.get(f"/sites/{site_id}/visits?page=3").get_data(as_text=True)
    assert "Page 3 of 3" in last
    beyond = client.get(f"/sites/{site_id}/visits?page=99").get_data(as_text=True)
    assert "Page 3 of 3" in beyond


def test_raw_events_page_uses_the_dashboards_words(app_factory: Any, site_in: Any) -> None:
    """One visit of six pageviews and a custom event: 1 visit, 6 pageviews, 1 custom event
    (it read "7 visits"), and the event is no hit on its page."""
    from datetime import UTC, datetime, timedelta

    from tests.reports import dataset

    app = app_factory()
    client = app.test_client()
    site_id = site_in(app, email="words@example.com")
    # Yesterday noon (UTC, the site's zone): inside "Last 30 days", and far from a midnight,
    # where a visitor's id changes and one visit would become two.
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    at = datetime(yesterday.year, yesterday.month, yesterday.day, 12, tzinfo=UTC)
    for n, path in enumerate(["/", "/a", "/a", "/b", "/a", "/c"]):
        dataset.spool(app, site_id, dataset.A, at + timedelta(minutes=n), path)
    dataset.spool(app, site_id, dataset.A, at + timedelta(minutes=7), "/a", name="Signup")
    drain(app)
    client.post("/login/", data={"email": "words@example.com", "password": "correct horse battery"})
    page = client.get(f"/sites/{site_id}/visits").get_data(as_text=True)
    counts = dict(re.findall(r'data-count="(\w+)">([\d,]+)<', page))
    assert counts == {"visitors": "1", "visits": "1", "pageviews": "6", "events": "1"}
    for words in ("</strong> visitor ·", "</strong> visit ·", "</strong> pageviews ·"):
        assert words in page
    assert "</strong> custom event</p>" in page
    assert "7 visits" not in page and "(7 events)" in page
    pages = re.search(r'data-panel="Top pages">(.*?)</section>', page, re.S)
    assert pages
    rows = re.findall(
        r'<span class="value">(.*?)</span>\s*<span class="count">(\d+)<', pages.group(1)
    )
    assert rows[0] == ("/a", "3")  # three pageviews; the Signup sent from /a is not a fourth
    assert "custom event <strong>Signup</strong>" in page


FIREFOX = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"}


def test_site_settings_exclude_addresses_and_paths(
    client: FlaskClient, app: Flask, row_count: Any, logged_in: User, make_site: Any
) -> None:
    site_id = make_site(logged_in)
    response = client.post(
        f"/sites/{site_id}/edit",
        data={
            "base_url": "https://example.com",
            "excluded_ips": "203.0.113.0/24\n8.8.4.4",
            "excluded_paths": "/admin/*",
        },
    )
    assert response.status_code == 302
    excluded = client.get(
        f"/sites/{site_id}/visit",
        query_string={"url": "https://example.com/"},
        headers=FIREFOX,
        environ_base={"REMOTE_ADDR": "8.8.4.4"},
    )
    admin = client.get(
        f"/sites/{site_id}/visit",
        query_string={"url": "https://example.com/admin/users"},
        headers=FIREFOX,
    )
    counted = client.get(
        f"/sites/{site_id}/visit", query_string={"url": "https://example.com/"}, headers=FIREFOX
    )
    assert excluded.headers["X-Tracking-Dropped"] == "excluded_ip"
    assert admin.headers["X-Tracking-Dropped"] == "excluded_path"
    assert "X-Tracking-Dropped" not in counted.headers
    assert row_count(app, "events") == 1
    page = client.get(f"/sites/{site_id}/visits").get_data(as_text=True)
    assert "1 from excluded addresses" in page
    assert "1 on excluded paths" in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("excluded_ips", "not-an-ip", "not-an-ip"),
        ("excluded_paths", "admin/*", "/"),
    ],
)
def test_bad_exclusions_are_refused(
    client: FlaskClient,
    app: Flask,
    logged_in: User,
    make_site: Any,
    field: str,
    value: str,
    message: str,
) -> None:
    site_id = make_site(logged_in)
    response = client.post(
        f"/sites/{site_id}/edit", data={"base_url": "https://example.com", field: value}
    )
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    with app.app_context():
        site = db.session.get(Site, site_id)
        assert site is not None
        assert getattr(site, field) == ""


def test_the_snippet_says_why_nothing_counts_on_localhost(
    client: FlaskClient, logged_in: User, make_site: Any
) -> None:
    site_id = make_site(logged_in)
    for path in (f"/sites/{site_id}/visits", f"/sites/{site_id}"):
        page = client.get(path).get_data(as_text=True)
        note = re.search(r'data-note="localhost">(.*?)</p>', page, re.S)
        assert note, path
        assert "data-allow-localhost=&#34;true&#34;" in note.group(1) or (
            'data-allow-localhost="true"' in note.group(1)
        )
        assert "Flask-Tracking: page ignored" in note.group(1)  # what the console says
