"""The HTTP GeoIP provider against a real HTTP server on loopback."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import pytest
from flask import Flask

from flask_tracking.geo import GeoData, get_geodata, init_app, provider_from_config

pytestmark = pytest.mark.integration

LOS_ANGELES = GeoData(
    city="Los Angeles",
    postal_code="90001",
    region="California",
    country_code="US",
    country_name="United States",
    latitude=34.05,
    longitude=-118.25,
)


def http_provider(url: str, **settings: Any) -> Any:
    return provider_from_config({"GEOIP_PROVIDER": "http", "GEOIP_HTTP_URL": url, **settings})


def test_a_successful_answer_is_parsed(geo_service: Any) -> None:
    provider = http_provider(geo_service.url("ok"))
    data = provider.lookup("8.8.8.8")
    assert data == LOS_ANGELES
    assert data.location == "Los Angeles, 90001"


def test_answers_are_cached(geo_service: Any) -> None:
    provider = http_provider(geo_service.url("ok"))
    assert provider.lookup("8.8.8.8") == LOS_ANGELES
    assert provider.lookup("8.8.8.8") == LOS_ANGELES
    assert geo_service.hits["ok"] == 1
    assert provider.lookup("2001:4860:4860::8888") == LOS_ANGELES  # IPv6 in the URL path
    assert geo_service.hits["ok"] == 2


def test_a_slow_service_times_out_quickly(
    geo_service: Any, geo_log: list[logging.LogRecord]
) -> None:
    provider = http_provider(geo_service.url("slow"), GEOIP_HTTP_TIMEOUT=0.2)
    started = time.monotonic()
    assert provider.lookup("8.8.8.8") is None
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 1.0
    assert geo_service.hits["slow"] == 1
    assert "timed out" in geo_log[0].getMessage()


def test_a_timeout_is_not_cached(geo_service: Any) -> None:
    provider = http_provider(geo_service.url("slow"), GEOIP_HTTP_TIMEOUT=0.2)
    assert provider.lookup("8.8.8.8") is None
    assert provider.lookup("8.8.8.8") is None
    assert geo_service.hits["slow"] == 2


@pytest.mark.parametrize(("mode", "reason"), [("error", "500"), ("garbage", "JSONDecodeError")])
def test_server_errors_and_malformed_json_give_none_uncached(
    geo_service: Any, geo_log: list[logging.LogRecord], mode: str, reason: str
) -> None:
    provider = http_provider(geo_service.url(mode))
    assert provider.lookup("8.8.8.8") is None
    assert provider.lookup("8.8.8.8") is None
    assert geo_service.hits[mode] == 2
    assert [r.levelno for r in geo_log] == [logging.WARNING] * 2
    assert reason in geo_log[0].getMessage()
    assert "8.8.8.8" not in geo_log[0].getMessage()


def test_a_refused_connection_gives_none(geo_log: list[logging.LogRecord]) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago has no listener now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = http_provider(f"http://127.0.0.1:{port}/json/{{ip}}")
    assert provider.lookup("8.8.8.8") is None
    assert len(geo_log) == 1


def test_private_addresses_never_reach_the_server(geo_service: Any) -> None:
    provider = http_provider(geo_service.url("ok"))
    for ip in ("10.0.0.1", "127.0.0.1", "::1", "fe80::1", "203.0.113.7", "junk"):
        assert provider.lookup(ip) is None
    assert sum(geo_service.hits.values()) == 0


def test_get_geodata_through_an_app(geo_service: Any) -> None:
    app = Flask("geo_http_integration")
    app.config.update(GEOIP_PROVIDER="http", GEOIP_HTTP_URL=geo_service.url("ok"))
    init_app(app)
    with app.app_context():
        assert get_geodata("::ffff:8.8.8.8") == LOS_ANGELES
        assert get_geodata("192.168.0.10") is None
    assert geo_service.hits["ok"] == 1
