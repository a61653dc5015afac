"""Fast unit tests for flask_tracking.geo: GeoData, address filtering, get_geodata, config."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import maxminddb
import pytest
from flask import Flask

from flask_tracking.geo import GeoData, get_geodata, provider_from_config, public_address
from flask_tracking.geo.providers import HTTPProvider, MMDBProvider, NoProvider
from flask_tracking.geo.service import parse_answer

LOS_ANGELES = GeoData(city="Los Angeles", postal_code="90001", country_code="US")


class CountingProvider:
    """A fake provider that remembers every address it was asked about."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def lookup(self, ip: str) -> GeoData | None:
        self.calls.append(ip)
        return LOS_ANGELES


class ExplodingProvider:
    """A fake provider with a bug in it."""

    def __init__(self) -> None:
        self.calls = 0

    def lookup(self, ip: str) -> GeoData | None:
        self.calls += 1
        raise RuntimeError("provider exploded")


# --- GeoData.location --------------------------------------------------------------------------


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


def test_location_of_an_empty_record_is_the_empty_string() -> None:
    assert GeoData().location == ""


# --- public_address ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("8.8.8.8", "8.8.8.8"),
        ("81.2.69.142", "81.2.69.142"),
        ("172.32.0.1", "172.32.0.1"),  # just outside 172.16.0.0/12
        ("2001:4860:4860::8888", "2001:4860:4860::8888"),
        ("2a02:c7f:2003::1", "2a02:c7f:2003::1"),
        ("2001:4860:4860:0:0:0:0:8888", "2001:4860:4860::8888"),  # canonical form
        (" 8.8.4.4\n", "8.8.4.4"),
        ("::ffff:8.8.8.8", "8.8.8.8"),  # IPv4-mapped IPv6 is looked up as IPv4
        ("::FFFF:808:808", "8.8.8.8"),
    ],
)
def test_public_addresses_are_kept(ip: str, expected: str) -> None:
    assert public_address(ip) == expected


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
    pytest.param("2001:db8::1", id="documentation-v6"),
    pytest.param("2001:db8:ffff::1", id="documentation-v6-top"),
    pytest.param("203.0.113.7", id="documentation-test-net-3"),
    pytest.param("192.0.2.1", id="documentation-test-net-1"),
    pytest.param("198.51.100.1", id="documentation-test-net-2"),
    pytest.param("fc00::1", id="unique-local"),
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


@pytest.mark.parametrize("ip", [*NOT_PUBLIC, *MALFORMED])
def test_private_reserved_and_malformed_addresses_are_refused(ip: Any) -> None:
    assert public_address(ip) is None


# --- get_geodata -------------------------------------------------------------------------------


def test_get_geodata_never_asks_the_provider_about_non_public_addresses(app: Flask) -> None:
    provider = CountingProvider()
    app.extensions["geoip"] = provider
    with app.app_context():
        for param in [*NOT_PUBLIC, *MALFORMED]:
            [ip] = param.values
            assert get_geodata(ip) is None, ip  # type: ignore[arg-type]
        assert provider.calls == []
        # The same fake does get asked about a public address, in canonical form.
        assert get_geodata("::ffff:8.8.8.8") == LOS_ANGELES
    assert provider.calls == ["8.8.8.8"]


def test_get_geodata_returns_none_and_logs_when_the_provider_raises(
    app: Flask, geo_log: list[logging.LogRecord]
) -> None:
    provider = ExplodingProvider()
    app.extensions["geoip"] = provider
    with app.app_context():
        assert get_geodata("8.8.8.8") is None
    assert provider.calls == 1
    [record] = geo_log
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
    assert "8.8.8.8" not in record.getMessage()  # visitor addresses stay out of the log


def test_get_geodata_without_an_app_context_returns_none(
    geo_log: list[logging.LogRecord],
) -> None:
    assert get_geodata("8.8.8.8") is None
    assert len(geo_log) == 1


def test_the_test_configuration_turns_geolocation_off(app: Flask) -> None:
    assert isinstance(app.extensions["geoip"], NoProvider)
    with app.app_context():
        assert get_geodata("8.8.8.8") is None


# --- provider_from_config ----------------------------------------------------------------------

HTTP_URL = "http://127.0.0.1:8080/json/{ip}"


@pytest.mark.parametrize(
    ("config", "kind"),
    [
        ({}, MMDBProvider),
        ({"GEOIP_PROVIDER": None}, MMDBProvider),
        ({"GEOIP_PROVIDER": "mmdb"}, MMDBProvider),
        ({"GEOIP_PROVIDER": " MMDB "}, MMDBProvider),
        ({"GEOIP_PROVIDER": "http", "GEOIP_HTTP_URL": HTTP_URL}, HTTPProvider),
        ({"GEOIP_PROVIDER": "HTTP", "GEOIP_HTTP_URL": HTTP_URL}, HTTPProvider),
        ({"GEOIP_PROVIDER": "none"}, NoProvider),
        ({"GEOIP_PROVIDER": "None"}, NoProvider),
    ],
)
def test_provider_from_config_selects_each_provider(config: dict[str, Any], kind: type) -> None:
    assert type(provider_from_config(config)) is kind


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


@pytest.mark.parametrize("name", ["bogus", "maxmind", "", " ", 3, True])
def test_an_unknown_provider_raises_naming_the_choices(name: Any) -> None:
    if name == "":  # an empty setting means "the default", like an unset one
        assert isinstance(provider_from_config({"GEOIP_PROVIDER": name}), MMDBProvider)
        return
    with pytest.raises(ValueError, match="GEOIP_PROVIDER") as raised:
        provider_from_config({"GEOIP_PROVIDER": name})
    for choice in ("mmdb", "http", "none"):
        assert choice in str(raised.value)
    assert repr(name) in str(raised.value)


def test_creating_an_app_with_an_unknown_provider_fails(app_factory: Any) -> None:
    with pytest.raises(ValueError, match=r"GEOIP_PROVIDER must be one of mmdb, http, none"):
        app_factory(GEOIP_PROVIDER="bogus")


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


# --- HTTPProvider URL templates ----------------------------------------------------------------


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


def test_an_absurdly_large_coordinate_is_dropped_not_raised() -> None:
    # JSON integers have no size limit; float() of a 400-digit one raises OverflowError.
    answer = {"city": "Los Angeles", "latitude": 10**400, "longitude": -118.25}
    assert parse_answer(answer) == GeoData(city="Los Angeles", longitude=-118.25)


# --- MMDBProvider with a fake reader -----------------------------------------------------------


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
