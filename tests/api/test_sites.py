"""Sites through the API: list, create, read, update, delete, with the web form's rules."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from flask_tracking.events import current_store
from flask_tracking.extensions import db
from flask_tracking.ingest import drain
from flask_tracking.tracking.forms import SiteSettingsForm
from flask_tracking.tracking.models import SharedLink, Site
from flask_tracking.users import apikeys
from flask_tracking.users.models import ApiKey
from tests.conftest import count_rows

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


def sites_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Site)) or 0


def test_list_returns_the_users_sites_oldest_first(
    client: FlaskClient, owner: Any, make_site: Any, reader: dict[str, str]
) -> None:
    first = make_site(owner, "https://one.example", "One")
    second = make_site(owner, "https://two.example")
    body = client.get("/api/v1/sites", headers=reader).json
    assert [(s["id"], s["display_name"]) for s in body["data"]] == [
        (first, "One"),
        (second, "https://two.example"),
    ]
    assert body["data"][0]["created_at"].endswith("Z")


def test_create_normalises_like_the_form_and_collects_at_once(
    app: Flask, client: FlaskClient, writer: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/sites",
        headers=writer,
        json={
            "base_url": "  Shop.Example/ ",
            "name": " Shop ",
            "timezone": "Europe/Paris",
            "excluded_ips": ["10.0.0.0/8", "2001:db8::/32"],
            "excluded_paths": ["/admin/*"],
        },
    )
    assert response.status_code == 201
    created = response.json
    assert created["base_url"] == "https://shop.example"
    assert created["name"] == "Shop"
    assert created["timezone"] == "Europe/Paris"
    assert created["excluded_ips"] == ["10.0.0.0/8", "2001:db8::/32"]
    assert created["excluded_paths"] == ["/admin/*"]
    assert client.get(f"/api/v1/sites/{created['id']}", headers=writer).json == created
    # The collector knows the new site immediately (its site cache was invalidated).
    hit = client.post(
        "/api/event",
        json={"site": created["id"], "url": "https://shop.example/"},
        headers={"User-Agent": UA},
    )
    assert hit.status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"base_url": "ftp://files.example"}, "base_url"),
        ({"base_url": "https://"}, "base_url"),
        ({"base_url": "https://ok.example", "excluded_ips": ["not-an-ip"]}, "excluded_ips"),
        ({"base_url": "https://ok.example", "excluded_paths": ["no-slash"]}, "excluded_paths"),
        ({"base_url": "https://ok.example", "timezone": "Mars/Olympus_Mons"}, "timezone"),
    ],
)
def test_create_refuses_what_the_web_form_refuses_with_its_message(
    app: Flask, client: FlaskClient, writer: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/sites", headers=writer, json=body)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_request"
    with app.test_request_context():
        values = {
            "base_url": body["base_url"],
            "name": "",
            "timezone": body.get("timezone", "UTC"),
            "excluded_ips": "\n".join(body.get("excluded_ips", [])),
            "excluded_paths": "\n".join(body.get("excluded_paths", [])),
        }
        form = SiteSettingsForm(formdata=MultiDict(values), meta={"csrf": False})
        assert not form.validate()
        expected = form.errors[field][0]
    assert response.json["error"]["details"] == {field: expected}
    assert sites_count(app) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "base_url"),
        ({"base_url": 42}, "base_url"),
        ({"base_url": "https://ok.example", "name": "x" * 121}, "name"),
        ({"base_url": "https://ok.example", "owner_id": 2}, "owner_id"),
        ({"base_url": "https://ok.example", "excluded_ips": "10.0.0.1"}, "excluded_ips"),
    ],
)
def test_create_refuses_malformed_bodies(
    app: Flask, client: FlaskClient, writer: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/sites", headers=writer, json=body)
    assert response.status_code == 400
    assert field in response.json["error"]["details"]
    assert sites_count(app) == 0


def test_create_needs_a_json_body(app: Flask, client: FlaskClient, writer: dict[str, str]) -> None:
    form = client.post("/api/v1/sites", headers=writer, data={"base_url": "https://a.example"})
    assert form.status_code == 415
    assert form.json["error"]["code"] == "unsupported_media_type"
    broken = client.post("/api/v1/sites", headers=writer, data="{", content_type="application/json")
    assert broken.status_code == 400 and broken.json["error"]["code"] == "invalid_json"
    array = client.post("/api/v1/sites", headers=writer, json=[1, 2])
    assert array.status_code == 400
    assert sites_count(app) == 0


def test_body_size_is_limited(app_factory: Any, site_in: Any) -> None:
    app = app_factory(MAX_API_BODY=200)
    client = app.test_client()
    site = site_in(app)
    with app.app_context():
        owner = db.session.get(Site, site).owner  # type: ignore[union-attr]
        _key, secret = apikeys.create_key(owner, "w", apikeys.READ_WRITE)
    response = client.post(
        "/api/v1/sites",
        headers={"Authorization": f"Bearer {secret}"},
        json={"base_url": "https://a.example", "name": "x" * 300},
    )
    assert response.status_code == 413 and response.json["error"]["code"] == "too_large"


def test_update_changes_only_the_fields_sent(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    response = client.patch(
        f"/api/v1/sites/{site}", headers=writer, json={"excluded_paths": ["/admin/*"]}
    )
    assert response.status_code == 200
    assert response.json["excluded_paths"] == ["/admin/*"]
    assert response.json["name"] == "A's site"
    assert response.json["base_url"] == "https://a.example"
    renamed = client.patch(f"/api/v1/sites/{site}", headers=writer, json={"name": "Shop"}).json
    assert renamed["name"] == "Shop" and renamed["excluded_paths"] == ["/admin/*"]
    cleared = client.patch(f"/api/v1/sites/{site}", headers=writer, json={"excluded_paths": []})
    assert cleared.json["excluded_paths"] == []


def test_update_refuses_bad_values_and_changes_nothing(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    response = client.patch(
        f"/api/v1/sites/{site}",
        headers=writer,
        json={"name": "Would be new", "base_url": "javascript:alert(1)"},
    )
    assert response.status_code == 400
    assert set(response.json["error"]["details"]) == {"base_url"}
    with app.app_context():
        stored = db.session.get(Site, site)
        assert stored is not None and stored.name == "A's site"


def test_changing_the_zone_has_the_writer_re_mark_the_sites_events(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    client.post(
        f"/api/v1/sites/{site}/events",
        headers=writer,
        json={"url": "https://a.example/", "ip": "203.0.113.1", "user_agent": UA},
    )
    drain(app)
    with app.app_context():
        assert current_store().zones()[site] == "UTC"
    response = client.patch(
        f"/api/v1/sites/{site}", headers=writer, json={"timezone": "Asia/Tokyo"}
    )
    assert response.json["timezone"] == "Asia/Tokyo"
    drain(app)
    with app.app_context():
        assert current_store().zones()[site] == "Asia/Tokyo"


def test_delete_removes_the_site_and_all_its_data(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    for path in ("/", "/pricing"):
        sent = client.post(
            f"/api/v1/sites/{site}/events",
            headers=writer,
            json={"url": "https://a.example" + path, "ip": "203.0.113.1", "user_agent": UA},
        )
        assert sent.status_code == 202
    drain(app)
    with app.app_context():
        db.session.add(SharedLink(site_id=site, token="t" * 43, name="shared"))
        db.session.commit()
    assert count_rows(app, "events") == 2
    response = client.delete(f"/api/v1/sites/{site}", headers=writer)
    assert response.status_code == 204 and response.data == b""
    for table in ("recent", "events", "sessions", "recent_events", "rollups", "drops"):
        assert count_rows(app, table) == 0, table
    with app.app_context():
        for model in (Site, SharedLink):
            count = db.session.scalar(select(func.count()).select_from(model))
            assert count == 0, model.__name__
        # The key survives (it belongs to the user); only the site is gone.
        assert db.session.scalar(select(func.count()).select_from(ApiKey)) == 1
    assert client.get(f"/api/v1/sites/{site}", headers=writer).status_code == 404
    again = client.delete(f"/api/v1/sites/{site}", headers=writer)
    assert again.status_code == 404
    # The collector stops accepting events for it at once.
    hit = client.post(
        "/api/event", json={"site": site, "url": "https://a.example/"}, headers={"User-Agent": UA}
    )
    assert hit.status_code == 404


def test_markup_in_site_fields_comes_back_as_json_text(
    client: FlaskClient, writer: dict[str, str]
) -> None:
    name = '<script>alert("x")</script>'
    response = client.post(
        "/api/v1/sites", headers=writer, json={"base_url": "https://a.example", "name": name}
    )
    assert response.status_code == 201
    assert response.mimetype == "application/json"
    assert response.json["name"] == name


def test_a_key_limited_to_a_deleted_site_goes_with_it(
    app: Flask, client: FlaskClient, owner: Any, site: int, make_key: Any, writer: dict[str, str]
) -> None:
    """It must never survive as a key for all sites (its limit gone with the site)."""
    limited = make_key(owner, apikeys.READ, site_id=site)
    assert client.delete(f"/api/v1/sites/{site}", headers=writer).status_code == 204
    with app.app_context():
        assert apikeys.find_key(limited) is None
    other = client.post("/api/v1/sites", headers=writer, json={"base_url": "https://b.example"})
    assert other.status_code == 201
    refused = client.get("/api/v1/sites", headers={"Authorization": f"Bearer {limited}"})
    assert refused.status_code == 401


def test_a_sites_umami_website_id_is_set_and_cleared_by_api(
    app: Flask, client: FlaskClient, owner: Any, make_site: Any, writer: dict[str, str]
) -> None:
    first = make_site(owner, "https://one.example")
    second = make_site(owner, "https://two.example")
    website = "7D3A9E0C-51B4-4C1D-8F2E-9B6A5C4D3E2F"
    made = client.patch(f"/api/v1/sites/{first}", json={"umami_id": website}, headers=writer)
    assert made.status_code == 200 and made.get_json()["umami_id"] == website.lower()
    taken = client.patch(f"/api/v1/sites/{second}", json={"umami_id": website}, headers=writer)
    assert taken.status_code == 409 and "Another site" in taken.get_json()["error"]["message"]
    bad = client.patch(f"/api/v1/sites/{second}", json={"umami_id": "nope"}, headers=writer)
    assert bad.status_code == 400
    kept = client.patch(f"/api/v1/sites/{first}", json={"name": "One"}, headers=writer)
    assert kept.get_json()["umami_id"] == website.lower()  # absent: unchanged
    cleared = client.patch(f"/api/v1/sites/{first}", json={"umami_id": None}, headers=writer)
    assert cleared.get_json()["umami_id"] is None
