"""Time the full dashboard page over generated data, against DuckDB on the same raw events.

    .venv/bin/python bench/dashboard.py --database-url sqlite:///bench/data/events-1m.db

For 7 days, 30 days and 12 months ending at the data's last day, unfiltered and with one and
two filters, it requests /sites/<id> through the whole Flask stack (every panel, the chart,
the map and the template, as a browser asks for the page) and reports:

* hot: the median of --runs requests after one warm-up;
* cold: the first request of a freshly started process (a new app, engine and connection
  pool; the OS page cache is dropped first when this process may do so, i.e. as root);
* DuckDB: the same aggregates computed by bench/duckdb_reference.py over the same raw events
  in an in-memory DuckDB (median of --runs), and our time's ratio to it.

With --rebuild it also times `rollups.rebuild()` of the site. Data comes from
bench/generate.py; nothing here writes to the database except the rebuild.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from generate import resolve_sqlite  # noqa: E402  (bench/generate.py)
from sqlalchemy import func, select  # noqa: E402

from flask_tracking import create_app  # noqa: E402
from flask_tracking.config import BaseConfiguration  # noqa: E402
from flask_tracking.extensions import db  # noqa: E402
from flask_tracking.tracking.models import Site, Visit  # noqa: E402

RANGES = (("7d", "7d"), ("30d", "30d"), ("12mo", "12mo"))
FILTER_SETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("unfiltered", ()),
    ("1 filter", ("country:is:US",)),
    ("2 filters", ("country:is:US", "device:is:mobile")),
)
# The same filters for DuckDB, by column.
DUCK_FILTERS = {
    "country:is:US": ("country_code", "is", "US"),
    "device:is:mobile": ("device", "is", "mobile"),
}


def app_for(database_url: str) -> Any:
    """Return a production-like app on the benchmark database (no writer thread)."""
    settings = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "bench-" + "x" * 40,
        "INGEST_WRITER": "off",
        "LOG_LEVEL": "WARNING",
        "RATELIMIT_ENABLED": False,
    }
    return create_app(type("BenchConfig", (BaseConfiguration,), settings))


def site_of(app: Any, site_id: int | None) -> tuple[int, int, str, datetime]:
    """Return (site id, owner id, zone, the data's last event) of the benchmark site."""
    with app.app_context():
        if site_id is None:
            site_id = db.session.scalar(select(func.min(Site.id)))
        site = db.session.get(Site, site_id)
        if site is None:
            raise SystemExit("no site: run bench/generate.py first")
        last = db.session.scalar(select(func.max(Visit.date)).where(Visit.site_id == site.id))
        if last is None:
            raise SystemExit("the site has no visits")
        last = last.replace(tzinfo=UTC) if last.tzinfo is None else last
        return site.id, site.owner_id, site.timezone, last


def logged_in_client(app: Any, owner_id: int) -> Any:
    """Return a test client whose session belongs to the site's owner (Flask-Login's keys)."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(owner_id)
        session["_fresh"] = True
    return client


class FrozenNow:
    """Make "today" the data's last day, so presets end where the data does."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __enter__(self) -> None:
        from flask_tracking.dashboard import views

        self.views = views
        self.saved = views.datetime
        moment = self.moment

        class Frozen(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
                return moment if tz is None else moment.astimezone(tz)

        views.datetime = Frozen  # type: ignore[misc]

    def __exit__(self, *_exc: object) -> None:
        self.views.datetime = self.saved  # type: ignore[misc]


def page_url(site_id: int, preset: str, filters: tuple[str, ...]) -> str:
    args = [("period", preset), *(("filter", f) for f in filters)]
    return f"/sites/{site_id}?{urlencode(args)}"


def time_page(client: Any, url: str) -> float:
    began = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - began
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    return elapsed


def drop_page_cache() -> bool:
    """Ask the kernel to forget cached file pages (root only); tell whether it worked."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def cold_once(database_url: str, preset: str, filters: tuple[str, ...]) -> float:
    """Time the first request of a new process (this script with --cold-one)."""
    command = [
        sys.executable,
        __file__,
        "--database-url",
        database_url,
        "--cold-one",
        json.dumps([preset, list(filters)]),
    ]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the cold request failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def duckdb_times(
    database_url: str, site_id: int, ranges: dict[str, tuple[datetime, datetime]], runs: int
) -> tuple[dict[tuple[str, str], float], float]:
    spec = importlib.util.spec_from_file_location("duckdb_reference", HERE / "duckdb_reference.py")
    assert spec and spec.loader
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    began = time.perf_counter()
    con = reference.load(database_url, site_id)
    loaded = time.perf_counter() - began
    times: dict[tuple[str, str], float] = {}
    for preset, (start, end) in ranges.items():
        for name, filters in FILTER_SETS:
            duck_filters = [DUCK_FILTERS[f] for f in filters]
            reference.reference_dashboard(con, site_id, start, end, duck_filters)  # warm-up
            samples = []
            for _ in range(runs):
                began = time.perf_counter()
                reference.reference_dashboard(con, site_id, start, end, duck_filters)
                samples.append(time.perf_counter() - began)
            times[(preset, name)] = statistics.median(samples)
    con.close()
    return times, loaded


def machine() -> str:
    cores = os.cpu_count()
    with contextlib.suppress(OSError, ValueError, IndexError):
        total = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
        python = f"{platform.python_implementation()} {platform.python_version()}"
        return f"{cores} cores, {total:.1f} GiB, {python}"
    return f"{cores} cores"


def main(argv: list[str] | None = None) -> None:  # noqa: PLR0915 - a script's steps
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--site-id", type=int, default=None)
    parser.add_argument("--runs", type=int, default=10, help="hot requests; the median counts")
    parser.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB reference")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold requests")
    parser.add_argument("--rebuild", action="store_true", help="also time a rollup rebuild")
    parser.add_argument("--cold-one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.database_url = resolve_sqlite(args.database_url)

    app = app_for(args.database_url)
    site_id, owner_id, tz, last = site_of(app, args.site_id)
    if args.cold_one:
        preset, filters = json.loads(args.cold_one)
        url = page_url(site_id, preset, tuple(filters))
        with FrozenNow(last):
            print(f"{time_page(logged_in_client(app, owner_id), url):.6f}")
        return

    with app.app_context():
        events = db.session.scalar(select(func.count()).where(Visit.site_id == site_id)) or 0
    dialect = args.database_url.split(":", 1)[0]
    print(f"# dashboard benchmark: {events:,} events, site {site_id} ({tz}), {dialect}")
    print(f"# machine: {machine()}; data ends {last:%Y-%m-%d %H:%M} UTC")

    if args.rebuild:
        from flask_tracking.reports import rollups

        with app.app_context():
            began = time.perf_counter()
            days = rollups.rebuild([site_id])
            print(f"rollup rebuild: {days} days in {time.perf_counter() - began:.1f} s")

    from flask_tracking.reports.ranges import resolve

    client = logged_in_client(app, owner_id)
    ranges = {preset: resolve(preset, tz, last) for preset, _ in RANGES}
    hot: dict[tuple[str, str], float] = {}
    cold: dict[tuple[str, str], float] = {}
    with FrozenNow(last):
        for preset, _label in RANGES:
            for name, filters in FILTER_SETS:
                url = page_url(site_id, preset, filters)
                time_page(client, url)  # warm-up
                hot[(preset, name)] = statistics.median(
                    time_page(client, url) for _ in range(args.runs)
                )
                print(f"# hot {preset} {name}: {hot[(preset, name)] * 1000:.1f} ms", flush=True)
    dropped = False
    if not args.no_cold:
        for preset, _label in RANGES:
            for name, filters in FILTER_SETS:
                dropped = drop_page_cache() or dropped
                cold[(preset, name)] = cold_once(args.database_url, preset, filters)
                print(f"# cold {preset} {name}: {cold[(preset, name)] * 1000:.1f} ms", flush=True)
    duck: dict[tuple[str, str], float] = {}
    if not args.no_duckdb:
        duck, loaded = duckdb_times(
            args.database_url,
            site_id,
            {p: (r.start, r.end) for p, r in ranges.items()},
            args.runs,
        )
        print(f"# DuckDB: raw events loaded into memory in {loaded:.1f} s (not counted)")
    if cold:
        print(f"# cold = first request of a new process; OS page cache dropped: {dropped}")
    print(f"{'range':<6} {'view':<11} {'hot ms':>8} {'cold ms':>8} {'DuckDB ms':>10} {'ratio':>7}")
    results = []
    for preset, _label in RANGES:
        for name, _filters in FILTER_SETS:
            key = (preset, name)
            ratio = hot[key] / duck[key] if duck.get(key) else None
            print(
                f"{preset:<6} {name:<11} {hot[key] * 1000:>8.1f} "
                f"{cold[key] * 1000 if key in cold else float('nan'):>8.1f} "
                f"{duck[key] * 1000 if key in duck else float('nan'):>10.1f} "
                f"{ratio if ratio is not None else float('nan'):>7.2f}"
            )
            results.append(
                {
                    "range": preset,
                    "view": name,
                    "hot_ms": round(hot[key] * 1000, 1),
                    "cold_ms": round(cold[key] * 1000, 1) if key in cold else None,
                    "duckdb_ms": round(duck[key] * 1000, 1) if key in duck else None,
                    "ratio": round(ratio, 2) if ratio is not None else None,
                }
            )
    print(json.dumps({"events": events, "dialect": dialect, "results": results}))


if __name__ == "__main__":
    main(sys.argv[1:])
