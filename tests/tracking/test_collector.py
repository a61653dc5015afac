"""The visit collector /sites/<id>/visit: what it records, what it refuses, what it never does."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_tracking.geo import GeoData
from flask_tracking.ingest import drain
from flask_tracking.tracking.snippet import TRANSPARENT_GIF
from flask_tracking.users.models import User

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
VISITOR = {"REMOTE_ADDR": "8.8.4.4"}


@pytest.fixture
def site_id(owner: User, make_site: Any) -> int:
    return make_site(owner)  # type: ignore[no-any-return]


def test_visit_location_comes_from_its_ip(
    client: FlaskClient, app: Flask, visits_in: Any, site_id: int, los_angeles: GeoData
) -> None:
    with mock.patch("flask_tracking.geo.get_geodata", return_value=los_angeles) as get_geodata:
        response = client.get(
            f"/sites/{site_id}/visit",
            query_string={"url": "https://example.com/", "event": "PageLoad"},
            environ_base=VISITOR,
        )
        drain(app)  # enrichment, and so the lookup, happens in the writer
    assert response.status_code == 204
    get_geodata.assert_called_once_with("8.8.4.4")
    [visit] = visits_in(app)
    assert visit.location == "Los Angeles, 90001"
    assert (visit.latitude, visit.longitude) == (34.05, -118.25)
    assert visit.event == "PageLoad"


def test_visit_records_page_referrer_browser_and_time(
    client: FlaskClient, app: Flask, visits_in: Any, site_id: int
) -> None:
    response = client.post(
        f"/sites/{site_id}/visit",
        data={
            "url": "https://example.com/a?b=c&utm_source=news#top",
            "ref": "https://duckduckgo.com/",
        },
        headers={"User-Agent": IPHONE},
        environ_base=VISITOR,
    )
    assert response.status_code == 204
    assert response.data == b""
    [visit] = visits_in(app)
    # Query parameters other than UTM tags (and a short allow-list) may be private: not kept.
    assert visit.url == "https://example.com/a?utm_source=news"
    assert (visit.hostname, visit.pathname, visit.utm_source) == ("example.com", "/a", "news")
    assert visit.referrer_source == "DuckDuckGo"
    assert visit.referrer == "https://duckduckgo.com/"
    assert visit.event == "pageview"
    assert (visit.browser, visit.browser_version) == ("Mobile Safari", "17.0")
    assert (visit.os, visit.device) == ("iOS", "mobile")
    assert visit.date is not None


def test_referer_header_is_the_page_url_when_no_url_is_given(
    client: FlaskClient, app: Flask, visits_in: Any, site_id: int
) -> None:
    response = client.get(
        f"/sites/{site_id}/visit", headers={"Referer": "https://example.com/from-header"}
    )
    assert response.status_code == 204
    assert visits_in(app)[0].url == "https://example.com/from-header"


def test_an_image_request_gets_a_transparent_gif(client: FlaskClient, site_id: int) -> None:
    response = client.get(
        f"/sites/{site_id}/visit",
        query_string={"url": "https://example.com/"},
        headers={"Accept": "image/avif,image/webp,image/*,*/*;q=0.8"},
    )
    assert response.status_code == 200
    assert response.mimetype == "image/gif"
    assert response.data == TRANSPARENT_GIF


def test_collector_allows_any_origin_and_sets_no_cookie(client: FlaskClient, site_id: int) -> None:
    response = client.get(
        f"/sites/{site_id}/visit",
        query_string={"url": "https://example.com/"},
        headers={"Origin": "https://example.com"},
    )
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Set-Cookie" not in response.headers
    preflight = client.options(f"/sites/{site_id}/visit")
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"


def test_collector_needs_no_login_and_no_csrf(app_factory: Any, site_in: Any) -> None:
    app = app_factory(WTF_CSRF_ENABLED=True)
    site_id = site_in(app)
    response = app.test_client().post(
        f"/sites/{site_id}/visit", data={"url": "https://example.com/"}
    )
    assert response.status_code == 204


BAD_INPUT = [
    ({}, {}, "url", "Missing"),
    ({"url": "ftp://example.com/"}, {}, "url", "http://"),
    ({"url": "javascript:alert(1)"}, {}, "url", "http://"),
    ({"url": "/relative/path"}, {}, "url", "http://"),
    ({"url": "https://example.com/" + "a" * 2100}, {}, "url", "at most 2048"),
    ({"url": "https://example.com/\x00"}, {}, "url", "control characters"),
    ({}, {"Referer": "data:text/html,hi"}, "url", "http://"),
    ({"url": "https://example.com/", "event": "e" * 121}, {}, "event", "at most 120"),
    ({"url": "https://example.com/", "event": "bad\nevent"}, {}, "event", "control"),
    ({"url": "https://example.com/", "ref": "https://r.example/\r\nX: y"}, {}, "ref", "control"),
]


@pytest.mark.parametrize(("params", "headers", "field", "message"), BAD_INPUT)
def test_bad_input_is_a_400_naming_the_problem_and_stores_nothing(
    client: FlaskClient,
    app: Flask,
    row_count: Any,
    site_id: int,
    params: dict[str, str],
    headers: dict[str, str],
    field: str,
    message: str,
) -> None:
    response = client.get(f"/sites/{site_id}/visit", query_string=params, headers=headers)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["status"] == 400
    assert field in error["details"]
    assert message in error["details"][field]
    assert row_count(app, "events") == 0


def test_unknown_site_is_a_404_json(client: FlaskClient, app: Flask, row_count: Any) -> None:
    response = client.get("/sites/999/visit", query_string={"url": "https://example.com/"})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "unknown_site"
    assert row_count(app, "events") == 0


def test_do_not_track_is_honoured(
    client: FlaskClient, app: Flask, row_count: Any, site_id: int
) -> None:
    response = client.get(
        f"/sites/{site_id}/visit",
        query_string={"url": "https://example.com/"},
        headers={"DNT": "1"},
    )
    assert response.status_code == 204
    assert response.headers["X-Tracking-Dropped"] == "dnt"
    assert row_count(app, "events") == 0


def test_do_not_track_can_be_turned_off(app_factory: Any, site_in: Any, row_count: Any) -> None:
    app = app_factory(RESPECT_DNT=False)
    site_id = site_in(app)
    app.test_client().get(
        f"/sites/{site_id}/visit", query_string={"url": "https://e.com/"}, headers={"DNT": "1"}
    )
    assert row_count(app, "events") == 1


def test_raw_ip_is_not_stored_by_default(
    client: FlaskClient, app: Flask, visits_in: Any, site_id: int
) -> None:
    client.get(
        f"/sites/{site_id}/visit",
        query_string={"url": "https://example.com/"},
        environ_base=VISITOR,
    )
    assert visits_in(app)[0].ip_address is None


@pytest.mark.parametrize(
    ("ip", "stored"),
    [
        ("8.8.4.4", "8.8.4.0"),
        ("2001:4860:4860::8844", "2001:4860:4860::"),
        ("::ffff:81.2.69.142", "81.2.69.0"),
    ],
)
def test_stored_ip_is_truncated(
    app_factory: Any, site_in: Any, visits_in: Any, ip: str, stored: str
) -> None:
    app = app_factory(STORE_VISITOR_IP=True)
    site_id = site_in(app)
    app.test_client().get(
        f"/sites/{site_id}/visit",
        query_string={"url": "https://e.com/"},
        environ_base={"REMOTE_ADDR": ip},
    )
    assert visits_in(app)[0].ip_address == stored


def test_x_forwarded_for_is_ignored_without_trusted_proxies(
    client: FlaskClient, app: Flask, site_id: int
) -> None:
    with mock.patch("flask_tracking.geo.get_geodata", return_value=None) as get_geodata:
        client.get(
            f"/sites/{site_id}/visit",
            query_string={"url": "https://example.com/"},
            headers={"X-Forwarded-For": "1.2.3.4"},
            environ_base=VISITOR,
        )
        drain(app)  # enrichment, and so the lookup, happens in the writer
    get_geodata.assert_called_once_with("8.8.4.4")


def test_x_forwarded_for_is_used_through_trusted_proxies(app_factory: Any, site_in: Any) -> None:
    app = app_factory(PROXY_COUNT=1)
    site_id = site_in(app)
    with mock.patch("flask_tracking.geo.get_geodata", return_value=None) as get_geodata:
        # The client forged the first entry; only the last hop, added by our proxy, counts.
        app.test_client().get(
            f"/sites/{site_id}/visit",
            query_string={"url": "https://example.com/"},
            headers={"X-Forwarded-For": "6.6.6.6, 1.2.3.4"},
            environ_base={"REMOTE_ADDR": "10.0.0.2"},
        )
        drain(app)  # enrichment, and so the lookup, happens in the writer
    get_geodata.assert_called_once_with("1.2.3.4")


def test_a_failing_geo_lookup_never_loses_the_visit(
    client: FlaskClient, app: Flask, visits_in: Any, site_id: int
) -> None:
    with mock.patch("flask_tracking.geo.get_geodata", return_value=None):
        response = client.get(
            f"/sites/{site_id}/visit",
            query_string={"url": "https://example.com/"},
            environ_base=VISITOR,
        )
        drain(app)  # enrichment, and so the lookup, happens in the writer
    assert response.status_code == 204
    [visit] = visits_in(app)
    assert visit.location == ""
    assert visit.city is None


@pytest.mark.parametrize("ip", ["::1", "fe80::1%eth0", "2001:db8::1", "0.0.0.0"])
def test_ipv6_and_odd_addresses_are_recorded(
    client: FlaskClient, app: Flask, row_count: Any, site_id: int, ip: str
) -> None:
    response = client.get(
        f"/sites/{site_id}/visit",
        query_string={"url": "https://example.com/"},
        environ_base={"REMOTE_ADDR": ip},
    )
    assert response.status_code == 204
    assert row_count(app, "events") == 1


FUZZ = [
    "",
    "%",
    "\xff\xfe",
    "' OR 1=1 --",
    "<script>",
    "\x00",
    "a" * 10000,
    "🙂",
    "%00",
    "\\",
    "https://",
    "http://[::1",
    "http://:80",
    "https://ex ample.com/",
]


@pytest.mark.parametrize("value", FUZZ)
def test_nothing_sent_to_the_collector_causes_a_500(
    client: FlaskClient, site_id: int, value: str
) -> None:
    for params in (
        {"url": value},
        {"url": "https://e.com/", "ref": value},
        {"url": "https://e.com/", "event": value},
    ):
        response = client.get(
            f"/sites/{site_id}/visit",
            query_string=params,
            headers={
                "User-Agent": value.encode("utf-8", "replace")
                .decode("latin-1", "replace")[:2000]
                .replace("\x00", "")
            },
        )
        assert response.status_code < 500, params
    # Invalid UTF-8 straight in the query string.
    raw = client.get(f"/sites/{site_id}/visit?url=https%3A%2F%2Fe.com%2F%ff%fe&event=%c3%28")
    assert raw.status_code < 500
    for path in (
        "/sites/abc/visit",
        "/sites/0/visit",
        "/sites/-1/visit",
        "/sites/2147483648/visit",
        "/sites/99999999999999999999999/visit",
    ):
        response = client.get(path, query_string={"url": "https://e.com/"})
        assert response.status_code == 404, path
    assert client.open(f"/sites/{site_id}/visit", method="PUT").status_code == 405
