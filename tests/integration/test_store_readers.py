"""Dashboards read while the writer appends: a real `flask-tracking serve` (the supervisor owns
the event store and its writer appends to it; the Granian workers read it through the
supervisor's socket) under a stream of events, with reader threads loading dashboards.

No reader sees an error, an accepted event shows on the dashboard within 10 s and in the
realtime count within 5 s, and every acknowledged event is stored exactly once.
CONCURRENCY_SECONDS (default 15) sets how long the load runs; `make test-concurrency` runs it
longer.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import threading
import time
import zipfile
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from tests.servers import Load, Server, assert_exactly_once, leg_database

pytestmark = [
    pytest.mark.integration,
    pytest.mark.concurrency,
    pytest.mark.slow,
    pytest.mark.timeout(300),
]

SECONDS = float(os.environ.get("CONCURRENCY_SECONDS", "15"))
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)


def test_readers_see_new_events_while_the_writer_appends(tmp_path: Path) -> None:
    with leg_database() as database_url:
        # The load below is a flood (thousands of events a second from one site, on the CI's
        # two cores); at the default ROLLUP_INTERVAL (5 s) the dashboard showed a new event
        # after 9.2 s in one run, too near the 10 s promise to assert reliably, so today's
        # rows are refreshed every 2 s here.
        server = Server(tmp_path, database_url, ROLLUP_INTERVAL="2")
        server.prepare()
        token = secrets.token_urlsafe(24)
        server.sql(
            # min_visitors 1: the probe filters to one visitor's page (k-anonymity off)
            "INSERT INTO shared_links (site_id, name, token, created_at, embed_origins, "  # noqa: S608
            f"min_visitors) VALUES (1, 'readers', '{token}', '2026-01-01 00:00:00', '', 1)"
        )
        server.start()
        base = f"http://127.0.0.1:{server.port}"
        statuses: Counter[int] = Counter()
        errors: list[str] = []
        stop = threading.Event()

        def read_dashboards() -> None:
            session = requests.Session()
            views = ["period=today", "period=7d&filter=device:is:desktop", "period=30d"]
            while not stop.is_set():
                for view in views:
                    try:
                        response = session.get(f"{base}/share/{token}?{view}", timeout=60)
                    except requests.RequestException as error:
                        errors.append(f"{view}: {error}")
                        return
                    statuses[response.status_code] += 1
                    if response.status_code != 200:
                        errors.append(f"{view}: {response.status_code} {response.text[:200]!r}")

        readers = [threading.Thread(target=read_dashboards) for _ in range(3)]
        try:
            with Load(server.port, threads=2) as load:
                for reader in readers:
                    reader.start()
                time.sleep(min(SECONDS / 3, 5))  # the store is busy before the probe
                shown, realtime = probe(base, token)
                time.sleep(max(SECONDS - 5, 0))
                stop.set()
                for reader in readers:
                    reader.join(120)
            assert server.process is not None
            engine_loaded = {pid: maps_duckdb(pid) for pid in descendants(server.process.pid)}
            supervisor_loaded = maps_duckdb(server.process.pid)
            server.stop()
        finally:
            stop.set()
            server.kill_everything()
        print(
            f"dashboard reads: {dict(statuses)}; event shown after {shown:.1f} s, "
            f"in realtime after {realtime:.1f} s; {len(load.acknowledged)} events acknowledged"
        )
        assert not errors, errors[:5]
        assert statuses[200] >= 3
        assert shown <= 10, f"the event reached the dashboard after {shown:.1f} s"
        assert realtime <= 5, f"the event reached the realtime count after {realtime:.1f} s"
        assert_exactly_once(server, load)
        # The supervisor runs the engine; the web workers only compile statements for it
        # (events/sql.py's dialect), so DuckDB's library is never loaded into them.
        assert supervisor_loaded
        assert len(engine_loaded) >= 2, engine_loaded  # Granian and its workers
        assert not any(engine_loaded.values()), engine_loaded


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (its children, theirs, …), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def maps_duckdb(pid: int) -> bool:
    """Whether the process has DuckDB's native library mapped."""
    return "_duckdb" in Path(f"/proc/{pid}/maps").read_text()


def probe(base: str, token: str) -> tuple[float, float]:
    """Send one event from a new visitor; return the seconds until the realtime count and the
    dashboard (its page filtered to the event's page) show it."""
    path = f"/probe/{secrets.token_hex(4)}"
    before = requests.get(f"{base}/share/{token}/realtime", timeout=30).json()["visitors"]
    sent = time.monotonic()
    response = requests.post(
        f"{base}/api/event",
        data=json.dumps({"site": 1, "url": "https://demo.flask-tracking.example" + path}),
        headers={"Content-Type": "application/json", "User-Agent": SAFARI},
        timeout=30,
    )
    assert response.status_code == 202
    assert not response.headers.get("X-Tracking-Dropped")
    realtime = shown = None
    query = urlencode({"period": "today", "filter": f"page:is:{path}"})
    while time.monotonic() - sent < 30 and (realtime is None or shown is None):
        now = requests.get(f"{base}/share/{token}/realtime", timeout=30).json()["visitors"]
        if realtime is None and now > before:
            realtime = time.monotonic() - sent
        export = requests.get(f"{base}/share/{token}/export.zip?{query}", timeout=30)
        assert export.status_code == 200
        with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
            pages = archive.read("page.csv").decode("utf-8")
        if shown is None and path in pages:
            shown = time.monotonic() - sent
        time.sleep(0.2)
    assert realtime is not None, "the realtime count never showed the event"
    assert shown is not None, "the dashboard never showed the event"
    return shown, realtime
