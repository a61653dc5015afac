"""Fixtures for integration tests: a real Free-GeoIP-like HTTP server on loopback."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

LOS_ANGELES_ANSWER = {
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


@dataclass
class FakeGeoService:
    """What the test server has seen, and the switch that lets slow requests finish."""

    base_url: str = ""
    hits: Counter[str] = field(default_factory=Counter)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, mode: str) -> str:
        """A GEOIP_HTTP_URL template for one of the server's behaviours."""
        return f"{self.base_url}/{mode}/{{ip}}"


def _handler_for(service: FakeGeoService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            mode = self.path.strip("/").split("/", 1)[0]
            service.hits[mode] += 1
            if mode == "ok":
                self._answer(200, json.dumps(LOS_ANGELES_ANSWER).encode())
            elif mode == "slow":
                service.release.wait(timeout=10)
                self._answer(200, json.dumps(LOS_ANGELES_ANSWER).encode())
            elif mode == "error":
                self._answer(500, b'{"error": "internal"}')
            elif mode == "garbage":
                self._answer(200, b'{"city": "Los Angeles", ')
            else:
                self._answer(404, b"{}")

        def _answer(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting, which is what the slow test wants

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep the test output clean

    return Handler


@pytest.fixture
def geo_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGeoService]:
    """A ThreadingHTTPServer on 127.0.0.1 with /ok, /slow, /error and /garbage endpoints."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)  # loopback must not go through a proxy
    service = FakeGeoService()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(service))
    service.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield service
    finally:
        service.release.set()  # let a parked slow request finish so shutdown is quick
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def geo_log() -> Iterator[list[logging.LogRecord]]:
    """Records logged by flask_tracking.geo at WARNING and above."""
    # Listen on the geo logger itself: a created app stops "flask_tracking" propagating.
    logger = logging.getLogger("flask_tracking.geo")
    handler = _ListHandler()
    saved_level = logger.level
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(saved_level)
