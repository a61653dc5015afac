"""Time the full dashboard page through the production server, against DuckDB on the same
raw events.

    .venv/bin/python bench/dashboard.py --database-url sqlite:///bench/data/events-1m.db

Starts `flask-tracking serve` (production configuration, --workers, the event store of the
generated data) on loopback and requests a shared link of the bench site over HTTP — the
whole page, as a browser asks for it: every panel, the chart, the map and the template. For
7 days, 30 days and 12 months ending at the data's last day, unfiltered, filtered by one and
two session dimensions and by page, it reports the median of --runs requests after a warm-up
("hot"), and:

* DuckDB: the same aggregates computed by bench/duckdb_reference.py from the site's raw events
  in an in-memory DuckDB (median of --runs), and our time's ratio to it;
* bytes per event: the store's file size over its events (everything included: dictionaries,
  sessions, rollups);
* memory: the server's process tree idle (RSS, after start) and each worker's peak (VmHWM)
  after all requests, the page filter among them;
* with --rebuild: the time `flask-tracking events rebuild` takes to derive the site's
  sessions, markers and rollups again;
* with --cold: the first request of a fresh server (one per view) for the 12 months,
  unfiltered and with the goal views below;
* goals: the unfiltered views again with the 5 goals of GOALS defined (pageview goals with
  and without wildcards, custom-event goals with a property condition and revenue), the
  Goals panel's cost being the difference; and the 12 months filtered by a goal. Their
  rollups are filled in before the server starts, as the writer fills them in production.

Data comes from bench/generate.py. This writes a shared link for the bench site (once) to
the SQL database, the goals while it measures them (removed at the end), and to the store
the goals' rollups (once) and, when --rebuild asks, everything derived.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from generate import resolve_events, resolve_sqlite  # noqa: E402  (bench/generate.py)

BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
RANGES = (("7d", 7), ("30d", 30), ("12mo", 365))
VIEWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("unfiltered", ()),
    ("1 filter", ("country:is:US",)),
    ("2 filters", ("country:is:US", "device:is:mobile")),
    ("page", ("page:contains:/blog",)),
)
# What a site owner would define on the generated data (its Signup events carry a plan and,
# when paid, an amount): (name, kind, fields).
GOALS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("Docs", "page", {"path": "/docs/**"}),
    ("Pricing", "page", {"path": "/pricing"}),
    ("Signup page", "page", {"path": "/signup"}),
    ("Signup", "event", {"event": "Signup"}),
    (
        "Paid signup",
        "event",
        {
            "event": "Signup",
            "prop_key": "plan",
            "prop_value": "pro",
            "revenue_prop": "amount",
            "currency": "EUR",
        },
    ),
)
FUNNEL = ("Checkout", ("Docs", "Pricing", "Signup page", "Signup"))  # 4 steps of GOALS
# (view, filters, the funnel's name to open or ""): over 12 months only, but "5 goals".
GOAL_VIEWS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("5 goals", (), ""),
    ("goal filter", ("goal:is:Signup",), ""),
    ("4-step funnel", (), FUNNEL[0]),
)
# The same filters for DuckDB, by column.
DUCK_FILTERS = {
    "country:is:US": ("country_code", "is", "US"),
    "device:is:mobile": ("device", "is", "mobile"),
}


def default_events_url(database_url: str) -> str:
    """The store bench/generate.py makes beside an SQLite database."""
    if not database_url.startswith("sqlite:///"):
        raise SystemExit("--events-url is needed when --database-url is not an SQLite file")
    return "duckdb:///" + str(Path(database_url.removeprefix("sqlite:///")).with_suffix(".duckdb"))


def prepare(database_url: str, events_url: str, site_id: int | None) -> dict[str, Any]:
    """Find the bench site, its zone, last event and events; make sure it has a shared link."""
    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from flask_tracking import create_app
    from flask_tracking.config import BaseConfiguration
    from flask_tracking.events import close_store, owned_store
    from flask_tracking.events.tables import tables
    from flask_tracking.extensions import db
    from flask_tracking.reports import rollups
    from flask_tracking.tracking.models import SharedLink, Site

    settings = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "EVENTS_DATABASE_URL": events_url,
        "INGEST_WRITER": "off",
        "LOG_LEVEL": "WARNING",
    }
    app = create_app(type("BenchConfig", (BaseConfiguration,), settings))
    try:
        with app.app_context():
            upgrade()  # data generated by an earlier version: its SQL schema brought up to date
            site = db.session.get(Site, site_id or db.session.scalar(select(func.min(Site.id))))
            if site is None:
                raise SystemExit("no site: run bench/generate.py first")
            store = owned_store(app)
            e = tables(store.engine).all_events.c
            events, last = store.fetch(
                select(func.count(), func.max(e.ts)).where(e.site_id == site.id)
            )[0]
            if not events:
                raise SystemExit("the site has no events")
            link = db.session.scalar(
                select(SharedLink).where(SharedLink.site_id == site.id, SharedLink.name == "bench")
            )
            if link is None:
                link = SharedLink(site_id=site.id, name="bench", token=secrets.token_urlsafe(32))
                db.session.add(link)
                db.session.commit()
            # The goals' rollups, as the writer fills them in once goals are defined.
            rollups.fill_goals(store, {site.id: bench_goals()})
            return {
                "site_id": site.id,
                "timezone": site.timezone,
                "events": int(events),
                "last": datetime.fromtimestamp(last / 1000, UTC),
                "token": link.token,
            }
    finally:
        close_store(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def bench_goals() -> tuple[Any, ...]:
    """GOALS as the reporting layer's definitions."""
    from flask_tracking.reports.goals import make_goal

    return tuple(make_goal(name, kind, **fields) for name, kind, fields in GOALS)


