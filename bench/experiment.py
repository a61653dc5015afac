"""Time an experiment's results over a million exposures, through the production server,
against DuckDB on the same raw events.

    .venv/bin/python bench/experiment.py --exposures 1000000 --runs 7

Builds, in a fresh directory under bench/data/, a site with the goals Signup (a custom event,
with revenue) and Pricing (a page), and an experiment of two variants judged on them over
--days UTC days; then --exposures visitors, each seen on /pricing and exposed once (1 % of
them exposed to both variants: left out), converting at 5.0 % in the control and 5.6 % in the
treatment, some before their exposure (not counted). The rows go in through the store's
bulk-load path and are closed as the writer closes days.

It then starts `flask-tracking serve` on that data and asks
GET /api/v1/sites/{id}/experiments/{id}/results with an API key (the median of --runs after a
warm-up, each answer checked against the reference), and reports:

* the same counts (exposed visitors per variant, converted visitors and conversions per goal)
  computed by plain SQL in an in-memory DuckDB from the raw events (text columns, no
  dictionary, no markers): the median of --runs, and our time's ratio to it;
* the part of our time the statistics take (reports/significance.py on the counts), in-process.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from dashboard import HOST, environment, free_port, machine, serving  # noqa: E402
from generate import Loader, derive, make_app, signed64  # noqa: E402

KEY = "bench-pricing"
RAW_COLUMNS = ("visitor", "utc_day", "ts", "pv", "name", "page", "experiment", "variant")
VARIANTS = (("control", 1, 0.050), ("annual", 1, 0.056))  # name, weight, conversion rate
CHUNK = 250_000


def event(
    chunk: list[dict[str, Any]],
    visitor: int,
    at: datetime,
    name: str,
    props: dict[str, Any] | None = None,
) -> None:
    """Add one raw event of a visitor on /pricing to the chunk."""
    chunk.append(
        {
            "site_id": 1,
            "ts": int(at.timestamp() * 1000),
            "visitor": visitor,
            "day": (at.date() - date(1970, 1, 1)).days,
            "pv": name == "pageview",
            "name": name,
            "page": "/pricing",
            "url": "https://bench.example/pricing",
            "width": 1440,
            "props": json.dumps(props) if props else "",
            "country": "US",
            "browser": "Firefox",
            "device": "desktop",
        }
    )


def rows_for(exposures: int, days: int, first: date, seed: int) -> Iterator[list[dict[str, Any]]]:
    """Yield the raw events (dicts of the store's columns, dimensions as text), a chunk of
    rows at a time."""
    from flask_tracking.reports.experiments import EXPOSURE

    rng = random.Random(seed)
    chunk: list[dict[str, Any]] = []
    for person in range(exposures):
        day = first + timedelta(days=person % days)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
            seconds=rng.randrange(0, 20 * 3600)
        )
        visitor = signed64(b"experiment-bench", person.to_bytes(8, "big"))
        index = rng.randrange(len(VARIANTS))
        variant, _weight, rate = VARIANTS[index]
        if rng.random() < 0.01:  # converts before the exposure: not the variant's doing
            event(chunk, visitor, start - timedelta(seconds=30), "Signup", {"amount": 10})
        event(chunk, visitor, start, "pageview")
        shown = {"experiment": KEY, "variant": variant}
        event(chunk, visitor, start + timedelta(seconds=1), EXPOSURE, shown)
        if rng.random() < 0.01:  # a reload drew the other variant
            other = {"experiment": KEY, "variant": VARIANTS[1 - index][0]}
            event(chunk, visitor, start + timedelta(seconds=9), EXPOSURE, other)
        if rng.random() < rate:
            event(chunk, visitor, start + timedelta(seconds=60), "Signup", {"amount": 49})
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    yield chunk


REFERENCE = """
WITH exposed AS (
  SELECT visitor, min(variant) AS variant, count(DISTINCT variant) AS variants, min(ts) AS first
  FROM raw WHERE name = 'Experiment Exposure' AND experiment = ? AND ts >= ? AND ts < ?
  GROUP BY visitor, utc_day
)
SELECT 'exposed', variant, count(*), count(*) FROM exposed WHERE variants = 1 GROUP BY variant
UNION ALL
SELECT 'Signup', x.variant, count(DISTINCT r.visitor), count(*) FROM raw r
  JOIN exposed x ON r.visitor = x.visitor AND r.ts >= x.first
  WHERE x.variants = 1 AND r.name = 'Signup' AND r.ts >= ? AND r.ts < ? GROUP BY x.variant
UNION ALL
SELECT 'Pricing', x.variant, count(DISTINCT r.visitor), count(*) FROM raw r
  JOIN exposed x ON r.visitor = x.visitor AND r.ts >= x.first
  WHERE x.variants = 1 AND r.pv AND r.page = '/pricing' AND r.ts >= ? AND r.ts < ?
  GROUP BY x.variant
"""


@dataclass
class Built:
    """The data set: where it is, what to ask for, and the raw rows for the reference."""

    root: Path
    database_url: str
    events_url: str
    path: str  # the results' URL
    secret: str  # a read key
    definition: Any
    window: tuple[int, int]
    raw: dict[str, list[Any]]
    in_process: float  # the first, cold, in-process results
    counted: Any


def build(args: argparse.Namespace) -> Built:
    """Make the site, goals, experiment and key; load and close the events."""
    from flask_migrate import upgrade

    from flask_tracking.events import close_store, current_store
    from flask_tracking.extensions import db
    from flask_tracking.reports import stats
    from flask_tracking.reports.goals import make_goal
    from flask_tracking.tracking.experiments import Draft, add_experiment
    from flask_tracking.tracking.goals import add_goal
    from flask_tracking.tracking.models import Site
    from flask_tracking.users import accounts, apikeys

    data = HERE / "data"
    data.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="experiment-", dir=data))
    database_url, events_url = f"sqlite:///{root}/app.db", f"duckdb:///{root}/events.duckdb"
    app = make_app(database_url, events_url, str(root / "spool"))
    first = date(2026, 1, 1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=args.days)
    raw: dict[str, list[Any]] = {name: [] for name in RAW_COLUMNS}
    with app.app_context():
        upgrade()
        user = accounts.register("bench@example.com", "correct horse battery staple")
        site = Site(owner_id=user.id, base_url="https://bench.example", name="Bench")
        db.session.add(site)
        db.session.commit()
        signup = make_goal("Signup", "event", event="Signup", revenue_prop="amount", currency="EUR")
        goal_ids = [add_goal(site, signup).id]
        goal_ids.append(add_goal(site, make_goal("Pricing", "page", path="/pricing")).id)
        variants = [(name, weight) for name, weight, _rate in VARIANTS]
        draft = Draft(KEY, "Annual first", variants, goal_ids, start, end, "stopped")
        experiment = add_experiment(site, draft)
        _key, secret = apikeys.create_key(user, "bench", apikeys.READ)
        store = current_store()
        loader = Loader(store, args.seed)
        began = time.perf_counter()
        stored = 0
        for chunk in rows_for(args.exposures, args.days, first, args.seed):
            for row in chunk:
                stored += 1
                row["eid"] = stored
                props = json.loads(row["props"]) if row["props"] else {}
                for name, value in zip(
                    RAW_COLUMNS,
                    (row["visitor"], row["ts"] // 86_400_000, row["ts"], row["pv"], row["name"],
                     row["page"], props.get("experiment"), props.get("variant")),
                    strict=True,
                ):  # fmt: skip
                    raw[name].append(value)
            loader.write(chunk)
        print(f"loaded {stored:,} events in {time.perf_counter() - began:.0f} s", flush=True)
        derive(store, first + timedelta(days=args.days))
        began = time.perf_counter()
        counted = stats.experiment_results(site.id, experiment.definition, now=end)
        in_process = time.perf_counter() - began
        path = f"/api/v1/sites/{site.id}/experiments/{experiment.id}/results"
        definition = experiment.definition
        close_store(app)
    window = (int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    return Built(
        root, database_url, events_url, path, secret, definition, window, raw, in_process, counted
    )


def reference(built: Built, runs: int) -> tuple[dict[tuple[str, str], tuple[int, int]], float]:
    """The counts by plain SQL in an in-memory DuckDB, and its median seconds of `runs`."""
    import duckdb
    import numpy as np

    con = duckdb.connect()
    frame = {name: np.array(values) for name, values in built.raw.items()}
    con.register("raw_frame", frame)
    con.execute("CREATE TABLE raw AS SELECT * FROM raw_frame")
    con.unregister("raw_frame")
    params = [KEY, *built.window, *built.window, *built.window]
    times, found = [], []
    for _ in range(runs + 1):
        began = time.perf_counter()
        found = con.execute(REFERENCE, params).fetchall()
        times.append(time.perf_counter() - began)
    counts = {(what, variant): (visitors, rows) for what, variant, visitors, rows in found}
    return counts, statistics.median(times[1:])


def served(
    built: Built, expected: dict[tuple[str, str], tuple[int, int]], runs: int, workers: int
) -> tuple[dict[str, Any], float]:
    """Ask the production server for the results `runs` times after warming up every worker
    (each imports SciPy and statsmodels on its first results), checking each answer's counts
    against the reference; return the last answer and the median seconds."""
    env = environment(built.database_url, built.events_url, str(built.root))
    port = free_port()
    times = []
    result: dict[str, Any] = {}
    with serving(env, port, workers, built.root / "server.log"):
        warm_up = 2 * workers
        for attempt in range(warm_up + runs):
            connection = http.client.HTTPConnection(HOST, port, timeout=300)
            began = time.perf_counter()
            headers = {"Authorization": f"Bearer {built.secret}"}
            connection.request("GET", built.path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            elapsed = time.perf_counter() - began
            connection.close()
            if response.status != 200:
                raise SystemExit(f"{response.status}: {body[:300]!r}")
            result = json.loads(body)
            check(result, expected)
            if attempt >= warm_up:
                times.append(elapsed)
    return result, statistics.median(times)


def check(result: dict[str, Any], expected: dict[tuple[str, str], tuple[int, int]]) -> None:
    """The answer's counts are the reference's, to the visitor."""
    for name, _weight, _rate in VARIANTS:
        if result["exposed"][name] != expected[("exposed", name)][0]:
            raise SystemExit(f"exposed {name}: {result['exposed']} != {expected}")
        for goal in result["goals"]:
            arm = next(a for a in goal["arms"] if a["variant"] == name)
            want = expected.get((goal["goal"], name), (0, 0))
            if (arm["converted"], arm["conversions"]) != want:
                raise SystemExit(f"{goal['goal']} {name}: {arm} != {want}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exposures", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    from flask_tracking.reports.experiments import judge

    built = build(args)
    expected, duck = reference(built, args.runs)
    built.raw.clear()
    result, http_time = served(built, expected, args.runs, args.workers)
    counted = built.counted
    began = time.perf_counter()
    judge(built.definition, counted.exposed, counted.mixed, counted.counted, start=None, end=None)
    judged = time.perf_counter() - began
    primary = result["goals"][0]["comparisons"][0]
    print(f"machine: {machine()}")
    print(f"exposed visitors: {result['exposed']} (mixed, left out: {result['mixed']})")
    print(
        f"results over HTTP: median {http_time * 1000:.0f} ms of {args.runs}; DuckDB reference "
        f"{duck * 1000:.0f} ms; ratio {http_time / duck:.2f}"
    )
    print(
        f"in-process first call (cold): {built.in_process * 1000:.0f} ms; the statistics alone "
        f"(warm): {judged * 1000:.0f} ms"
    )
    print(
        f"primary goal: difference {primary['difference']} pp, p {primary['p_value']}, "
        f"always-valid p {primary['sequential_p_value']}, chance to beat "
        f"{primary['chance_to_beat']} %"
    )
    print(f"data kept in {built.root} (delete it when done)")


if __name__ == "__main__":
    main()
