"""Other trackers' wire formats through the same pipeline: Plausible's Events API on
/api/event (told apart by its shape, the site found by its domain) and Umami's /api/send (the
site found by the Umami website id its owner set, or its number); each answered as its
original server answers, bad input refused in their shapes with nothing stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_tracking.extensions import db
from flask_tracking.tracking.models import Site
from tests.conftest import PASSWORD, drop_counts, stored_events

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
UMAMI_ID = "4fb7b8d2-3c3f-4bd0-9a44-2f6a4c0e9a11"


@pytest.fixture
def sites(app: Flask, make_user: Any) -> tuple[int, int]:
    owner = make_user("owner@example.com")
    with app.app_context():
        shop = Site(owner_id=owner.id, base_url="https://www.shop.example", umami_id=UMAMI_ID)
        blog = Site(owner_id=owner.id, base_url="https://blog.example/")
        db.session.add_all([shop, blog])
        db.session.commit()
        return shop.id, blog.id


def post(client: FlaskClient, path: str, body: Any, **headers: str) -> Any:
    return client.post(
        path,
        data=body if isinstance(body, str | bytes) else json.dumps(body),
        headers={"User-Agent": FIREFOX, "Content-Type": "text/plain", **headers},
    )


# -- Plausible -------------------------------------------------------------------------------


def test_plausible_script_events_are_stored_for_the_site_of_their_domain(
    app: Flask, client: FlaskClient, sites: tuple[int, int]
) -> None:
    shop, _blog = sites
    pageview = {
        "n": "pageview",
        "v": 36,
        "u": "https://shop.example/pricing?utm_source=newsletter",
        "d": "shop.example",  # the site's address has www.: the same site
        "r": "https://news.example/story",
        "w": 1280,
    }
    answer = post(client, "/api/event", pageview)
    assert answer.status_code == 202 and answer.get_data() == b"ok"
    assert answer.mimetype == "text/plain" and "X-Plausible-Dropped" not in answer.headers
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    signup = {
        "n": "Signup",
        "u": "https://shop.example/join",
        "d": "shop.example",
        "p": {"plan": "pro", "seats": 3, "gone": None},
        "$": {"currency": "eur", "amount": "9.5"},
    }
    assert post(client, "/api/event", signup).status_code == 202
    [first, second] = stored_events(app)
    assert (first.site_id, first.event, first.pathname) == (shop, "pageview", "/pricing")
    assert first.referrer_source == "news.example" and first.utm_source == "newsletter"
    assert first.screen_width == 1280 and first.browser == "Firefox"
    assert (second.event, second.pathname) == ("Signup", "/join")
    assert second.props == {"plan": "pro", "seats": 3, "revenue": 9.5, "currency": "EUR"}


def test_plausible_events_api_long_names_and_several_domains(
    app: Flask, client: FlaskClient, sites: tuple[int, int]
) -> None:
    shop, blog = sites
    body = {
        "name": "Download",
        "url": "https://blog.example/files",
        "domain": "blog.example,www.shop.example,unknown.example",
        "props": json.dumps({"file": "a.pdf"}),  # older scripts send props as JSON text
    }
    assert post(client, "/api/event", body).status_code == 202
    stored = stored_events(app)
    assert sorted(e.site_id for e in stored) == sorted([shop, blog])
    assert {e.event for e in stored} == {"Download"} and stored[0].props == {"file": "a.pdf"}


def test_plausible_drops_are_answered_as_plausible_does(
    app: Flask, client: FlaskClient, sites: tuple[int, int]
) -> None:
    shop, _blog = sites
    unknown = post(
        client, "/api/event", {"n": "pageview", "u": "https://x.example/", "d": "x.example"}
    )
    assert unknown.status_code == 202 and unknown.headers["X-Plausible-Dropped"] == "1"
    engagement = {
        "n": "engagement",
        "u": "https://shop.example/",
        "d": "shop.example",
        "sd": 40,
        "e": 1200,
    }
    answer = post(client, "/api/event", engagement)
    assert answer.status_code == 202 and answer.headers["X-Tracking-Dropped"] == "engagement"
    bot = post(
        client,
        "/api/event",
        {"n": "pageview", "u": "https://shop.example/", "d": "shop.example"},
        **{"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"},
    )
    assert bot.status_code == 202 and bot.headers["X-Plausible-Dropped"] == "1"
    assert bot.headers["X-Tracking-Dropped"] == "bot"
    assert stored_events(app) == []
    assert drop_counts(app) == {(shop, "engagement"): 1, (shop, "bot"): 1}


BASE = {"n": "x", "d": "shop.example", "u": "https://shop.example/"}


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"d": "shop.example", "u": "https://shop.example/"}, {"name": ["can't be blank"]}),
        ({"n": "pageview", "d": "shop.example"}, {"url": ["can't be blank"]}),
        ({**BASE, "u": "ftp://shop.example/"}, "url"),
        ({"n": "x", "domain": "", "u": "https://shop.example/"}, {"domain": ["can't be blank"]}),
        ({**BASE, "p": {"a": {"b": 1}}}, "props"),
        ({**BASE, "p": "{not json"}, {"props": ["is invalid"]}),
        ({**BASE, "$": {"amount": 1}}, "revenue"),
        ({**BASE, "n": 5}, {"name": ["is invalid"]}),
        ({**BASE, "n": "x\u0000"}, "name"),
    ],
)
def test_bad_plausible_bodies_are_400_in_plausibles_shape_and_store_nothing(
    app: Flask, client: FlaskClient, sites: tuple[int, int], body: dict[str, Any], errors: Any
) -> None:
    answer = post(client, "/api/event", body)
    assert answer.status_code == 400
    found = answer.get_json()["errors"]
    if isinstance(errors, dict):
        assert found == errors
    else:
        assert list(found) == [errors] and isinstance(found[errors], list)
    assert stored_events(app) == []


def test_our_own_events_still_answer_as_before(client: FlaskClient, sites: tuple[int, int]) -> None:
    shop, _blog = sites
    ours = post(client, "/api/event", {"site": shop, "url": "https://shop.example/", "domain": "x"})
    assert ours.status_code == 400  # our shape with an unknown field: our error, not Plausible's
    assert ours.get_json()["error"]["details"]["body"] == "Unknown fields: domain."


# -- Umami -----------------------------------------------------------------------------------


def umami(website: str, **payload: Any) -> dict[str, Any]:
    return {"type": "event", "payload": {"website": website, **payload}}


def test_umami_events_go_to_the_site_of_their_website_id(
    app: Flask, client: FlaskClient, sites: tuple[int, int]
) -> None:
    shop, blog = sites
    page = umami(
        UMAMI_ID.upper(),
        hostname="shop.example",
        url="/pricing?utm_medium=email",
        referrer="https://news.example/",
        screen="1920x1080",
        language="en-US",
        title="Pricing",
    )
    answer = post(client, "/api/send", page, **{"Content-Type": "application/json"})
    assert answer.status_code == 200 and answer.get_json() == {"cache": ""}
    event = umami(
        str(blog), name="Signup", data={"plan": "pro", "cart": {"items": 2}, "tags": ["a"]}
    )
    assert post(client, "/api/send", event).status_code == 200
    first, second = stored_events(app)
    assert (first.site_id, first.event, first.pathname, first.hostname) == (
        shop, "pageview", "/pricing", "shop.example"
    )  # fmt: skip
    assert first.referrer_source == "news.example" and first.screen_width == 1920
    assert first.utm_medium == "email"
    assert (second.site_id, second.event, second.url) == (blog, "Signup", "https://blog.example/")
    assert second.props == {"plan": "pro", "cart.items": 2, "tags": '["a"]'}


def test_umami_preflight_identify_and_bad_input(
    app: Flask, client: FlaskClient, sites: tuple[int, int]
) -> None:
    shop, _blog = sites
    preflight = client.options("/api/send")
    assert preflight.status_code == 204
    assert "x-umami-cache" in preflight.headers["Access-Control-Allow-Headers"]
    assert client.get("/api/send").status_code == 405
    identify = post(
        client,
        "/api/send",
        {"type": "identify", "payload": {"website": UMAMI_ID, "data": {"a": 1}}},
    )
    assert identify.status_code == 200 and identify.headers["X-Tracking-Dropped"] == "identify"
    for body, said in (
        ({"type": "event", "payload": {"website": "not-a-uuid"}}, "website: Invalid uuid."),
        (umami("00000000-0000-4000-8000-000000000000"), "website: Website not found."),
        ({"type": "pageview", "payload": {"website": UMAMI_ID}}, "type: Invalid enum value"),
        ({"type": "event"}, "payload: Required."),
        ("{not json", "body: JSON"),
        (umami(UMAMI_ID, url="javascript:alert(1)"), "url: Invalid url."),
        (umami(UMAMI_ID, url="/", hostname="evil.example/<x>?"), "hostname: Invalid hostname."),
        (umami(UMAMI_ID, data={"k" * 100: 1}), "data: "),
    ):
        answer = post(client, "/api/send", body)
        assert answer.status_code == 400, body
        assert answer.get_data(as_text=True).startswith(f"Bad request: {said}"), answer.get_data(
            True
        )
    assert stored_events(app) == []
    assert drop_counts(app) == {(shop, "identify"): 1}


def test_the_umami_id_is_set_on_the_settings_page(
    app: Flask, client: FlaskClient, sites: tuple[int, int]
) -> None:
    shop, blog = sites
    login = {"email": "owner@example.com", "password": PASSWORD}
    assert client.post("/login/", data=login).status_code == 302
    form = {"base_url": "https://blog.example/", "name": "Blog", "timezone": "UTC"}
    page = client.get(f"/sites/{blog}/edit").get_data(as_text=True)
    assert "Umami website id" in page and "/api/send" in page and "blog.example" in page
    taken = client.post(f"/sites/{blog}/edit", data={**form, "umami_id": UMAMI_ID.upper()})
    assert taken.status_code == 400 and "Another site has this Umami website id." in taken.get_data(
        True
    )
    wrong = client.post(f"/sites/{blog}/edit", data={**form, "umami_id": "blog"})
    assert wrong.status_code == 400 and "A website id is a UUID" in wrong.get_data(True)
    other = "B2C1F0E4-0D4E-4B7F-9F59-6C0D6E1A2B3C"
    assert client.post(f"/sites/{blog}/edit", data={**form, "umami_id": other}).status_code == 302
    with app.app_context():
        assert db.session.get(Site, blog).umami_id == other.lower()  # type: ignore[union-attr]
    # The collector knows it at once (this process), and another site's events are not its.
    assert (
        post(client, "/api/send", umami(other, url="/", hostname="blog.example")).status_code == 200
    )
    assert [e.site_id for e in stored_events(app)] == [blog]
    assert shop != blog