def define_goals(database_url: str, site_id: int, *, defined: bool) -> None:
    """Define GOALS and FUNNEL on the site in the SQL database (or remove every goal and
    funnel of the site)."""
    from flask_tracking import create_app
    from flask_tracking.config import BaseConfiguration
    from flask_tracking.database import writing
    from flask_tracking.extensions import db
    from flask_tracking.tracking.funnels import add_funnel, delete_funnel
    from flask_tracking.tracking.goals import add_goal, delete_goal
    from flask_tracking.tracking.models import Site

    settings = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "EVENTS_DATABASE_URL": "duckdb:///:memory:",  # not opened: goals live in SQL
        "INGEST_WRITER": "off",
        "LOG_LEVEL": "WARNING",
    }
    app = create_app(type("BenchConfig", (BaseConfiguration,), settings))
    # Reads then writes, beside a running server: on SQLite the transaction must take the
    # write lock first (flask_tracking/database.py), or a commit of the server's in between
    # answers "database is locked" at once instead of waiting.
    with app.app_context(), writing():
        site = db.session.get(Site, site_id)
        assert site is not None
        for funnel in list(site.funnels):
            delete_funnel(funnel)
        for row in list(site.goals):
            delete_goal(row)
        if defined:
            ids = {goal.name: add_goal(site, goal).id for goal in bench_goals()}
            add_funnel(site, FUNNEL[0], [ids[name] for name in FUNNEL[1]])
        db.session.remove()
        db.engine.dispose()


def store_bytes(events_url: str) -> int:
    """The store's size on disk (after a checkpoint: the WAL folded in)."""
    import duckdb

    path = events_url.removeprefix("duckdb:///")
    with contextlib.closing(duckdb.connect(path)) as con:
        con.execute("CHECKPOINT")
    wal = Path(path + ".wal")
    return Path(path).stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def environment(database_url: str, events_url: str, data_dir: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLASK_TRACKING_")},
        "FLASK_TRACKING_CONFIG": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "FLASK_TRACKING_SQLALCHEMY_DATABASE_URI": database_url,
        "FLASK_TRACKING_EVENTS_DATABASE_URL": events_url,
        "FLASK_TRACKING_DATA_DIR": data_dir,
        "FLASK_TRACKING_LOG_LEVEL": "WARNING",
    }


def rebuild(env: dict[str, str], site_id: int) -> float:
    """Time `flask-tracking events rebuild` of the site (a process of its own)."""
    began = time.perf_counter()
    subprocess.run(
        [str(BIN / "flask-tracking"), "events", "rebuild", "--site", str(site_id)],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - began


@contextlib.contextmanager
def serving(env: dict[str, str], port: int, workers: int, log: Path) -> Any:
    """Run `flask-tracking serve` in its own process group until the block ends."""
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [str(BIN / "flask-tracking"), "serve", "--host", HOST, "--port", str(port),
             "--workers", str(workers)],
            env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"the server exited with {process.returncode}; see {log}")
            with contextlib.suppress(OSError):
                status, _ = get(port, "/")
                if status == 200:
                    break
            time.sleep(0.2)
        else:
            raise SystemExit(f"the server did not start; see {log}")
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
                queue.extend(int(child) for child in children)
    return found


def memory(pid: int, field: str) -> int:
    """A /proc/PID/status memory field (VmRSS, VmHWM) in bytes; 0 once the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def command_of(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:80]
    return ""


def period(last: datetime, zone: str, days: int) -> tuple[date, date, datetime, datetime]:
    """The `days` local days ending with the data's last day: dates, and UTC bounds."""
    tz = ZoneInfo(zone)
    end_day = last.astimezone(tz).date()
    start_day = end_day - timedelta(days=days - 1)

    def midnight(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)

    return start_day, end_day, midnight(start_day), midnight(end_day + timedelta(days=1))


