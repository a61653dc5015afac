"""Through a real `flask-tracking serve`: a few seconds after an event is stored, no copy of the
visitor's raw address is left in the spool, however quiet the site."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

import pytest

from tests.servers import FIREFOX, Server

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]

ADDRESSES = ("81.2.69.142", "2a02:c7f:1234:5678:9abc:def0:1234:5678")


def test_raw_addresses_leave_the_spool_seconds_after_they_are_stored(tmp_path: Path) -> None:
    server = Server(tmp_path, PROXY_COUNT="1")
    try:
        server.prepare()
        server.start()
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for number, address in enumerate(ADDRESSES):
            body = json.dumps({"site": 1, "url": f"https://demo.flask-tracking.example/p/{number}"})
            connection.request(
                "POST",
                "/api/event",
                body,
                {
                    "Content-Type": "application/json",
                    "User-Agent": FIREFOX,
                    "X-Forwarded-For": address,
                },
            )
            response = connection.getresponse()
            response.read()
            assert response.status == 202
            assert response.getheader("X-Tracking-Dropped") is None
        connection.close()
        spool = tmp_path / "spool"
        deadline = time.monotonic() + 20
        while len(server.store("SELECT eid FROM recent UNION ALL SELECT eid FROM events")) < 2:
            assert time.monotonic() < deadline, "the events were not stored"
            time.sleep(0.1)
        stored_at = time.monotonic()
        # Nothing else arrives: the quiet workers' segments must still go within seconds.
        while True:
            held = [
                path.name
                for path in spool.iterdir()
                if path.is_file() and any(a.encode() in path.read_bytes() for a in ADDRESSES)
            ]
            if not held:
                break
            assert time.monotonic() - stored_at < 6, f"raw addresses still in the spool: {held}"
            time.sleep(0.1)
        # The process was quiet all along, and is still serving.
        assert server.process is not None and server.process.poll() is None
    finally:
        server.kill_everything()
