"""Measure the API's raw export over generated data: speed, and memory that does not grow.

    .venv/bin/python bench/export.py --database-url sqlite:///bench/data/events-1m.db

For periods of growing size ending at the data's last day (7 days, 30 days, 12 months) it
downloads /api/v1/sites/<id>/export as NDJSON and as CSV, and pages through
/api/v1/sites/<id>/events 1000 at a time, through the whole Flask stack with a real API key,
each in a fresh process, and reports:

* events and bytes received, and events per second (median of --runs);
* the process's peak resident memory (ru_maxrss) after the app is up and after the download,
  and the difference: what the download itself held. A streamed export holds one keyset page
  (2000 rows) at a time, so the difference stays flat while the period grows ~50 times.

Data comes from bench/generate.py (the SQL database and the event store beside it, or
--events-url). The database is migrated first (for the api_keys table);
the only row written is an API key for the benchmark user, deleted after each run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from dashboard import default_events_url  # noqa: E402  (bench/dashboard.py)
from flask_migrate import upgrade  # noqa: E402
from generate import resolve_events, resolve_sqlite  # noqa: E402  (bench/generate.py)

from flask_tracking.extensions import db  # noqa: E402
from flask_tracking.reports.ranges import as_utc  # noqa: E402
from flask_tracking.users import apikeys  # noqa: E402
from flask_tracking.users.models import User  # noqa: E402

PERIODS = {"7 days": 6, "30 days": 29, "12 months": 364}
KINDS = ("ndjson", "csv", "pages")


def peak_mib() -> float:
    """Return this process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def app_for(database_url: str, events_url: str) -> Any:
    """A production-like app on the generated databases (no writer thread)."""
    from flask_tracking import create_app
    from flask_tracking.config import BaseConfiguration

    settings = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "EVENTS_DATABASE_URL": events_url,
        "SECRET_KEY": "bench-" + "x" * 40,
        "INGEST_WRITER": "off",
        "LOG_LEVEL": "WARNING",
        "RATELIMIT_ENABLED": False,
    }
    return create_app(type("BenchConfig", (BaseConfiguration,), settings))


def site_of(app: Any) -> tuple[int, int, Any]:
    """Return (site id, owner id, the last event's moment) of the bench site."""
    from datetime import datetime

    from sqlalchemy import func, select

    from flask_tracking.events import current_store
    from flask_tracking.events.tables import tables
    from flask_tracking.tracking.models import Site

    with app.app_context():
        site = db.session.get(Site, db.session.scalar(select(func.min(Site.id))))
        if site is None:
            raise SystemExit("no site: run bench/generate.py first")
        e = tables("duckdb").all_events.c
        (last,) = current_store().fetch(select(func.max(e.ts)).where(e.site_id == site.id))[0]
        if last is None:
            raise SystemExit("the site has no events")
        return site.id, site.owner_id, datetime.fromtimestamp(last / 1000, UTC)


def one(database_url: str, events_url: str, days: int, kind: str) -> dict[str, Any]:
    """Download one period one way in this process; return what it measured."""
    app = app_for(database_url, events_url)
    site_id, owner_id, last = site_of(app)
    with app.app_context():
        owner = db.session.get(User, owner_id)
        assert owner is not None
        _key, secret = apikeys.create_key(owner, "bench-export", apikeys.READ)
    headers = {"Authorization": f"Bearer {secret}"}
    end = as_utc(last).date()
    span = {"period": "custom", "from": str(end - timedelta(days=days)), "to": str(end)}
    client = app.test_client()
    client.get("/api/v1/sites", headers=headers)  # warm: app, engine, first queries
    before = peak_mib()
    started = time.perf_counter()
    events = size = 0
    if kind == "pages":
        query: dict[str, Any] = {**span, "limit": 1000}
        while True:
            answer = client.get(
                f"/api/v1/sites/{site_id}/events", query_string=query, headers=headers
            )
            assert answer.status_code == 200, answer.get_data(as_text=True)
            body = answer.get_json()
            events += len(body["data"])
            size += len(answer.data)
            if body["next_cursor"] is None:
                break
            query["cursor"] = body["next_cursor"]
    else:
        answer = client.get(
            f"/api/v1/sites/{site_id}/export",
            query_string={**span, "format": kind},
            headers=headers,
            buffered=False,
        )
        assert answer.status_code == 200
        for chunk in answer.response:
            data = chunk if isinstance(chunk, bytes) else chunk.encode()
            size += len(data)
            events += data.count(b"\n")
        answer.close()
        events -= kind == "csv"  # the header row (CRLF rows: one \n each)
    seconds = time.perf_counter() - started
    with app.app_context():
        key = apikeys.find_key(secret)
        assert key is not None
        db.session.delete(key)
        db.session.commit()
    return {
        "events": events,
        "bytes": size,
        "seconds": seconds,
        "peak_before_mib": before,
        "peak_after_mib": peak_mib(),
    }


def measure(database_url: str, events_url: str, days: int, kind: str, runs: int) -> dict[str, Any]:
    """Run `one` in fresh processes; return the medians."""
    results = []
    for _ in range(runs):
        output = subprocess.run(
            [
                sys.executable,
                __file__,
                "--database-url",
                database_url,
                "--events-url",
                events_url,
                "--one",
                f"{days}:{kind}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
    median = {key: statistics.median(r[key] for r in results) for key in results[0]}
    median["held_mib"] = statistics.median(
        r["peak_after_mib"] - r["peak_before_mib"] for r in results
    )
    return median


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--events-url", help="default: the .duckdb file beside an SQLite database")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    url = resolve_sqlite(args.database_url)
    events_url = resolve_events(args.events_url or default_events_url(url))
    if args.one:
        days, kind = args.one.split(":")
        print(json.dumps(one(url, events_url, int(days), kind)))
        return
    with app_for(url, events_url).app_context():
        upgrade()  # a database generated before the api_keys table existed gets it
    cores = os.cpu_count()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    print(
        f"machine: {cores} cores, {memory:.0f} GiB, {platform.python_implementation()} "
        f"{platform.python_version()}; {args.runs} runs each, medians; {datetime_now()}"
    )
    print(
        "| period | kind | events | MB | seconds | events/s | peak RSS after app (MiB) "
        "| held by the download (MiB) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, days in PERIODS.items():
        for kind in KINDS:
            m = measure(url, events_url, days, kind, args.runs)
            print(
                f"| {label} | {kind} | {m['events']:,.0f} | {m['bytes'] / 1e6:,.1f} "
                f"| {m['seconds']:.2f} | {m['events'] / m['seconds']:,.0f} "
                f"| {m['peak_before_mib']:.0f} | {m['held_mib']:.1f} |",
                flush=True,
            )


def datetime_now() -> str:
    from datetime import datetime

    return datetime.now(UTC).strftime("%Y-%m-%d")


if __name__ == "__main__":
    main()
