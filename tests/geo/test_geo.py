"""Unit tests for flask_tracking.geo: address filtering, configuration, parsing, failures."""

from __future__ import annotations

import io
import json
import logging
import math
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_tracking import geo
from flask_tracking.geo import GeoData, get_geodata, init_app, provider_from_config
from flask_tracking.geo.data import public_address
from flask_tracking.geo.providers import (
    HTTPProvider,
    MMDBProvider,
    NoProvider,
    bundled_database_path,
    record_to_geodata,
)
from flask_tracking.geo.service import parse_answer

LOS_ANGELES = GeoData(
    city="Los Angeles",
    postal_code="90001",
    region="California",
    country_code="US",
    country_name="United States",
    latitude=34.05,
    longitude=-118.25,
)

PUBLIC = ["8.8.8.8", "81.2.69.142", "2001:4860:4860::8888", "2a02:c7f:2003::1"]
NOT_PUBLIC = [
    "10.1.2.3",  # private
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",  # carrier-grade NAT
    "127.0.0.1",  # loopback
    "::1",
    "169.254.10.20",  # link-local
    "fe80::1",
    "fe80::1%eth0",
    "224.0.0.1",  # multicast
    "ff0e::1",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "0.0.0.0",  # unspecified
    "::",
    "203.0.113.7",  # documentation (TEST-NET-3)
    "2001:db8::1",
    "fc00::1",  # unique local
    "fec0::1",  # deprecated site-local
    "::ffff:10.0.0.1",  # IPv4-mapped private
    "::ffff:127.0.0.1",
]
MALFORMED = [
    "",
    "   ",
    "not-an-ip",
    "8.8.8",
    "8.8.8.256",
    "1.2.3.4/24",
    "8.8.8.8:80",
    "::g",
    "[::1]",
]


