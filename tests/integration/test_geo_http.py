"""The HTTP GeoIP provider against a real ThreadingHTTPServer on loopback."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask

from flask_tracking.geo import GeoData, get_geodata, provider_from_config
from flask_tracking.geo.providers import HTTPProvider
from flask_tracking.reports.export import StoredEvent

pytestmark = pytest.mark.integration

ANSWER = {
    "ip": "8.8.8.8",
    "city": "Los Angeles",
    "zip_code": "90001",
    "region_name": "California",
    "country_code": "US",
    "country_name": "United States",
    "latitude": 34.05,
    "longitude": -118.25,
}
SLOW_ANSWER_LIMIT = 5.0  # seconds a /slow/ request waits for the release event at most


@dataclass
class GeoServer:
    """A Free-GeoIP-like service: its base URL, the requests it saw, and the slow switch."""

    base_url: str = ""
    hits: Counter[str] = field(default_factory=Counter)  # route ("ok", "slow", ...) -> count
    paths: list[str] = field(default_factory=list)  # every request path, in order
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def template(self, route: str) -> str:
        """A GEOIP_HTTP_URL for one of the server's routes."""
        return f"{self.base_url}/{route}/{{ip}}"

    def provider(self, route: str, **settings: Any) -> HTTPProvider:
        """An HTTPProvider built from configuration, the way the app builds it."""
        config = {"GEOIP_PROVIDER": "http", "GEOIP_HTTP_URL": self.template(route), **settings}
        provider = provider_from_config(config)
        assert isinstance(provider, HTTPProvider)
        return provider


def _handler(server: GeoServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route = self.path.lstrip("/").split("/", 1)[0]
            with server.lock:
                server.hits[route] += 1
                server.paths.append(self.path)
            if route == "ok":
                self._send(200, json.dumps(ANSWER).encode())
            elif route == "slow":
                server.release.wait(SLOW_ANSWER_LIMIT)
                self._send(200, json.dumps(ANSWER).encode())
            elif route == "error":
                self._send(500, b'{"error": "internal server error"}')
            elif route == "garbage":
                self._send(200, b"not json{")
            elif route == "list":
                self._send(200, json.dumps([ANSWER]).encode())
            else:
                self._send(404, b"{}")

        def _send(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client stopped waiting (the timeout test): nobody to answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # no request lines on stderr

    return Handler


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback traffic must not go to a proxy."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def geo_server(no_proxy: None) -> Iterator[GeoServer]:
    """A real ThreadingHTTPServer on 127.0.0.1, on a port of its own, in a daemon thread."""
    state = GeoServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        state.release.set()  # let parked /slow/ handlers answer now, not in 5 s
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# --- the provider on its own -------------------------------------------------------------------


def test_a_successful_answer_maps_every_field(geo_server: GeoServer, los_angeles: GeoData) -> None:
    data = geo_server.provider("ok").lookup("8.8.8.8")
    assert data == los_angeles
    assert isinstance(data.latitude, float) and isinstance(data.longitude, float)
    assert data.location == "Los Angeles, 90001"
    assert geo_server.paths == ["/ok/8.8.8.8"]


def test_ipv6_and_mapped_addresses_reach_the_server_in_canonical_form(
    geo_server: GeoServer, los_angeles: GeoData
) -> None:
    provider = geo_server.provider("ok")
    assert provider.lookup("2001:4860:4860:0:0:0:0:8888") == los_angeles
    assert provider.lookup("::ffff:8.8.4.4") == los_angeles
    assert geo_server.paths == ["/ok/2001:4860:4860::8888", "/ok/8.8.4.4"]


def test_a_second_lookup_of_the_same_address_is_served_from_the_cache(
    geo_server: GeoServer, los_angeles: GeoData
) -> None:
    provider = geo_server.provider("ok")
    assert provider.lookup("8.8.8.8") == los_angeles
    assert provider.lookup("8.8.8.8") == los_angeles
    assert provider.lookup("::ffff:8.8.8.8") == los_angeles  # the same address, mapped
    assert geo_server.hits["ok"] == 1
    assert provider.lookup("8.8.4.4") == los_angeles  # another address is asked for
    assert geo_server.hits["ok"] == 2


def test_a_slow_service_times_out_quickly_and_the_miss_is_not_cached(
    geo_server: GeoServer, geo_log: list[logging.LogRecord], los_angeles: GeoData
) -> None:
    provider = geo_server.provider("slow", GEOIP_HTTP_TIMEOUT=0.2)
    started = time.monotonic()
    assert provider.lookup("8.8.8.8") is None
    assert time.monotonic() - started < 2.0
    assert geo_server.hits["slow"] == 1
    [record] = geo_log
    assert record.levelno == logging.WARNING
    assert "timed out" in record.getMessage()
    assert "8.8.8.8" not in record.getMessage()
    # Once the service answers promptly, the same address is asked for again and found.
    geo_server.release.set()
    assert provider.lookup("8.8.8.8") == los_angeles
    assert geo_server.hits["slow"] == 2


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        ("error", "HTTP status 500"),
        ("garbage", "JSONDecodeError"),
        ("list", "not an object"),
    ],
    ids=["server-error", "malformed-json", "json-array"],
)
def test_a_bad_answer_gives_none_and_is_not_cached(
    geo_server: GeoServer, geo_log: list[logging.LogRecord], route: str, reason: str
) -> None:
    provider = geo_server.provider(route)
    assert provider.lookup("8.8.8.8") is None
    assert provider.lookup("8.8.8.8") is None
    assert geo_server.hits[route] == 2
    assert [r.levelno for r in geo_log] == [logging.WARNING, logging.WARNING]
    assert reason in geo_log[0].getMessage()
    assert not geo_log[0].exc_info  # an expected failure: no traceback
    assert "8.8.8.8" not in geo_log[0].getMessage()