def page_path(
    token: str, first: date, last: date, filters: tuple[str, ...], funnel: str = ""
) -> str:
    args = [("period", "custom"), ("from", first.isoformat()), ("to", last.isoformat())]
    args += [("filter", f) for f in filters]
    args += [("funnel", funnel)] if funnel else []
    return f"/share/{token}?{urlencode(args)}"


def timed(port: int, path: str) -> float:
    began = time.perf_counter()
    status, body = get(port, path)
    elapsed = time.perf_counter() - began
    if status != 200:
        raise SystemExit(f"{path} answered {status}: {body[:300]!r}")
    return elapsed


def measure(
    port: int,
    token: str,
    ranges: dict[str, tuple[date, date, datetime, datetime]],
    views: tuple[tuple[str, tuple[str, ...]], ...] | tuple[tuple[str, tuple[str, ...], str], ...],
    runs: int,
) -> dict[tuple[str, str], float]:
    """The median of `runs` hot requests of each (range, view); of GOAL_VIEWS, only "5 goals"
    over every range, the others over 12 months."""
    hot = {}
    for name, (first, last, _start, _end) in ranges.items():
        for view, filters, *funnel in views:
            if views is GOAL_VIEWS and view != "5 goals" and name != "12mo":
                continue
            path = page_path(token, first, last, filters, *funnel)
            timed(port, path)  # warm-up
            hot[(name, view)] = statistics.median([timed(port, path) for _ in range(runs)])
            print(f"# hot {name} {view}: {hot[(name, view)] * 1000:.1f} ms", flush=True)
    return hot


