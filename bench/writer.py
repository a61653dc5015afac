"""The writer in one process: CPU per event to store the realistic mix, and to refresh the open
day's marks, chunk after chunk as the day fills.

`make bench-ingest` measures the writer inside the server, where it shares two cores with the
workers and wrk; this isolates it. Events of the realistic mix (bench/traffic.py) stamped over
the last hours of today are spooled as the collector spools them, then the writer stores them
a chunk at a time (`--chunk`, what arrives in one `ROLLUP_INTERVAL` at that rate), each chunk
followed by the refresh the writer runs every `ROLLUP_INTERVAL`. Enrichment is real (the
GeoLite2 file the dashboard bench uses). Reported per chunk and in total: process CPU per
event for storing and for refreshing (DuckDB's own threads included).

    .venv/bin/python bench/writer.py                    # 600,000 events in chunks of 60,000
    .venv/bin/python bench/writer.py --events 1000000 --chunk 75000
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import generate, traffic  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=600_000, help="events in all (600,000)")
    parser.add_argument("--chunk", type=int, default=60_000, help="events per refresh (60,000)")
    parser.add_argument(
        "--refresh-every", type=int, default=1, help="refresh after this many chunks (1)"
    )
    parser.add_argument("--seed", type=int, default=1, help="the traffic's seed (1)")
    args = parser.parse_args(argv)

    from flask_tracking.events import current_store
    from flask_tracking.ingest.records import EventRecord

    with tempfile.TemporaryDirectory(prefix="bench-writer-") as work:
        app = generate.make_app(
            f"sqlite:///{work}/app.db", f"duckdb:///{work}/events.duckdb", f"{work}/spool"
        )
        with app.app_context():
            today = datetime.now(UTC)
            settings = generate.Settings(
                args.events, 1, traffic.PATHS, args.seed, "UTC", today.date()
            )
            site_id = generate.prepare_site(settings, replace=False, start=today)
        ingest = app.extensions["ingest"]
        # The refresh runs here after each chunk, not within the drain on its own clock.
        ingest.writer.settings = dataclasses.replace(
            ingest.writer.settings, rollup_interval=float("inf")
        )
        # Today's events, in order, over the last three hours (or since midnight).
        now = datetime.now(UTC).timestamp() * 1000
        midnight = now - now % 86_400_000
        first = max(midnight + 60_000, now - 3 * 3_600_000)
        span = max(now - 60_000 - first, 1.0)
        requests = list(traffic.requests(site_id, args.events, args.seed))
        stored_us, refresh_us = [], []
        for start in range(0, args.events, args.chunk):
            chunk = requests[start : start + args.chunk]
            for number, (address, agent, _content_type, body) in enumerate(chunk, start):
                fields = orjson.loads(body)
                record = EventRecord(
                    event_id=uuid.uuid4().hex,
                    site_id=site_id,
                    timestamp_ms=int(first + span * number / args.events),
                    name=fields["name"],
                    url=fields["url"],
                    referrer=fields.get("referrer"),
                    width=fields.get("width"),
                    props=fields.get("props") or {},
                    ip=address,
                    user_agent=agent,
                )
                ingest.spool.append(record.to_line())
            with app.app_context():
                store = current_store()
                began = time.process_time()
                ingest.writer.drain(refresh=False)
                stored = time.process_time()
                if (start // args.chunk + 1) % args.refresh_every == 0:
                    store.refresh()
                refreshed = time.process_time()
            stored_us.append(1e6 * (stored - began) / len(chunk))
            refresh_us.append(1e6 * (refreshed - stored) / len(chunk))
            print(
                f"{start + len(chunk):>10,} events: store {stored_us[-1]:5.1f} µs/event, "
                f"refresh {refresh_us[-1]:5.1f} µs/event",
                flush=True,
            )
        total_store = sum(u * len(requests[i * args.chunk : (i + 1) * args.chunk])
                          for i, u in enumerate(stored_us)) / args.events  # fmt: skip
        total_refresh = sum(u * len(requests[i * args.chunk : (i + 1) * args.chunk])
                            for i, u in enumerate(refresh_us)) / args.events  # fmt: skip
        print(
            f"all {args.events:,} events: store {total_store:.1f} µs/event, refresh "
            f"{total_refresh:.1f} µs/event (first refresh marks everything; later ones: median "
            f"{statistics.median(refresh_us[1:] or refresh_us):.1f})"
        )


if __name__ == "__main__":
    main()