@pytest.mark.usefixtures("no_proxy")
def test_a_refused_connection_gives_none(
    unused_port: int, geo_log: list[logging.LogRecord]
) -> None:
    provider = provider_from_config(
        {"GEOIP_PROVIDER": "http", "GEOIP_HTTP_URL": f"http://127.0.0.1:{unused_port}/{{ip}}"}
    )
    started = time.monotonic()
    assert provider.lookup("8.8.8.8") is None
    assert time.monotonic() - started < 2.0
    [record] = geo_log
    assert record.levelno == logging.WARNING
    assert "refused" in record.getMessage().lower()


def test_non_public_addresses_never_reach_the_server(geo_server: GeoServer) -> None:
    provider = geo_server.provider("ok")
    for ip in ("10.0.0.1", "192.168.1.1", "127.0.0.1", "::1", "fe80::1%eth0", "2001:db8::1"):
        assert provider.lookup(ip) is None
    assert geo_server.paths == []


# --- through the app ---------------------------------------------------------------------------


@pytest.fixture
def visit_located_by(
    geo_server: GeoServer, app_factory: Any, site_in: Any, visits_in: Any
) -> Callable[[str], tuple[Flask, StoredEvent]]:
    """visit_located_by(route): an app whose geo service is that route of geo_server, and the
    one visit from 8.8.8.8 it stored."""

    def record(route: str) -> tuple[Flask, StoredEvent]:
        app = app_factory(GEOIP_PROVIDER="http", GEOIP_HTTP_URL=geo_server.template(route))
        response = app.test_client().get(
            f"/sites/{site_in(app)}/visit?url=https://example.com/",
            environ_base={"REMOTE_ADDR": "8.8.8.8"},
        )
        assert response.status_code == 204
        [visit] = visits_in(app)
        return app, visit

    return record


def test_a_visit_is_located_through_the_http_service(
    geo_server: GeoServer, visit_located_by: Any, los_angeles: GeoData
) -> None:
    app, visit = visit_located_by("ok")
    assert visit.city == "Los Angeles"
    assert visit.location == "Los Angeles, 90001"
    assert (visit.region, visit.country_code, visit.country_name) == (
        "California",
        "US",
        "United States",
    )
    assert (visit.latitude, visit.longitude) == (34.05, -118.25)
    assert geo_server.paths == ["/ok/8.8.8.8"]
    with app.app_context():
        assert get_geodata("8.8.8.8") == los_angeles  # cached by the app's provider
    assert geo_server.hits["ok"] == 1


def test_a_failing_service_still_stores_the_visit_without_a_location(
    geo_server: GeoServer, visit_located_by: Any
) -> None:
    _, visit = visit_located_by("error")
    assert visit.url == "https://example.com/"
    assert visit.location == ""
    assert (visit.city, visit.country_code, visit.latitude) == (None, None, None)
    assert geo_server.hits["error"] == 1
