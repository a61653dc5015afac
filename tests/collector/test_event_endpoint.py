"""POST /api/event: what it stores, what it refuses, what it drops, and what it never does."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from flask_tracking.extensions import db
from flask_tracking.reports.export import StoredEvent
from flask_tracking.tracking.analytics import RejectedEvent
from flask_tracking.tracking.models import Site
from flask_tracking.users import accounts
from flask_tracking.users.models import User
from tests.conftest import drop_counts, stored_events

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
VISITOR = {"REMOTE_ADDR": "8.8.4.4"}
MISSING = object()  # a case that leaves the field out


@pytest.fixture
def site_id(owner: User, make_site: Any) -> int:
    return make_site(owner)  # type: ignore[no-any-return]


def body_for(site_id: int, **fields: Any) -> dict[str, Any]:
    """A valid minimal body with some fields replaced (or removed, with MISSING)."""
    body: dict[str, Any] = {"site": site_id, "url": "https://example.com/"}
    body.update(fields)
    return {key: value for key, value in body.items() if value is not MISSING}


def post(
    client: FlaskClient,
    body: Any,
    *,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> TestResponse:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(
        "/api/event",
        data=data,
        content_type=content_type,
        headers={"User-Agent": CHROME, **(headers or {})},
        environ_base=VISITOR,
    )


def stored(app: Flask) -> list[StoredEvent]:
    """Store what was spooled; return the events, oldest first."""
    return stored_events(app)


def assert_stored_nothing(app: Flask) -> None:
    assert stored(app) == []
    assert drop_counts(app) == {}


def error_of(response: TestResponse) -> dict[str, Any]:
    assert response.is_json, response.data
    error: dict[str, Any] = response.get_json()["error"]
    assert error["status"] == response.status_code
    return error


def assert_cors(response: TestResponse) -> None:
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Set-Cookie" not in response.headers


# -- accepted --------------------------------------------------------------------------------


def test_an_event_is_accepted_and_stored_with_every_field(
    client: FlaskClient, app: Flask, site_id: int
) -> None:
    response = post(
        client,
        {
            "site": site_id,
            "name": "Signup",
            "url": "https://Example.com/pricing?utm_source=news&utm_medium=email"
            "&utm_campaign=launch&token=secret#plans",
            "referrer": "https://www.google.com/",
            "width": 1280,
            "props": {"plan": "pro", "seats": 3, "trial": True, "ratio": 0.5},
        },
    )
    assert response.status_code == 202
    assert response.data == b""
    assert "X-Tracking-Dropped" not in response.headers
    assert_cors(response)
    [visit] = stored(app)
    assert visit.site_id == site_id
    assert visit.event == "Signup"
    # The private query parameter and the fragment are not stored; UTM tags are, split out.
    assert visit.url == (
        "https://example.com/pricing?utm_source=news&utm_medium=email&utm_campaign=launch"
    )
    assert (visit.hostname, visit.pathname) == ("example.com", "/pricing")
    assert (visit.utm_source, visit.utm_medium, visit.utm_campaign) == ("news", "email", "launch")
    assert (visit.utm_term, visit.utm_content) == (None, None)
    assert (visit.referrer, visit.referrer_source) == ("https://www.google.com/", "Google")
    assert (visit.screen_width, visit.screen_size) == (1280, "laptop")
    assert visit.props == {"plan": "pro", "seats": 3, "trial": True, "ratio": 0.5}
    assert (visit.browser, visit.os, visit.device) == ("Chrome", "Windows", "desktop")
    assert visit.visitor_id is not None
    assert visit.session_id is not None
    assert visit.ip_address is None  # STORE_VISITOR_IP is off


def test_only_site_and_url_are_required(client: FlaskClient, app: Flask, site_id: int) -> None:
    response = post(client, {"site": site_id, "url": "https://example.com/a"})
    assert response.status_code == 202
    [visit] = stored(app)
    assert (visit.event, visit.pathname, visit.referrer) == ("pageview", "/a", None)
    assert (visit.screen_width, visit.screen_size, visit.props) == (None, None, None)


@pytest.mark.parametrize(
    "content_type", ["text/plain;charset=UTF-8", "text/plain", "application/octet-stream"]
)
def test_a_body_of_another_type_is_read_as_json_as_sendbeacon_sends_it(
    client: FlaskClient, app: Flask, site_id: int, content_type: str
) -> None:
    response = post(client, body_for(site_id, name="Beacon"), content_type=content_type)
    assert response.status_code == 202
    assert [visit.event for visit in stored(app)] == ["Beacon"]


def test_events_of_one_visitor_share_a_visitor_and_a_session(
    client: FlaskClient, app: Flask, site_id: int
) -> None:
    for path in ("/", "/pricing"):
        assert post(client, body_for(site_id, url=f"https://example.com{path}")).status_code == 202
    first, second = stored(app)
    assert first.visitor_id == second.visitor_id
    assert first.session_id == second.session_id


def test_a_numeric_string_is_accepted_as_the_site(
    client: FlaskClient, app: Flask, site_id: int
) -> None:
    assert post(client, body_for(site_id, site=str(site_id))).status_code == 202
    assert len(stored(app)) == 1


# -- refused ---------------------------------------------------------------------------------

INVALID = [
    # site
    pytest.param("site", {"site": MISSING}, id="site-missing"),
    pytest.param("site", {"site": None}, id="site-null"),
    pytest.param("site", {"site": "one"}, id="site-word"),
    pytest.param("site", {"site": "1.0"}, id="site-decimal-string"),
    pytest.param("site", {"site": " 1"}, id="site-padded-string"),
    pytest.param("site", {"site": "²"}, id="site-superscript-digit"),
    pytest.param("site", {"site": "\uff11"}, id="site-fullwidth-digit"),
    pytest.param("site", {"site": "9" * 5000}, id="site-5000-digits"),
    pytest.param("site", {"site": 1.5}, id="site-float"),
    pytest.param("site", {"site": 1.0}, id="site-integral-float"),
    pytest.param("site", {"site": True}, id="site-bool"),
    pytest.param("site", {"site": 0}, id="site-zero"),
    pytest.param("site", {"site": -1}, id="site-negative"),
    pytest.param("site", {"site": 2**31}, id="site-too-big"),
    pytest.param("site", {"site": [1]}, id="site-list"),
    pytest.param("site", {"site": {"id": 1}}, id="site-object"),
    # name
    pytest.param("name", {"name": "x" * 121}, id="name-too-long"),
    pytest.param("name", {"name": "Sign\nup"}, id="name-newline"),
    pytest.param("name", {"name": "a\x00b"}, id="name-nul"),
    pytest.param("name", {"name": "\x7f"}, id="name-del"),
    pytest.param("name", {"name": ""}, id="name-empty"),
    pytest.param("name", {"name": "   "}, id="name-blank"),
    pytest.param("name", {"name": None}, id="name-null"),
    pytest.param("name", {"name": 5}, id="name-number"),
    pytest.param("name", {"name": ["a"]}, id="name-list"),
    pytest.param("name", {"name": "a\ud800b"}, id="name-lone-surrogate"),
    # url
    pytest.param("url", {"url": MISSING}, id="url-missing"),
    pytest.param("url", {"url": None}, id="url-null"),
    pytest.param("url", {"url": 5}, id="url-number"),
    pytest.param("url", {"url": ""}, id="url-empty"),
    pytest.param("url", {"url": "ftp://example.com/file"}, id="url-ftp"),
    pytest.param("url", {"url": "javascript:alert(1)"}, id="url-javascript"),
    pytest.param("url", {"url": "data:text/html,<b>x</b>"}, id="url-data"),
    pytest.param("url", {"url": "/pricing"}, id="url-relative"),
    pytest.param("url", {"url": "//example.com/"}, id="url-scheme-relative"),
    pytest.param("url", {"url": "example.com/page"}, id="url-no-scheme"),
    pytest.param("url", {"url": "https://example.com/" + "a" * 2048}, id="url-too-long"),
    pytest.param("url", {"url": "https://"}, id="url-no-host"),
    pytest.param("url", {"url": "https:///path"}, id="url-empty-host"),
    pytest.param("url", {"url": "https://e.com:99999/"}, id="url-port-out-of-range"),
    pytest.param("url", {"url": "https://e.com:http/"}, id="url-port-not-a-number"),
    pytest.param("url", {"url": "https://[::1/"}, id="url-broken-ipv6"),
    pytest.param("url", {"url": "https://example.com/a\nb"}, id="url-newline"),
    pytest.param("url", {"url": "https://example.com/\ud800"}, id="url-lone-surrogate"),
    # referrer
    pytest.param("referrer", {"referrer": 5}, id="referrer-number"),
    pytest.param("referrer", {"referrer": True}, id="referrer-bool"),
    pytest.param("referrer", {"referrer": ["https://a.com/"]}, id="referrer-list"),
    pytest.param("referrer", {"referrer": {"url": "x"}}, id="referrer-object"),
    pytest.param("referrer", {"referrer": "https://r.com/" + "a" * 2048}, id="referrer-long"),
    pytest.param("referrer", {"referrer": "https://r.com/\r\nX: y"}, id="referrer-crlf"),
    pytest.param("referrer", {"referrer": "https://r.com/\udfff"}, id="referrer-surrogate"),
    # width
    pytest.param("width", {"width": -1}, id="width-negative"),
    pytest.param("width", {"width": 100_001}, id="width-huge"),
    pytest.param("width", {"width": 10**30}, id="width-enormous"),
    pytest.param("width", {"width": 1280.5}, id="width-float"),
    pytest.param("width", {"width": 1280.0}, id="width-integral-float"),
    pytest.param("width", {"width": True}, id="width-bool"),
    pytest.param("width", {"width": "1280"}, id="width-string"),
    pytest.param("width", {"width": [1280]}, id="width-list"),
    # props
    pytest.param("props", {"props": "plan=pro"}, id="props-string"),
    pytest.param("props", {"props": []}, id="props-empty-list"),
    pytest.param("props", {"props": [["plan", "pro"]]}, id="props-list"),
    pytest.param("props", {"props": 0}, id="props-zero"),
    pytest.param("props", {"props": False}, id="props-false"),
    pytest.param("props", {"props": ""}, id="props-empty-string"),
    pytest.param("props", {"props": {f"k{i}": i for i in range(31)}}, id="props-31-keys"),
    pytest.param("props", {"props": {"k" * 65: 1}}, id="props-long-key"),
    pytest.param("props", {"props": {"": 1}}, id="props-empty-key"),
    pytest.param("props", {"props": {"a\nb": 1}}, id="props-key-newline"),
    pytest.param("props", {"props": {"a\ud800": 1}}, id="props-key-surrogate"),
    pytest.param("props", {"props": {"plan": "v" * 513}}, id="props-long-value"),
    pytest.param("props", {"props": {"plan": "a\x00b"}}, id="props-value-nul"),
    pytest.param("props", {"props": {"plan": "\udc00"}}, id="props-value-surrogate"),
    pytest.param("props", {"props": {"plan": {"name": "pro"}}}, id="props-nested-object"),
    pytest.param("props", {"props": {"plans": ["pro"]}}, id="props-list-value"),
    pytest.param("props", {"props": {"plan": None}}, id="props-null-value"),
    pytest.param("props", {"props": {"big": 10**400}}, id="props-int-beyond-float"),
    # the body
    pytest.param("body", {"extra": 1}, id="unknown-field"),
    pytest.param("body", {"Site": 1}, id="unknown-field-case"),
]


@pytest.mark.parametrize(("field", "fields"), INVALID)
def test_an_invalid_field_is_named_in_a_400_and_nothing_is_stored(
    client: FlaskClient, app: Flask, site_id: int, field: str, fields: dict[str, Any]
) -> None:
    response = post(client, body_for(site_id, **fields))
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_event"
    assert field in error["details"], error
    assert_cors(response)
    assert_stored_nothing(app)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"{'site': 1}",
        b'{"site": 1, "url": "https://example.com/",}',
        b"\xff\xfe\x00",
        b"nul",
        b'{"site": 1, "url": "https://example.com/", "props": {"x": NaN}}',
        b'{"site": 1, "url": "https://example.com/", "props": {"x": Infinity}}',
        b"[" * 4000 + b"]" * 4000,  # deeper than the JSON parser's recursion limit
    ],
    ids=[
        "empty",
        "truncated",
        "single-quotes",
        "trailing-comma",
        "not-utf8",
        "bare-word",
        "nan",
        "infinity",
        "nested-4000-deep",
    ],
)
def test_a_body_that_is_not_json_or_not_finite_is_a_400(
    client: FlaskClient, app: Flask, site_id: int, raw: bytes
) -> None:
    response = post(client, raw)
    assert response.status_code == 400
    # NaN and Infinity are read (Python's json accepts them) but no property may hold them.
    assert error_of(response)["code"] in {"invalid_json", "invalid_event"}
    assert_cors(response)
    assert_stored_nothing(app)


@pytest.mark.parametrize("raw", ["[]", '"pageview"', "null", "1"], ids=str)
def test_json_that_is_not_an_object_is_a_400_for_the_body(
    client: FlaskClient, app: Flask, site_id: int, raw: str
) -> None:
    response = post(client, raw)
    assert response.status_code == 400
    assert "body" in error_of(response)["details"]
    assert_stored_nothing(app)


def test_a_body_over_8_kb_is_a_413(client: FlaskClient, app: Flask, site_id: int) -> None:
    body = json.dumps(body_for(site_id, props={"pad": "x" * 500}))
    padded = body[:-1] + ", " + " " * (8 * 1024 - len(body)) + "}"
    assert len(padded.encode()) == 8 * 1024 + 2
    response = post(client, padded)
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"
    assert_cors(response)
    # Just under the limit is fine (whitespace is valid JSON).
    fits = body[:-1] + " " * (8 * 1024 - len(body)) + "}"
    assert post(client, fits).status_code == 202
    assert len(stored(app)) == 1


def test_a_body_over_8_kb_without_a_content_length_is_a_413(
    client: FlaskClient, app: Flask, site_id: int
) -> None:
    big = json.dumps(body_for(site_id, name="x" * 9000)).encode()
    response = client.post(
        "/api/event",
        data=big,
        headers={"User-Agent": CHROME, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert_stored_nothing(app)


def test_an_unknown_site_is_a_404(client: FlaskClient, app: Flask, site_id: int) -> None:
    response = post(client, body_for(site_id + 1000))
    assert response.status_code == 404
    assert error_of(response)["code"] == "unknown_site"
    assert_cors(response)
    assert_stored_nothing(app)


# -- CORS and cookies ------------------------------------------------------------------------


def test_a_preflight_is_answered_for_any_origin_without_credentials(
    client: FlaskClient, app: Flask, site_id: int
) -> None:
    response = client.options(
        "/api/event",
        headers={
            "Origin": "https://customer.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code in {200, 204}
    assert_cors(response)
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()
    assert_stored_nothing(app)


def test_answers_from_another_origin_carry_cors_headers(client: FlaskClient, site_id: int) -> None:
    origin = {"Origin": "https://customer.example"}
    accepted = post(client, body_for(site_id), headers=origin)
    refused = post(client, body_for(site_id, url="ftp://x/"), headers=origin)
    assert (accepted.status_code, refused.status_code) == (202, 400)
    for response in (accepted, refused):
        assert_cors(response)
        assert response.headers["Cache-Control"] == "no-store, max-age=0"


def test_no_cookie_is_set_even_for_a_logged_in_owner(
    client: FlaskClient, app: Flask, logged_in: User, make_site: Any
) -> None:
    site_id = make_site(logged_in)
    response = post(client, body_for(site_id))
    assert response.status_code == 202
    assert "Set-Cookie" not in response.headers


# -- dropped ---------------------------------------------------------------------------------

DROPS = [
    pytest.param("bot", {}, {"User-Agent": GOOGLEBOT}, id="googlebot"),
    pytest.param("bot", {}, {"User-Agent": ""}, id="empty-user-agent"),
    pytest.param(
        "bot", {}, {"User-Agent": CHROME.replace("Chrome", "HeadlessChrome")}, id="headless"
    ),
    pytest.param("prefetch", {}, {"Purpose": "prefetch"}, id="purpose-prefetch"),
    pytest.param("prefetch", {}, {"Sec-Purpose": "prefetch;prerender"}, id="sec-purpose"),
    pytest.param("dnt", {}, {"DNT": "1"}, id="do-not-track"),
    pytest.param(
        "referrer_spam", {"referrer": "https://buttons-for-website.com/"}, {}, id="spam-referrer"
    ),
    pytest.param(
        "referrer_spam",
        {"referrer": "http://www.free-share-buttons.com/x"},
        {},
        id="spam-subdomain",
    ),
    pytest.param("excluded_ip", {}, {}, id="excluded-ip"),
    pytest.param(
        "excluded_path", {"url": "https://example.com/admin/users"}, {}, id="excluded-path"
    ),
]


@pytest.mark.parametrize(("reason", "fields", "headers"), DROPS)
def test_a_dropped_event_is_a_202_named_and_counted_not_stored(
    app_factory: Callable[..., Flask],
    reason: str,
    fields: dict[str, Any],
    headers: dict[str, str],
) -> None:
    # Sites are cached; with no cache the exclusions set below apply at once.
    app = app_factory(INGEST_SITE_CACHE_SECONDS=0)
    with app.app_context():
        owner = accounts.register("owner@example.com", "correct horse battery", "Owner")
        site = Site(owner_id=owner.id, base_url="https://example.com")
        db.session.add(site)
        db.session.commit()
        site_id = site.id
    client = app.test_client()
    # A first, counted event loads the site into the cache before its exclusions change.
    assert post(client, body_for(site_id)).status_code == 202
    with app.app_context():
        site = db.session.get(Site, site_id)
        site.excluded_ips = "10.0.0.0/8\n8.8.4.0/24" if reason == "excluded_ip" else ""
        site.excluded_paths = "/admin/*" if reason == "excluded_path" else ""
        db.session.commit()

    response = post(client, body_for(site_id, **fields), headers=headers)

    assert response.status_code == 202
    assert response.headers["X-Tracking-Dropped"] == reason
    assert "X-Tracking-Dropped" in response.headers["Access-Control-Expose-Headers"]
    assert_cors(response)
    assert len(stored(app)) == 1  # the first event only
    assert drop_counts(app) == {(site_id, reason): 1}


def test_drops_are_counted_per_reason(client: FlaskClient, app: Flask, site_id: int) -> None:
    for headers in ({"User-Agent": GOOGLEBOT}, {"User-Agent": ""}, {"DNT": "1"}):
        response = post(client, body_for(site_id), headers=headers)
        assert response.status_code == 202
    assert stored(app) == []
    assert drop_counts(app) == {(site_id, "bot"): 2, (site_id, "dnt"): 1}


# -- odd input -------------------------------------------------------------------------------


def test_html_and_script_are_stored_as_the_same_text(
    client: FlaskClient, app: Flask, site_id: int
) -> None:
    script = "<script>alert(document.cookie)</script>"
    path = '/%22%3E%3Csvg%20onload=alert(1)%3E/"><img src=x onerror=alert(1)>'
    response = post(
        client,
        body_for(
            site_id,
            name=script,
            url=f"https://example.com{path}?utm_source=<b>bold</b>",
            referrer="javascript:alert('referrer')",
            props={"html": '<img src=x onerror="alert(1)">', "js": "');alert(1);//", script: 1},
        ),
    )
    assert response.status_code == 202
    [visit] = stored(app)
    assert visit.event == script
    assert visit.url == f"https://example.com{path}?utm_source=<b>bold</b>"
    assert visit.pathname == path
    assert visit.utm_source == "<b>bold</b>"
    assert visit.referrer == "javascript:alert('referrer')"
    assert visit.props == {
        "html": '<img src=x onerror="alert(1)">',
        "js": "');alert(1);//",
        script: 1,
    }


ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    -0.0,
    2**31,
    2**63,
    10**30,
    10**400,
    1e308,
    "",
    " ",
    "\t",
    "\x00",
    "\x1b[31m",
    "\u202e",
    "\ufeff",
    "\u2028",
    "\x85",
    "\ud800",
    "\udbff\udfff",
    "😀" * 40,
    "é",
    "%00",
    "%",
    "%%32%65",
    "../../etc/passwd",
    "\\\\server\\share",
    '"',
    "'",
    "' OR 1=1 --",
    "{{7*7}}",
    "${jndi:ldap://x/a}",
    "<script>alert(1)</script>",
    "http://",
    "http:",
    "https://ex ample.com/",
    "https://例え.jp/パス?q=値",
    "https://xn--r8jz45g.jp/",
    "http://[::1]:8080/",
    "http://[::ffff:1.2.3.4]/",
    "http://1.2.3.4/",
    "http://0x7f.1/",
    "https://user:pw@example.com/",
    "https://example.com:0/",
    "https://example.com:65535/",
    "https://example.com:/",
    "https://example.com?#",
    "HTTPS://EXAMPLE.COM/A?UTM_SOURCE=X",
    "https://example.com/?utm_source=%ZZ&utm_medium=%E2%82",
    "https://example.com/?utm_source=" + "x" * 600,
    "https://" + "a" * 300 + ".com/",
    "https://example.com/" + "p" * 2020,
    "http://[bad",
    "android-app://com.google.android.gm/",
    [],
    [1, "a"],
    {},
    {"a": {"b": []}},
    {"k": "v"},
]


def test_odd_values_in_every_field_never_cause_a_500(
    client: FlaskClient, app: Flask, site_id: int
) -> None:
    accepted = 0
    for value in ODD_VALUES:
        variants: list[dict[str, Any]] = [
            body_for(site_id, **{field: value})
            for field in ("site", "name", "url", "referrer", "width", "props")
        ]
        variants.append(body_for(site_id, props={"key": value}))
        if isinstance(value, str):
            variants.append(body_for(site_id, props={value: 1}))
            variants.append(body_for(site_id, **{value: 1}))
        for body in variants:
            response = post(client, body)
            assert response.status_code in {202, 400, 404, 413}, (body, response.data)
            if response.status_code == 202 and "X-Tracking-Dropped" not in response.headers:
                accepted += 1
    # The writer takes everything accepted: no row refused, none lost.
    assert len(stored(app)) == accepted
    with app.app_context():
        assert db.session.scalars(select(RejectedEvent)).all() == []
