"""/metrics of a real `flask-tracking serve` (two Granian workers and the writer process):
every process's counts, added up, whichever worker answers the scrape."""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import Load, Server, leg_database

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]
TOKEN = "served-metrics-token"
EVENTS = 300


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with leg_database() as url:
        instance = Server(tmp_path, database_url=url, METRICS_ENABLED="true", METRICS_TOKEN=TOKEN)
        instance.prepare()
        try:
            instance.start()
            yield instance
        finally:
            instance.kill_everything()


def scrape(server: Server) -> dict[str, float]:
    """The unlabelled samples and /api/event's 202 count, from one scrape."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        assert response.status == 200
        text = response.read().decode()
    finally:
        connection.close()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.labels:
                found[sample.name] = sample.value
            elif sample.labels == {"route": "/api/event", "method": "POST", "status": "202"}:
                found["event_requests"] = found.get("event_requests", 0) + sample.value
    return found


def test_every_process_counts_and_one_scrape_adds_them_up(server: Server) -> None:
    load = Load(server.port, threads=0)
    load.send(EVENTS)
    assert len(load.acknowledged) == EVENTS
    deadline = time.monotonic() + 20
    while True:
        seen = scrape(server)
        done = (
            seen.get("flask_tracking_events_accepted_total") == EVENTS
            and seen.get("event_requests") == EVENTS
            and seen.get("flask_tracking_events_stored_total", 0) >= EVENTS
        )
        if done:
            break
        assert time.monotonic() < deadline, f"the counts never added up: {seen}"
        time.sleep(0.3)
    # Stored by the writer (the supervising process), read by a worker: the files were shared.
    assert len(server.stored_paths()) == EVENTS
    assert (
        seen["flask_tracking_writer_batch_events_sum"] == seen["flask_tracking_events_stored_total"]
    )
    assert seen["flask_tracking_writer_heartbeat_age_seconds"] < 10
    files = sorted(path.name for path in (server.root / "metrics").glob("*.db"))
    assert len({name.rsplit("_", 1)[1] for name in files}) >= 2, files  # several processes


def test_doctor_notices_a_proxy_the_settings_do_not_know_of(server: Server) -> None:
    for _ in range(3):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("GET", "/login/", headers={"X-Forwarded-For": "198.51.100.7"})
        assert connection.getresponse().status == 200
        connection.close()
    deadline = time.monotonic() + 10
    while True:
        said = server.command("doctor")  # exit status 0: warnings only
        proxy = next(line for line in said.splitlines() if line.split()[1] == "proxy")
        if "PROXY_COUNT=0" in proxy:
            break
        assert time.monotonic() < deadline, said
        time.sleep(0.5)  # the workers hand their counts over once a second
    assert proxy.startswith("WARN")
    # Three through the "proxy"; the server's start was checked with a plain request or so.
    assert re.search(r"\b3 of [4-9] requests came through a proxy", proxy), proxy
    assert "FLASK_TRACKING_PROXY_COUNT" in proxy
