"""A site's time zone: UTC by default, changed in its settings, only ever an IANA zone."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from flask_tracking.extensions import db
from flask_tracking.tracking.models import Site
from flask_tracking.tracking.sites import update_site
from flask_tracking.users.models import User

MESSAGE = "Choose a time zone from the list"


def _zone_of(app: Flask, site_id: int) -> str:
    with app.app_context():
        site = db.session.get(Site, site_id)
        assert site is not None
        return site.timezone


def test_a_new_site_is_in_utc(client: FlaskClient, app: Flask, logged_in: User) -> None:
    assert client.post("/sites/", data={"base_url": "https://example.com"}).status_code == 302
    with app.app_context():
        site = db.session.scalar(select(Site))
        assert site is not None
        assert site.timezone == "UTC"


def test_the_add_form_asks_for_the_zone(client: FlaskClient, app: Flask, logged_in: User) -> None:
    page = client.get("/sites/").get_data(as_text=True)
    assert re.search(r'<input[^>]*list="timezones"[^>]*name="timezone"', page) or re.search(
        r'<input[^>]*name="timezone"[^>]*list="timezones"', page
    )
    assert "forms.js" in page  # which starts it as the browser's zone
    added = client.post("/sites/", data={"base_url": "https://a.example", "timezone": "Asia/Tokyo"})
    assert added.status_code == 302
    refused = client.post("/sites/", data={"base_url": "https://b.example", "timezone": "Mars/X"})
    assert refused.status_code == 200 and MESSAGE in refused.get_data(as_text=True)
    with app.app_context():
        assert list(db.session.scalars(select(Site.timezone))) == ["Asia/Tokyo"]


def test_rows_from_before_the_column_get_utc_from_the_database(app: Flask, logged_in: User) -> None:
    # An INSERT that does not name the column, as rows written before migration 0003 did.
    with app.app_context():
        db.session.execute(
            text(
                "INSERT INTO sites (owner_id, base_url, name, created_at, excluded_ips,"
                " excluded_paths) VALUES (:owner, 'https://old.example', '', :now, '', '')"
            ),
            {"owner": logged_in.id, "now": "2026-01-01 00:00:00"},
        )
        db.session.commit()
        assert db.session.scalar(select(Site.timezone)) == "UTC"


def test_the_settings_page_offers_zones_with_the_current_one_selected(
    client: FlaskClient, logged_in: User, make_site: Any
) -> None:
    page = client.get(f"/sites/{make_site(logged_in)}/edit").get_data(as_text=True)
    # A text field searching the zones as you type (a datalist), styled as the others.
    field = re.search(r'<input[^>]*name="timezone"[^>]*>', page)
    assert field and 'list="timezones"' in field.group(0) and 'value="UTC"' in field.group(0)
    assert 'type="text"' in field.group(0)  # style.css sizes text inputs like the others
    assert '<datalist id="timezones">' in page and '<option value="Europe/Berlin">' in page
    assert "localtime" not in page  # the server's own zone is no place's zone


def test_a_valid_zone_is_saved(
    client: FlaskClient, app: Flask, logged_in: User, make_site: Any
) -> None:
    site_id = make_site(logged_in)
    response = client.post(
        f"/sites/{site_id}/edit",
        data={"base_url": "https://example.com", "timezone": "Europe/Berlin"},
    )
    assert response.status_code == 302
    assert _zone_of(app, site_id) == "Europe/Berlin"
    page = client.get(f"/sites/{site_id}/edit").get_data(as_text=True)
    assert re.search(r'<input[^>]*name="timezone"[^>]*value="Europe/Berlin"', page)


def test_a_post_without_the_field_keeps_the_zone(
    client: FlaskClient, app: Flask, logged_in: User, make_site: Any
) -> None:
    site_id = make_site(logged_in)
    client.post(
        f"/sites/{site_id}/edit",
        data={"base_url": "https://example.com", "timezone": "Asia/Kolkata"},
    )
    response = client.post(f"/sites/{site_id}/edit", data={"base_url": "https://new.example"})
    assert response.status_code == 302
    assert _zone_of(app, site_id) == "Asia/Kolkata"


@pytest.mark.parametrize(
    "zone",
    ["Mars/Olympus", "", "../etc/passwd", "/etc/localtime", "America", "utc", "localtime"],
)
def test_a_bad_zone_is_refused_and_nothing_is_saved(
    client: FlaskClient, app: Flask, logged_in: User, make_site: Any, zone: str
) -> None:
    site_id = make_site(logged_in, name="Old")
    response = client.post(
        f"/sites/{site_id}/edit",
        data={"base_url": "https://new.example", "name": "New", "timezone": zone},
    )
    assert response.status_code == 400
    assert MESSAGE in response.get_data(as_text=True)
    with app.app_context():
        site = db.session.get(Site, site_id)
        assert site is not None
        assert (site.timezone, site.base_url, site.name) == ("UTC", "https://example.com", "Old")


def test_update_site_takes_the_zone_as_a_keyword(
    app: Flask, logged_in: User, make_site: Any
) -> None:
    site_id = make_site(logged_in)
    with app.app_context():
        site = db.session.get(Site, site_id)
        assert site is not None
        update_site(site, "https://example.com", timezone="America/New_York")
        update_site(site, "https://example.com", "Renamed")  # None leaves the zone alone
    assert _zone_of(app, site_id) == "America/New_York"