class CountingProvider:
    """A provider that records what it was asked and answers Los Angeles."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def lookup(self, ip: str) -> GeoData | None:
        self.calls.append(ip)
        return LOS_ANGELES


class FailingProvider:
    """A provider with a bug."""

    def lookup(self, ip: str) -> GeoData | None:
        raise RuntimeError("provider exploded")


def app_with(provider: object) -> Flask:
    app = Flask("geo_unit_test")
    app.extensions["geoip"] = provider
    return app


# --- GeoData ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("city", "postal_code", "expected"),
    [
        ("Los Angeles", "90001", "Los Angeles, 90001"),
        ("Los Angeles", None, "Los Angeles"),
        (None, "90001", "90001"),
        (None, None, ""),
        ("", "", ""),
    ],
    ids=["both", "city-only", "zip-only", "neither", "empty-strings"],
)
def test_location_leaves_out_missing_parts(
    city: str | None, postal_code: str | None, expected: str
) -> None:
    data = GeoData(city=city, postal_code=postal_code, country_code="US")
    assert data.location == expected
    assert "None" not in data.location


def test_geodata_is_immutable_and_defaults_to_unknown() -> None:
    data = GeoData()
    assert data == GeoData(None, None, None, None, None, None, None)
    with pytest.raises(AttributeError):
        data.city = "Paris"  # type: ignore[misc]


# --- which addresses are looked up ------------------------------------------------------------


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_are_kept(ip: str) -> None:
    assert public_address(ip) == ip


@pytest.mark.parametrize(
    ("ip", "canonical"),
    [
        ("::ffff:8.8.8.8", "8.8.8.8"),
        ("::FFFF:808:808", "8.8.8.8"),
        (" 8.8.4.4\n", "8.8.4.4"),
        ("2001:4860:4860:0:0:0:0:8888", "2001:4860:4860::8888"),
    ],
)
def test_public_addresses_are_canonicalised(ip: str, canonical: str) -> None:
    assert public_address(ip) == canonical


@pytest.mark.parametrize("ip", [*NOT_PUBLIC, *MALFORMED, None, 12345, b"8.8.8.8"])
def test_other_addresses_are_refused(ip: Any) -> None:
    assert public_address(ip) is None


@pytest.mark.parametrize("ip", [*NOT_PUBLIC, *MALFORMED])
def test_get_geodata_never_asks_the_provider_about_non_public_addresses(ip: str) -> None:
    provider = CountingProvider()
    with app_with(provider).app_context():
        assert get_geodata(ip) is None
    assert provider.calls == []


def test_get_geodata_asks_the_provider_with_the_canonical_address() -> None:
    provider = CountingProvider()
    with app_with(provider).app_context():
        assert get_geodata("::ffff:8.8.8.8") == LOS_ANGELES
        assert get_geodata("2001:4860:4860::8888") == LOS_ANGELES
    assert provider.calls == ["8.8.8.8", "2001:4860:4860::8888"]


@pytest.mark.parametrize("ip", NOT_PUBLIC)
def test_providers_themselves_refuse_non_public_addresses(ip: str) -> None:
    opener = FakeOpener(json.dumps({"city": "Nowhere"}))
    provider = HTTPProvider("http://geo.invalid/json/{ip}", opener=opener)
    assert provider.lookup(ip) is None
    assert opener.urls == []


# --- failures never escape ----------------------------------------------------------------------


def test_get_geodata_returns_none_when_the_provider_raises(
    geo_log: list[logging.LogRecord],
) -> None:
    with app_with(FailingProvider()).app_context():
        assert get_geodata("8.8.8.8") is None
    assert [r.levelno for r in geo_log] == [logging.ERROR]
    assert "8.8.8.8" not in geo_log[0].getMessage()


def test_get_geodata_returns_none_without_a_configured_provider() -> None:
    with Flask("bare").app_context():
        assert get_geodata("8.8.8.8") is None


def test_get_geodata_returns_none_outside_an_app_context() -> None:
    assert get_geodata("8.8.8.8") is None


# --- configuration ------------------------------------------------------------------------------


def test_default_provider_is_the_bundled_database() -> None:
    provider = provider_from_config({})
    assert isinstance(provider, MMDBProvider)
    assert provider.path is None
    assert Path(bundled_database_path()).name == "GeoLite2-City.mmdb"
    assert Path(bundled_database_path()).is_file()


@pytest.mark.parametrize(
    ("config", "kind"),
    [
        ({"GEOIP_PROVIDER": "mmdb", "GEOIP_DATABASE_PATH": "/srv/geo/city.mmdb"}, MMDBProvider),
        ({"GEOIP_PROVIDER": None}, MMDBProvider),
        ({"GEOIP_PROVIDER": "none"}, NoProvider),
        ({"GEOIP_PROVIDER": " NONE "}, NoProvider),
        ({"GEOIP_PROVIDER": "http", "GEOIP_HTTP_URL": "https://geo.example/{ip}"}, HTTPProvider),
    ],
)
def test_provider_is_chosen_from_config(config: dict[str, Any], kind: type) -> None:
    assert isinstance(provider_from_config(config), kind)


def test_http_settings_are_read_with_defaults() -> None:
    provider = provider_from_config({"GEOIP_PROVIDER": "http", "GEOIP_HTTP_URL": "http://x/{ip}"})
    assert isinstance(provider, HTTPProvider)
    assert provider.timeout == 0.5
    provider = provider_from_config(
        {"GEOIP_PROVIDER": "http", "GEOIP_HTTP_URL": "http://x/{ip}", "GEOIP_HTTP_TIMEOUT": "2"}
    )
    assert isinstance(provider, HTTPProvider)
    assert provider.timeout == 2.0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"GEOIP_PROVIDER": "maxmind"}, "GEOIP_PROVIDER must be one of mmdb, http, none"),
        ({"GEOIP_PROVIDER": 1}, "GEOIP_PROVIDER"),
        ({"GEOIP_PROVIDER": "http"}, "GEOIP_HTTP_URL"),
        ({"GEOIP_PROVIDER": "http", "GEOIP_HTTP_URL": "ftp://x/{ip}"}, "GEOIP_HTTP_URL"),
        ({"GEOIP_PROVIDER": "http", "GEOIP_HTTP_URL": "file:///etc/{ip}"}, "GEOIP_HTTP_URL"),
        ({"GEOIP_PROVIDER": "http", "GEOIP_HTTP_URL": "http:///{ip}"}, "GEOIP_HTTP_URL"),
        ({"GEOIP_PROVIDER": "http", "GEOIP_HTTP_URL": "http://x/json/"}, "GEOIP_HTTP_URL"),
        (
            {"GEOIP_PROVIDER": "http", "GEOIP_HTTP_URL": "http://x/{ip}", "GEOIP_HTTP_TIMEOUT": 0},
            "GEOIP_HTTP_TIMEOUT",
        ),
        (
            {"GEOIP_PROVIDER": "http", "GEOIP_HTTP_URL": "http://x/{ip}", "GEOIP_CACHE_SIZE": "x"},
            "GEOIP_CACHE_SIZE",
        ),
    ],
)
def test_bad_settings_raise_value_error(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        provider_from_config(config)


def test_init_app_stores_the_provider() -> None:
    app = Flask("geo_init")
    app.config["GEOIP_PROVIDER"] = "none"
    init_app(app)
    assert isinstance(app.extensions["geoip"], NoProvider)


def test_init_app_rejects_an_unknown_provider() -> None:
    app = Flask("geo_init")
    app.config["GEOIP_PROVIDER"] = "geoip2-web"
    with pytest.raises(ValueError, match="'geoip2-web'"):
        init_app(app)


def test_public_api_names() -> None:
    assert {"GeoData", "GeoProvider", "get_geodata", "init_app", "provider_from_config"} <= set(
        geo.__all__
    )


# --- the HTTP provider, with a fake opener --------------------------------------------------------


class FakeResponse(io.BytesIO):
    """Just enough of http.client.HTTPResponse."""

    def __init__(self, body: bytes, status: int = 200) -> None:
        super().__init__(body)
        self.status = status


class FakeOpener(urllib.request.OpenerDirector):
    """Answers every request with the same body and status, and remembers the URLs."""

    def __init__(self, body: str | bytes | Exception, status: int = 200) -> None:
        super().__init__()
        self.body = body
        self.status = status
        self.urls: list[str] = []
        self.timeouts: list[float | None] = []

    def open(self, fullurl: Any, data: Any = None, timeout: Any = None) -> Any:
        self.urls.append(fullurl.full_url)
        self.timeouts.append(timeout)
        if isinstance(self.body, Exception):
            raise self.body
        body = self.body.encode() if isinstance(self.body, str) else self.body
        return FakeResponse(body, self.status)


def http_provider(opener: FakeOpener, **kwargs: Any) -> HTTPProvider:
    return HTTPProvider("http://geo.invalid/json/{ip}?fields=all", opener=opener, **kwargs)


FREEGEOIP = {
    "ip": "8.8.8.8",
    "country_code": "US",
    "country_name": "United States",
    "region_code": "CA",
    "region_name": "California",
    "city": "Los Angeles",
    "zip_code": "90001",
    "time_zone": "America/Los_Angeles",
    "latitude": 34.05,
    "longitude": -118.25,
    "metro_code": 803,
}
IPAPI_CO = {
    "ip": "8.8.8.8",
    "city": "Los Angeles",
    "region": "California",
    "region_code": "CA",
    "country": "US",
    "country_name": "United States",
    "country_code": "US",
    "postal": "90001",
    "latitude": 34.05,
    "longitude": -118.25,
}
IP_API_COM = {
    "status": "success",
    "country": "United States",
    "countryCode": "US",
    "region": "CA",
    "regionName": "California",
    "city": "Los Angeles",
    "zip": "90001",
    "lat": 34.05,
    "lon": -118.25,
}


@pytest.mark.parametrize(
    "answer", [FREEGEOIP, IPAPI_CO, IP_API_COM], ids=["freegeoip", "ipapi", "ip-api"]
)
def test_http_provider_parses_common_services(answer: dict[str, Any]) -> None:
    opener = FakeOpener(json.dumps(answer))
    assert http_provider(opener, timeout=0.25).lookup("8.8.8.8") == LOS_ANGELES
    assert opener.urls == ["http://geo.invalid/json/8.8.8.8?fields=all"]
    assert opener.timeouts == [0.25]


def test_http_provider_puts_ipv6_addresses_in_the_url() -> None:
    opener = FakeOpener(json.dumps(FREEGEOIP))
    http_provider(opener).lookup("2001:4860:4860:0::8888")
    assert opener.urls == ["http://geo.invalid/json/2001:4860:4860::8888?fields=all"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            {"city": "", "zip_code": " ", "region_name": "", "country_code": "US"},
            GeoData(country_code="US"),
        ),
        (
            {"country_code": "US", "latitude": "34.05", "longitude": None},
            GeoData(country_code="US"),
        ),
        ({"country_code": "US", "latitude": True, "longitude": [1]}, GeoData(country_code="US")),
        ({"country_code": "US", "latitude": 91, "longitude": -181}, GeoData(country_code="US")),
        ({"latitude": 0, "longitude": 0}, GeoData(latitude=0.0, longitude=0.0)),
        ({"city": 42, "zip_code": 90001, "country_code": ["US"]}, None),
        ({"zip_code": "", "zip": "", "postal": "90001"}, GeoData(postal_code="90001")),
        ({}, None),
    ],
)
def test_http_answers_are_cleaned(answer: dict[str, Any], expected: GeoData | None) -> None:
    assert parse_answer(answer) == expected


def test_non_finite_coordinates_become_none() -> None:
    data = parse_answer(
        json.loads('{"country_code": "US", "latitude": NaN, "longitude": Infinity}')
    )
    assert data == GeoData(country_code="US")
    assert data is not None and data.latitude is None
    assert not math.isnan(data.longitude or 0.0)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("{not json", 200),
        ("[1, 2, 3]", 200),
        ('"Los Angeles"', 200),
        ("null", 200),
        ("", 204),
        (json.dumps(FREEGEOIP), 203),
        (b"\xff\xfe\xfa", 200),
        ("[" * 60_000, 200),  # nesting deeper than the recursion limit
        ('{"city": "' + "x" * 70_000 + '"}', 200),
        ('{"error": true, "reason": "RateLimited"}', 200),
        ('{"status": "fail", "message": "quota"}', 200),
        ('{"success": false, "error": {"code": 104}}', 200),
    ],
)
def test_http_provider_returns_none_for_bad_answers_and_does_not_cache_them(
    body: str | bytes, status: int, geo_log: list[logging.LogRecord]
) -> None:
    opener = FakeOpener(body, status)
    provider = http_provider(opener)
    assert provider.lookup("8.8.8.8") is None
    assert provider.lookup("8.8.8.8") is None
    assert len(opener.urls) == 2  # nothing cached
    assert [r.levelno for r in geo_log] == [logging.WARNING, logging.WARNING]
    assert not any(r.exc_info for r in geo_log)  # expected failures: no traceback


@pytest.mark.parametrize(
    "error",
    [
        urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")),
        TimeoutError("timed out"),
        urllib.error.HTTPError("http://geo.invalid/", 503, "Busy", Message(), io.BytesIO(b"")),
    ],
)
def test_http_provider_returns_none_when_the_request_fails(
    error: Exception, geo_log: list[logging.LogRecord]
) -> None:
    provider = http_provider(FakeOpener(error))
    assert provider.lookup("8.8.8.8") is None
    assert len(geo_log) == 1
    assert "8.8.8.8" not in geo_log[0].getMessage()


def test_http_provider_logs_unexpected_errors_with_a_traceback(
    geo_log: list[logging.LogRecord],
) -> None:
    provider = http_provider(FakeOpener(KeyError("surprise")))
    assert provider.lookup("8.8.8.8") is None
    assert geo_log[0].exc_info is not None


def test_http_provider_caches_answers_and_misses() -> None:
    opener = FakeOpener(json.dumps(FREEGEOIP))
    provider = http_provider(opener)
    assert provider.lookup("8.8.8.8") == LOS_ANGELES
    assert provider.lookup("::ffff:8.8.8.8") == LOS_ANGELES  # same canonical key
    opener.body = "{}"
    assert provider.lookup("1.1.1.1") is None
    assert provider.lookup("1.1.1.1") is None
    assert len(opener.urls) == 2


def test_http_cache_is_bounded() -> None:
    opener = FakeOpener(json.dumps(FREEGEOIP))
    provider = http_provider(opener, cache_size=2)
    for ip in ("8.8.8.8", "8.8.4.4", "1.1.1.1", "8.8.8.8"):
        provider.lookup(ip)
    assert len(opener.urls) == 4  # 8.8.8.8 was evicted by the third address


# --- the database provider, without the real database ---------------------------------------------


def test_database_records_are_mapped() -> None:
    record = {
        "city": {"names": {"en": "Los Angeles", "de": "Los Angeles"}},
        "postal": {"code": "90001"},
        "subdivisions": [{"iso_code": "CA", "names": {"en": "California"}}],
        "country": {"iso_code": "US", "names": {"en": "United States"}},
        "location": {"latitude": 34.05, "longitude": -118.25, "accuracy_radius": 5},
    }
    assert record_to_geodata(record) == LOS_ANGELES


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"country": {"iso_code": "US"}}, GeoData(country_code="US")),
        ({"subdivisions": [], "country": {"iso_code": "FR"}}, GeoData(country_code="FR")),
        (
            {"city": {"names": {"fr": "Londres"}}, "country": {"iso_code": "GB"}},
            GeoData(country_code="GB"),
        ),
        ({"continent": {"code": "EU"}}, None),
        ({"city": "Los Angeles", "location": [1, 2]}, None),
        (None, None),
        ("junk", None),
    ],
)
def test_partial_or_odd_database_records(record: Any, expected: GeoData | None) -> None:
    assert record_to_geodata(record) == expected


def test_a_corrupt_database_is_reported_once(
    tmp_path: Path, geo_log: list[logging.LogRecord]
) -> None:
    path = tmp_path / "broken.mmdb"
    path.write_bytes(b"this is not a MaxMind database" * 100)
    provider = MMDBProvider(str(path))
    assert provider.lookup("8.8.8.8") is None
    assert provider.lookup("8.8.4.4") is None
    assert len(geo_log) == 1
    assert "broken.mmdb" in geo_log[0].getMessage()
    provider.close()


def test_no_provider_knows_nothing() -> None:
    assert NoProvider().lookup("8.8.8.8") is None