def goal_costs(
    database_url: str,
    site: dict[str, Any],
    port: int,
    ranges: dict[str, tuple[date, date, datetime, datetime]],
    *,
    runs: int,
    blocks: int = 3,
) -> dict[tuple[str, str], float]:
    """The unfiltered views without goals and with GOALS defined, measured in alternating
    blocks (the machine's noise drifts over a run: a difference of two medians taken minutes
    apart said more about the drift than about the goals), and the goal filter."""
    samples: dict[tuple[str, str], list[float]] = {}
    plain = (("unfiltered", ()),)
    per_block = max(1, runs // blocks)
    try:
        for _block in range(blocks):
            for defined, views in ((False, plain), (True, GOAL_VIEWS)):
                define_goals(database_url, site["site_id"], defined=defined)
                for key, value in measure(port, site["token"], ranges, views, per_block).items():
                    name = key if defined else (key[0], "unfiltered, again")
                    samples.setdefault(name, []).append(value)
    finally:
        define_goals(database_url, site["site_id"], defined=False)
    return {key: statistics.median(values) for key, values in samples.items()}


def cold_times(
    env: dict[str, str],
    database_url: str,
    site: dict[str, Any],
    ranges: dict[str, tuple[date, date, datetime, datetime]],
    *,
    workers: int,
    log: Path,
) -> dict[str, float]:
    """The first request of a fresh server (new processes: no statement, code or dictionary
    cache, DuckDB's buffers empty; the OS page cache stays warm) for the 12 months unfiltered
    without goals, and with the 5 goals, the goal filter and the funnel."""
    first, last, _start, _end = ranges["12mo"]
    views = (("unfiltered", (), "", False), *((v, f, n, True) for v, f, n in GOAL_VIEWS))
    found = {}
    try:
        for view, filters, funnel, defined in views:
            define_goals(database_url, site["site_id"], defined=defined)
            port = free_port()
            with serving(env, port, workers, log):
                found[view] = timed(port, page_path(site["token"], first, last, filters, funnel))
            print(f"# cold 12mo {view}: {found[view] * 1000:.1f} ms", flush=True)
    finally:
        define_goals(database_url, site["site_id"], defined=False)
    return found


def duckdb_times(
    database_url: str,
    events_url: str,
    site_id: int,
    ranges: dict[str, tuple[datetime, datetime]],
    runs: int,
) -> tuple[dict[tuple[str, str], float], float]:
    spec = importlib.util.spec_from_file_location("duckdb_reference", HERE / "duckdb_reference.py")
    assert spec and spec.loader
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    began = time.perf_counter()
    con = reference.load(database_url, events_url, site_id)
    loaded = time.perf_counter() - began
    times: dict[tuple[str, str], float] = {}
    for preset, (start, end) in ranges.items():
        for name, filters in VIEWS:
            if any(f not in DUCK_FILTERS for f in filters):
                continue  # the reference filters on session dimensions only
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


def table(
    hot: dict[tuple[str, str], float], duck: dict[tuple[str, str], float]
) -> list[dict[str, Any]]:
    """Print our times beside DuckDB's; return them as the summary's rows."""
    print(f"{'range':<6} {'view':<17} {'hot ms':>8} {'DuckDB ms':>10} {'ratio':>7}")
    results = []
    for name, _days in RANGES:
        names = [view[0] for view in (*VIEWS, ("unfiltered, again",), *GOAL_VIEWS)]
        for view in names:
            key = (name, view)
            if key not in hot:
                continue
            ratio = hot[key] / duck[key] if duck.get(key) else None
            print(
                f"{name:<6} {view:<17} {hot[key] * 1000:>8.1f} "
                f"{duck[key] * 1000 if key in duck else float('nan'):>10.1f} "
                f"{ratio if ratio is not None else float('nan'):>7.2f}"
            )
            results.append(
                {
                    "range": name,
                    "view": view,
                    "hot_ms": round(hot[key] * 1000, 1),
                    "duckdb_ms": round(duck[key] * 1000, 1) if key in duck else None,
                    "ratio": round(ratio, 2) if ratio is not None else None,
                }
            )
    return results


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--events-url", help="default: the .duckdb file beside an SQLite database")
    parser.add_argument("--site-id", type=int, default=None)
    parser.add_argument("--runs", type=int, default=10, help="hot requests; the median counts")
    parser.add_argument("--workers", type=int, default=2, help="the server's worker processes")
    parser.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB reference")
    parser.add_argument("--rebuild", action="store_true", help="also time a derived-data rebuild")
    parser.add_argument(
        "--cold", action="store_true", help="also time first requests of fresh servers"
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting of the server (e.g. EVENTS_MEMORY_LIMIT=300MB); repeatable",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    settings = dict(setting.split("=", 1) for setting in args.setting)
    database_url = resolve_sqlite(args.database_url)
    events_url = resolve_events(args.events_url or default_events_url(database_url))

    site = prepare(database_url, events_url, args.site_id)
    size = store_bytes(events_url)
    events = site["events"]
    print(f"# dashboard benchmark: {events:,} events, site {site['site_id']} ({site['timezone']})")
    print(f"# machine: {machine()}; data ends {site['last']:%Y-%m-%d %H:%M} UTC")
    print(f"# store: {size / 1e6:,.1f} MB, {size / events:.1f} bytes per event (all included)")

    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as data_dir:
        env = environment(database_url, events_url, data_dir)
        env.update({f"FLASK_TRACKING_{key}": value for key, value in settings.items()})
        if settings:
            print(f"# settings: {settings}")
        rebuilt = rebuild(env, site["site_id"]) if args.rebuild else None
        if rebuilt is not None:
            print(f"# rebuild of sessions, markers and rollups: {rebuilt:.1f} s")
        port = free_port()
        log = Path(data_dir) / "serve.log"
        ranges = {name: period(site["last"], site["timezone"], days) for name, days in RANGES}
        hot: dict[tuple[str, str], float] = {}
        with serving(env, port, args.workers, log) as server:
            time.sleep(2)  # let the workers settle
            pids = tree(server.pid)
            idle = sum(memory(pid, "VmRSS") for pid in pids)
            print(f"# idle: {len(pids)} processes, {idle / 2**20:,.0f} MiB RSS in all")
            hot.update(measure(port, site["token"], ranges, VIEWS, args.runs))
            hot.update(goal_costs(database_url, site, port, ranges, runs=args.runs))
            peaks = {pid: memory(pid, "VmHWM") for pid in tree(server.pid)}
        for pid, peak in sorted(peaks.items()):
            print(f"# peak RSS {peak / 2**20:,.0f} MiB: {command_of(pid) or pid}")
        cold: dict[str, float] = {}
        if args.cold:
            cold = cold_times(env, database_url, site, ranges, workers=args.workers, log=log)
    duck: dict[tuple[str, str], float] = {}
    if not args.no_duckdb:
        duck, loaded = duckdb_times(
            database_url,
            events_url,
            site["site_id"],
            {name: (start, end) for name, (_f, _l, start, end) in ranges.items()},
            args.runs,
        )
        print(f"# DuckDB: raw events loaded into memory in {loaded:.1f} s (not counted)")
    results = table(hot, duck)
    goal_cost = {
        name: round((hot[(name, "5 goals")] - hot[(name, "unfiltered, again")]) * 1000, 1)
        for name, _days in RANGES
    }
    print(f"# the Goals panel (5 goals) adds, unfiltered: {goal_cost} ms")
    summary = {
        "events": events,
        "goals_panel_ms": goal_cost,
        "bytes_per_event": round(size / events, 1),
        "idle_rss_mib": round(idle / 2**20),
        "peak_worker_rss_mib": round(max(peaks.values()) / 2**20),
        "rebuild_s": round(rebuilt, 1) if rebuilt is not None else None,
        "cold_12mo_ms": {view: round(value * 1000, 1) for view, value in cold.items()},
        "results": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1:])
