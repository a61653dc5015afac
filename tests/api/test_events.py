"""POST /api/v1/sites/{id}/events: a server sends an event on a visitor's behalf.

What is stored comes from the body (the visitor's address and browser), never from the
request (the sending server's); the collector's drop rules and /api/event's validation apply;
and every refusal leaves the spool and the database as they were.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_tracking.ingest import drain
from flask_tracking.ingest.enrich import truncate_ip
from flask_tracking.reports.export import StoredEvent
from tests.api.helpers import (
    CHROME,
    GOOGLEBOT,
    SAFARI,
    error_of,
    key_for,
    new_site,
    snapshot,
    update_site,
)
from tests.conftest import drop_counts, geolite2_2018, stored_events

# The sending server: its own address (Stockholm) and agent must never be what is stored.
SERVER = {"REMOTE_ADDR": "89.160.20.112"}
SERVER_HEADERS = {"User-Agent": CHROME}
VISITOR_IP = "81.2.69.142"  # Willesden, England
MISSING = object()


@pytest.fixture
def app(app_factory: Any) -> Flask:
    """The app, with the bundled GeoLite2 database for locations."""
    return app_factory(**geolite2_2018())  # type: ignore[no-any-return]


def body_for(**fields: Any) -> dict[str, Any]:
    """A valid minimal body with some fields replaced (or removed, with MISSING)."""
    body: dict[str, Any] = {
        "url": "https://a.example/pricing",
        "ip": VISITOR_IP,
        "user_agent": SAFARI,
    }
    body.update(fields)
    return {key: value for key, value in body.items() if value is not MISSING}


def send(
    client: FlaskClient,
    site_id: int,
    headers: dict[str, str],
    body: Any,
    *,
    content_type: str = "application/json",
    **options: Any,
) -> TestResponse:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(
        f"/api/v1/sites/{site_id}/events",
        data=data,
        content_type=content_type,
        headers={**SERVER_HEADERS, **headers},
        environ_base=SERVER,
        **options,
    )


def stored(app: Flask) -> list[StoredEvent]:
    """Store what was spooled; return the events, oldest first."""
    return stored_events(app)


def accepted(response: TestResponse, status: str = "accepted", reason: str | None = None) -> None:
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": status, "reason": reason}


# -- accepted --------------------------------------------------------------------------------


def test_an_event_is_accepted_then_stored_as_sent(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    response = send(
        client,
        site,
        writer,
        body_for(
            name="Signup",
            url="https://a.example/pricing?utm_source=news&utm_medium=email&token=secret#plans",
            referrer="https://www.google.com/",
            width=390,
            props={"plan": "pro", "seats": 3, "trial": True, "ratio": 0.5},
        ),
    )
    accepted(response)
    [visit] = stored(app)
    assert visit.site_id == site
    assert visit.event == "Signup"
    # Stored as /api/event stores it: private parameters and the fragment dropped.
    assert visit.url == "https://a.example/pricing?utm_source=news&utm_medium=email"
    assert (visit.hostname, visit.pathname) == ("a.example", "/pricing")
    assert (visit.utm_source, visit.utm_medium) == ("news", "email")
    assert (visit.referrer, visit.referrer_source) == ("https://www.google.com/", "Google")
    assert visit.props == {"plan": "pro", "seats": 3, "trial": True, "ratio": 0.5}
    assert visit.screen_width == 390
    # The visitor's place and browser come from the body, not from the sending server
    # (Stockholm, Chrome on Windows).
    assert (visit.country_code, visit.region, visit.city) == ("GB", "England", "Willesden")
    assert (visit.browser, visit.os, visit.device) == ("Mobile Safari", "iOS", "mobile")
    assert visit.visitor_id is not None and visit.session_id is not None
    assert visit.ip_address is None  # STORE_VISITOR_IP is off


def test_name_defaults_to_a_pageview(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    accepted(send(client, site, writer, body_for()))
    [visit] = stored(app)
    assert (visit.event, visit.pathname, visit.referrer, visit.props) == (
        "pageview",
        "/pricing",
        None,
        None,
    )


def test_the_body_decides_who_the_visitor_is(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    for path in ("/", "/pricing"):
        accepted(send(client, site, writer, body_for(url=f"https://a.example{path}")))
    # Same server, another visitor.
    accepted(send(client, site, writer, body_for(ip="24.24.24.24")))
    first, second, third = stored(app)
    assert first.visitor_id == second.visitor_id
    assert first.session_id == second.session_id
    assert third.visitor_id != first.visitor_id
    assert (first.country_code, third.country_code) == ("GB", "US")


def test_the_visitors_address_is_stored_when_the_site_keeps_addresses(
    app_factory: Any,
) -> None:
    app = app_factory(**geolite2_2018(), STORE_VISITOR_IP=True)
    site_id, key = new_site(app)
    client = app.test_client()
    accepted(send(client, site_id, key, body_for()))
    accepted(send(client, site_id, key, body_for(ip="2a02:c7f:1234::1")))
    first, second = stored(app)
    # The body's address (truncated, as for /api/event), never the server's 89.160.20.112.
    assert (first.ip_address, second.ip_address) == ("81.2.69.0", truncate_ip("2a02:c7f:1234::1"))
    assert second.ip_address is not None and second.ip_address.startswith("2a02:c7f:1234")


def test_a_read_key_cannot_send(client: FlaskClient, site: int, reader: dict[str, str]) -> None:
    error = error_of(send(client, site, reader, body_for()), 403)
    assert error["code"] == "insufficient_scope"


# -- dropped ---------------------------------------------------------------------------------


def test_a_bot_visitor_is_dropped_with_the_reason(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    accepted(send(client, site, writer, body_for(user_agent=GOOGLEBOT)), "dropped", "bot")
    assert stored(app) == []
    assert drop_counts(app) == {(site, "bot"): 1}


def test_a_bot_server_sending_for_a_person_is_not_dropped(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    # The sending server's own user agent says nothing about the visitor.
    response = send(client, site, {**writer, "User-Agent": GOOGLEBOT}, body_for())
    accepted(response)
    assert len(stored(app)) == 1


def test_an_excluded_visitor_address_is_dropped(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    update_site(app, site, excluded_ips="81.2.69.0/24")
    accepted(send(client, site, writer, body_for()), "dropped", "excluded_ip")
    # The sending server's address is in no exclusion that matters: only the visitor's.
    update_site(app, site, excluded_ips="81.2.69.0/24\n89.160.20.112")
    accepted(send(client, site, writer, body_for(ip="24.24.24.24")))
    assert [visit.country_code for visit in stored(app)] == ["US"]
    assert drop_counts(app) == {(site, "excluded_ip"): 1}


def test_an_ipv4_mapped_address_is_read_as_the_ipv4_address(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    update_site(app, site, excluded_ips="10.0.0.0/8")
    accepted(send(client, site, writer, body_for(ip="::ffff:10.1.2.3")), "dropped", "excluded_ip")
    accepted(send(client, site, writer, body_for(ip="::ffff:81.2.69.142")))
    [visit] = stored(app)
    assert (visit.country_code, visit.city) == ("GB", "Willesden")


def test_an_excluded_path_is_dropped(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    update_site(app, site, excluded_paths="/admin/*")
    response = send(client, site, writer, body_for(url="https://a.example/admin/users"))
    accepted(response, "dropped", "excluded_path")
    assert stored(app) == []


def test_do_not_track_of_the_server_does_not_apply(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    accepted(send(client, site, {**writer, "DNT": "1"}, body_for()))
    assert len(stored(app)) == 1


# -- refused ---------------------------------------------------------------------------------

INVALID = [
    # Checked as /api/event checks them.
    pytest.param("url", {"url": MISSING}, id="url-missing"),
    pytest.param("url", {"url": ""}, id="url-empty"),
    pytest.param("url", {"url": "ftp://a.example/file"}, id="url-ftp"),
    pytest.param("url", {"url": "javascript:alert(1)"}, id="url-javascript"),
    pytest.param("url", {"url": "/pricing"}, id="url-relative"),
    pytest.param("url", {"url": "https://"}, id="url-no-host"),
    pytest.param("url", {"url": "https://a.example/a\nb"}, id="url-newline"),
    pytest.param("url", {"url": "https://a.example/" + "a" * 2048}, id="url-too-long"),
    pytest.param("url", {"url": 5}, id="url-number"),
    pytest.param("name", {"name": "x" * 121}, id="name-too-long"),
    pytest.param("name", {"name": ""}, id="name-empty"),
    pytest.param("name", {"name": "   "}, id="name-blank"),
    pytest.param("name", {"name": "Sign\nup"}, id="name-newline"),
    pytest.param("name", {"name": None}, id="name-null"),
    pytest.param("name", {"name": 5}, id="name-number"),
    pytest.param("referrer", {"referrer": "https://r.example/\r\nX: y"}, id="referrer-crlf"),
    pytest.param("referrer", {"referrer": "https://r.com/" + "a" * 2048}, id="referrer-long"),
    pytest.param("referrer", {"referrer": 5}, id="referrer-number"),
    pytest.param("width", {"width": -1}, id="width-negative"),
    pytest.param("width", {"width": 100_001}, id="width-huge"),
    pytest.param("width", {"width": 1280.5}, id="width-float"),
    pytest.param("width", {"width": "1280"}, id="width-string"),
    pytest.param("width", {"width": True}, id="width-bool"),
    pytest.param("props", {"props": {f"k{i}": i for i in range(31)}}, id="props-31"),
    pytest.param("props", {"props": {"plan": {"name": "pro"}}}, id="props-nested-object"),
    pytest.param("props", {"props": {"plans": ["pro"]}}, id="props-list-value"),
    pytest.param("props", {"props": {"plan": None}}, id="props-null-value"),
    pytest.param("props", {"props": [["plan", "pro"]]}, id="props-list"),
    pytest.param("props", {"props": "plan=pro"}, id="props-string"),
    pytest.param("props", {"props": {"k" * 65: 1}}, id="props-long-key"),
    pytest.param("props", {"props": {"": 1}}, id="props-empty-key"),
    pytest.param("props", {"props": {"a\nb": 1}}, id="props-key-newline"),
    pytest.param("props", {"props": {"plan": "v" * 513}}, id="props-long-value"),
    pytest.param("props", {"props": {"plan": "a\x00b"}}, id="props-value-nul"),
    pytest.param("props", {"props": {"big": 10**400}}, id="props-int-beyond-float"),
    # What a server must say about the visitor.
    pytest.param("ip", {"ip": MISSING}, id="ip-missing"),
    pytest.param("ip", {"ip": "999.1.1.1"}, id="ip-octet-too-big"),
    pytest.param("ip", {"ip": "localhost"}, id="ip-hostname"),
    pytest.param("ip", {"ip": "81.2.69.142/24"}, id="ip-network"),
    pytest.param("ip", {"ip": ""}, id="ip-empty"),
    pytest.param("ip", {"ip": 1357006222}, id="ip-number"),
    pytest.param("user_agent", {"user_agent": MISSING}, id="user-agent-missing"),
    pytest.param("user_agent", {"user_agent": ""}, id="user-agent-empty"),
    pytest.param("user_agent", {"user_agent": "x" * 1025}, id="user-agent-too-long"),
    pytest.param("user_agent", {"user_agent": None}, id="user-agent-null"),
    # The body.
    pytest.param("extra", {"extra": 1}, id="unknown-field"),
    pytest.param("Name", {"Name": "Signup"}, id="unknown-field-case"),
    pytest.param("site", {"site": 1}, id="site-in-the-body"),
]


def names(details: dict[str, Any], field: str) -> bool:
    """Whether the details name `field` (itself, or a part of it such as props.plan)."""
    return any(key == field or key.startswith(field + ".") for key in details)


@pytest.mark.parametrize(("field", "fields"), INVALID)
def test_an_invalid_field_is_a_400_naming_it_and_nothing_is_spooled(
    app: Flask,
    client: FlaskClient,
    site: int,
    writer: dict[str, str],
    field: str,
    fields: dict[str, Any],
) -> None:
    before = snapshot(app)
    error = error_of(send(client, site, writer, body_for(**fields)), 400)
    assert error["code"] == "invalid_request"
    assert names(error["details"], field), error
    assert snapshot(app) == before  # nothing spooled
    assert stored(app) == []
    assert drop_counts(app) == {}


def test_a_site_in_the_body_cannot_redirect_the_event(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str], owner: Any, make_site: Any
) -> None:
    other = make_site(owner, "https://other.example")
    error = error_of(send(client, site, writer, body_for(site=other)), 400)
    assert list(error["details"]) == ["site"]
    assert stored(app) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "Sign\ud800up"},
        {"url": "https://a.example/\ud800"},
        {"referrer": "https://r.example/\udfff"},
        {"props": {"plan\ud800": 1}},
        {"props": {"plan": "\udc00"}},
    ],
    ids=["name", "url", "referrer", "props-key", "props-value"],
)
def test_a_lone_surrogate_is_refused_and_nothing_is_spooled(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str], fields: dict[str, Any]
) -> None:
    # json.dumps writes "\ud800" as an escape: valid JSON text that no UTF-8 string can hold.
    raw = json.dumps(body_for(**fields))
    assert "\\ud" in raw or "\\udc" in raw
    before = snapshot(app)
    response = send(client, site, writer, raw)
    assert response.status_code == 400
    assert snapshot(app) == before
    assert stored(app) == []


def test_a_lone_surrogate_is_refused_naming_the_field_as_api_event_does(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    # POST /api/event answers {"code": "invalid_event", "details": {"name": "Must be valid
    # Unicode text (no lone surrogates)."}}; the API promises the same validation.
    response = send(client, site, writer, json.dumps(body_for(name="Sign\ud800up")))
    error = error_of(response, 400)
    assert error["code"] == "invalid_request", error
    assert names(error["details"], "name"), error


# Bodies at the edges of what /api/event accepts: the API must accept them all the same.
EDGES = [
    pytest.param({"name": "x" * 120}, id="name-120"),
    pytest.param({"name": "  Signup  "}, id="name-padded"),
    pytest.param({"name": "注册"}, id="name-unicode"),
    pytest.param({"url": "https://a.example/" + "a" * 2030}, id="url-2048"),
    pytest.param({"url": "https://a.example/café"}, id="url-unicode"),
    pytest.param({"url": "HTTPS://A.EXAMPLE/Pricing"}, id="url-upper-case-scheme"),
    pytest.param({"url": "  https://a.example/pricing"}, id="url-leading-space"),
    pytest.param({"referrer": ""}, id="referrer-empty"),
    pytest.param({"referrer": None}, id="referrer-null"),
    pytest.param({"width": 0}, id="width-0"),
    pytest.param({"width": None}, id="width-null"),
    pytest.param({"props": {f"k{i}": i for i in range(30)}}, id="props-30"),
    pytest.param({"props": {"k" * 64: "v" * 512}}, id="props-longest"),
    pytest.param({"props": {}}, id="props-empty"),
    pytest.param({"props": None}, id="props-null"),
    pytest.param({"props": {"x": 1e308, "y": 2**63, "z": -0.0, "t": False}}, id="props-numbers"),
]


@pytest.mark.parametrize("fields", EDGES)
def test_what_api_event_accepts_the_api_accepts(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str], fields: dict[str, Any]
) -> None:
    browser = client.post(
        "/api/event",
        json={"site": site, **body_for(ip=MISSING, user_agent=MISSING), **fields},
        headers={"User-Agent": SAFARI},
        environ_base={"REMOTE_ADDR": VISITOR_IP},
    )
    assert browser.status_code == 202, browser.get_data(as_text=True)
    accepted(send(client, site, writer, body_for(**fields)))
    from_browser, from_server = stored(app)
    for column in ("event", "url", "pathname", "referrer", "screen_width", "props"):
        assert getattr(from_server, column) == getattr(from_browser, column), column


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"{'url': 'https://a.example/'}",
        b'{"url": "https://a.example/",}',
        b"\xff\xfe\x00",
        b"nul",
        b"[" * 4000 + b"]" * 4000,
    ],
    ids=["empty", "truncated", "single-quotes", "trailing-comma", "not-utf8", "bare", "deep"],
)
def test_a_body_that_is_not_json_is_a_400_invalid_json(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str], raw: bytes
) -> None:
    before = snapshot(app)
    error = error_of(send(client, site, writer, raw), 400)
    assert error["code"] == "invalid_json"
    assert snapshot(app) == before


@pytest.mark.parametrize("raw", ["[]", '"pageview"', "null", "1"])
def test_json_that_is_not_an_object_is_a_400(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str], raw: str
) -> None:
    error = error_of(send(client, site, writer, raw), 400)
    assert error["code"] == "invalid_request"
    assert "body" in error["details"]
    assert stored(app) == []


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        "",
    ],
)
def test_a_body_that_is_not_application_json_is_a_415(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str], content_type: str
) -> None:
    before = snapshot(app)
    response = send(client, site, writer, body_for(), content_type=content_type)
    error = error_of(response, 415)
    assert error["code"] == "unsupported_media_type"
    assert snapshot(app) == before


def test_json_with_a_charset_is_accepted(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    response = send(
        client, site, writer, body_for(), content_type="application/json; charset=utf-8"
    )
    accepted(response)


def test_a_body_over_max_api_body_is_a_413(app_factory: Any) -> None:
    app = app_factory(MAX_API_BODY=1024)
    site_id, key = new_site(app)
    client = app.test_client()
    body = json.dumps(body_for())
    exactly = body[:-1] + " " * (1024 - len(body)) + "}"
    over = body[:-1] + " " * (1025 - len(body)) + "}"
    assert (len(exactly.encode()), len(over.encode())) == (1024, 1025)
    before = snapshot(app)
    error = error_of(send(client, site_id, key, over), 413)
    assert error["code"] == "too_large"
    # Without a Content-Length the server still stops reading past the limit.
    chunked = send(
        client,
        site_id,
        {**key, "Transfer-Encoding": "chunked"},
        over.encode(),
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert error_of(chunked, 413)["code"] == "too_large"
    assert snapshot(app) == before
    accepted(send(client, site_id, key, exactly))
    assert len(stored(app)) == 1


def test_the_default_limit_is_64_kib(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    assert app.config["MAX_API_BODY"] == 64 * 1024
    big = json.dumps(body_for())[:-1] + " " * (64 * 1024) + "}"
    assert error_of(send(client, site, writer, big), 413)["code"] == "too_large"
    assert stored(app) == []


# -- overload and rate limits ----------------------------------------------------------------


def test_a_full_spool_is_a_503_with_retry_after(app_factory: Any) -> None:
    app = app_factory(SPOOL_MAX_BYTES=600)
    site_id, key = new_site(app)
    client = app.test_client()
    statuses = [
        send(client, site_id, key, body_for(url=f"https://a.example/{n}")).status_code
        for n in range(10)
    ]
    assert statuses[0] == 202
    assert 503 in statuses
    first_refused = statuses.index(503)
    assert set(statuses[first_refused:]) == {503}
    response = send(client, site_id, key, body_for())
    error = error_of(response, 503)
    assert error["code"] == "overloaded"
    assert response.headers["Retry-After"] == "5"
    assert drain(app) == first_refused  # what was accepted, and nothing else


def test_the_events_rate_limit_is_per_key(app_factory: Any) -> None:
    app = app_factory(API_EVENTS_RATE_LIMIT="2 per minute")
    site_id, first = new_site(app)
    second = key_for(app, site_id)
    client = app.test_client()

    one = send(client, site_id, first, body_for())
    two = send(client, site_id, first, body_for())
    accepted(one)
    accepted(two)
    assert (one.headers["X-RateLimit-Limit"], one.headers["X-RateLimit-Remaining"]) == ("2", "1")
    assert (two.headers["X-RateLimit-Limit"], two.headers["X-RateLimit-Remaining"]) == ("2", "0")

    refused = send(client, site_id, first, body_for())
    error = error_of(refused, 429)
    assert error["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Limit"] == "2"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert 0 <= int(refused.headers["X-RateLimit-Reset"]) <= 60

    # Another key of the same owner has its own budget, and the first key may still read.
    accepted(send(client, site_id, second, body_for()))
    reading = client.get(f"/api/v1/sites/{site_id}/stats/realtime", headers=first)
    assert reading.status_code == 200
    assert len(stored(app)) == 3


def test_a_batch_is_recorded_event_by_event_with_each_outcome(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    events = [
        body_for(url="https://a.example/one"),
        body_for(url="https://a.example/two", name="Signup", props={"plan": "pro"}),
        body_for(url="https://a.example/three", user_agent=GOOGLEBOT),
    ]
    answer = client.post(
        f"/api/v1/sites/{site}/events/batch",
        json={"events": events},
        headers={**writer, **SERVER_HEADERS},
        environ_base=SERVER,
    )
    assert answer.status_code == 202
    assert answer.get_json() == {
        "results": [
            {"status": "accepted", "reason": None},
            {"status": "accepted", "reason": None},
            {"status": "dropped", "reason": "bot"},
        ]
    }
    stored_now = stored_events(app)
    assert [(e.pathname, e.event) for e in stored_now] == [("/one", "pageview"), ("/two", "Signup")]
    assert stored_now[1].props == {"plan": "pro"} and stored_now[0].browser == "Mobile Safari"
    assert drop_counts(app) == {(site, "bot"): 1}


def test_a_batch_with_one_bad_event_is_refused_whole(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    before = snapshot(app)
    for events, field in (
        ([body_for(), body_for(url="ftp://a.example/")], "events.1.url"),
        ([body_for(), body_for(name="bad\u0000name")], "events.1.name"),
        ([], "events"),
        ([body_for()] * 101, "events"),
    ):
        answer = client.post(
            f"/api/v1/sites/{site}/events/batch", json={"events": events}, headers=writer
        )
        details = error_of(answer, 400)["details"]
        assert any(key.startswith(field) for key in details), details
    assert snapshot(app) == before
    assert stored_events(app) == []
