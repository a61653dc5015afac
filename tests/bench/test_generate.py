"""bench/generate.py: deterministic, realistic data, stored and derived as the writer would;
bench/duckdb_reference.py: the same dashboard computed from the raw events, which the app's
reports must match to the last visitor."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from flask_tracking.events.embedded import EmbeddedStore
from flask_tracking.reports.export import StoredEvent, read
from tests.conftest import StoredSession

BENCH = Path(__file__).resolve().parents[2] / "bench"
ARGS = ["--events", "3000", "--days", "10", "--paths", "200", "--seed", "7"]
GAP = timedelta(minutes=30)


def module(name: str) -> ModuleType:
    """A bench script, imported from its path (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded  # dataclasses look their module up while decorating
    spec.loader.exec_module(loaded)
    return loaded


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    return module("generate")


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    return module("duckdb_reference")


@pytest.fixture(scope="module")
def bulk_db(generate: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database generated once with ARGS, shared by the read-only tests (its store is the
    .duckdb file beside it)."""
    path = tmp_path_factory.mktemp("bulk") / "events.db"
    generate.main(["--database-url", f"sqlite:///{path}", *ARGS])
    return path


def store_of(path: Path) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(str(path.with_suffix(".duckdb")))
    try:
        yield store
    finally:
        store.close()


def events_of(path: Path, site_id: int = 1) -> list[StoredEvent]:
    for store in store_of(path):
        return read(store, site_id, 0, 2**62, limit=10**9)
    raise AssertionError("unreachable")


def sessions_of(path: Path) -> list[StoredSession]:
    """The stored sessions, as the suite's helper reads them from an app's store."""
    from sqlalchemy import select

    from flask_tracking.events.tables import tables

    for store in store_of(path):
        s = tables("duckdb").all_sessions.c
        text = store.encoding.text
        dims = ("source", "url"), ("entry", "page"), ("exit", "page"), ("browser", "browser")
        more = ("device", "device"), ("screen", "screen"), ("country", "country")
        rows = store.fetch(
            select(
                s.sid,
                s.vd,
                s.ts,
                s.pageviews,
                s.events,
                s.bounce,
                s.ms,
                text(s.source, "source"),
                text(s.referrer, "url"),
                *(text(s[name], kind) for name, kind in (*dims[1:], *more)),
            ).order_by(s.ts, s.sid)
        )
        return [
            StoredSession(
                int(sid),
                int(vd),
                datetime.fromtimestamp(ts / 1000, UTC),
                int(pageviews),
                int(events),
                bool(bounce),
                ms / 1000,
                *map(str, texts),
            )
            for sid, vd, ts, pageviews, events, bounce, ms, *texts in rows
        ]
    raise AssertionError("unreachable")


def test_same_arguments_give_identical_rows(
    generate: ModuleType, bulk_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    again = tmp_path / "again.db"
    totals = generate.main(["--database-url", f"sqlite:///{again}", *ARGS])
    assert totals.events == 3000
    assert events_of(again) == events_of(bulk_db)
    assert sessions_of(again) == sessions_of(bulk_db)
    assert len(events_of(again)) == 3000
    out = capsys.readouterr().out
    assert "site id: 1" in out
    assert f"sessions: {len(sessions_of(again))}" in out
    for store in store_of(again):
        # The zone the rows are marked in is recorded, as the writer records it: a server
        # started on the data does not re-mark the whole site first.
        assert store.zones() == {1: "UTC"}


def test_a_second_run_refuses_then_replaces(
    generate: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.db"
    small = ["--events", "200", "--days", "3"]
    generate.main(["--database-url", f"sqlite:///{path}", *small])
    first = events_of(path)
    with pytest.raises(SystemExit, match="--replace"):
        generate.main(["--database-url", f"sqlite:///{path}", *small])
    assert events_of(path) == first  # refused: nothing changed
    generate.main(["--database-url", f"sqlite:///{path}", *small, "--replace", "--seed", "2"])
    replaced = events_of(path)
    assert len(replaced) == 200
    assert [e.date for e in replaced] != [e.date for e in first]
    capsys.readouterr()


def test_sessions_follow_the_thirty_minute_rule(bulk_db: Path) -> None:
    """Recompute sessions from the events (per visitor-day, a new one after 30 minutes
    without an event) and compare them with what the store derived."""
    by_visitor: defaultdict[int, list[StoredEvent]] = defaultdict(list)
    for event in events_of(bulk_db):
        by_visitor[event.visitor_id].append(event)
    expected: dict[tuple[int, ...], dict[str, Any]] = {}
    for events in by_visitor.values():
        group: list[StoredEvent] = []
        for event in [*events, None]:
            if group and (event is None or event.date - group[-1].date > GAP):
                pages = [e.pathname for e in group if e.event == "pageview"]
                expected[tuple(e.id for e in group)] = {
                    "start": group[0].date,
                    "pageviews": len(pages),
                    "events": len(group),
                    "bounce": len(pages) <= 1,
                    "seconds": (group[-1].date - group[0].date).total_seconds(),
                    "entry": group[0].pathname,
                    "exit": pages[-1] if pages else group[0].pathname,
                }
                group = []
            if event is not None:
                group.append(event)
    members: defaultdict[int, list[int]] = defaultdict(list)
    for event in events_of(bulk_db):
        members[event.session_id].append(event.id)
    derived = {
        tuple(members[s.sid]): {
            "start": s.start,
            "pageviews": s.pageviews,
            "events": s.events,
            "bounce": s.bounce,
            "seconds": s.seconds,
            "entry": s.entry,
            "exit": s.exit,
        }
        for s in sessions_of(bulk_db)
    }
    assert derived == expected


def test_mixes_are_plausible(bulk_db: Path) -> None:
    sessions = sessions_of(bulk_db)
    events = events_of(bulk_db)
    share = lambda values, key: Counter(values)[key] / len(values)  # noqa: E731
    assert 0.38 < share([s.bounce for s in sessions], True) < 0.55
    devices = [s.device for s in sessions]
    assert 0.45 < share(devices, "desktop") < 0.65
    assert 0.30 < share(devices, "mobile") < 0.50
    assert 0.01 < share(devices, "tablet") < 0.10
    assert 0.30 < share([s.source for s in sessions], "") < 0.60
    assert len({s.country for s in sessions}) >= 20
    assert "" not in {s.country for s in sessions}  # every network resolves
    names = Counter(e.event for e in events)
    assert set(names) == {"pageview", "Signup", "Download", "Outbound Link: Click"}
    assert 0.02 < 1 - names["pageview"] / len(events) < 0.20
    assert any(e.utm_campaign for e in events)
    # Screens fit devices: phones report phone widths, desktops never do.
    for event in events:
        if event.device == "mobile":
            assert event.screen_size == "mobile"
        elif event.device == "desktop":
            assert event.screen_size in ("laptop", "desktop")
    gaps = [
        (b.date - a.date).total_seconds()
        for a, b in itertools.pairwise(sorted(events, key=lambda e: (e.session_id, e.date)))
        if a.session_id == b.session_id and b.event == a.event == "pageview"
    ]
    # 5-300 s apart; a returning person's two visits within 30 minutes make one session.
    assert min(gaps) >= 5
    assert sorted(gaps)[len(gaps) * 98 // 100] <= 300
    assert max(gaps) <= 30 * 60


def test_visitor_ids_change_every_utc_day(generate: ModuleType, bulk_db: Path) -> None:
    days_of: defaultdict[int, set[str]] = defaultdict(set)
    for event in events_of(bulk_db):
        days_of[event.visitor_id].add(event.date.date().isoformat())
    assert all(len(days) == 1 for days in days_of.values())

    # The same people do come back on other days, under another id.
    settings = generate.parse_args(["--database-url", "sqlite:////tmp/unused.db", *ARGS])
    model = generate.Model(
        generate.Settings(
            settings.events,
            settings.days,
            settings.paths,
            settings.seed,
            settings.timezone,
            settings.end,
        )
    )
    ids_of: defaultdict[int, set[int]] = defaultdict(set)
    for day, events in model.days():
        for event in events:
            ids_of[event.person.number].add(model.visitor_id(event.person, day))
    returning = [ids for ids in ids_of.values() if len(ids) > 1]
    assert len(returning) > 20


@pytest.mark.integration  # the bundled GeoIP database resolves the generated addresses
def test_through_pipeline_stores_the_same_enriched_events(
    generate: ModuleType, tmp_path: Path
) -> None:
    args = ["--events", "1500", "--days", "4", "--seed", "5"]
    piped, bulk = tmp_path / "piped.db", tmp_path / "bulk.db"
    totals = generate.main(["--database-url", f"sqlite:///{piped}", *args, "--through-pipeline"])
    generate.main(["--database-url", f"sqlite:///{bulk}", *args])
    assert totals.events == 1500

    def enriched(path: Path) -> list[dict[str, Any]]:
        # Only the (salted) visitor and session ids differ.
        return [
            {k: v for k, v in vars(e).items() if k not in ("visitor_id", "session_id")}
            for e in events_of(path)
        ]

    assert enriched(piped) == enriched(bulk)
    shape = [
        (s.start, s.pageviews, s.events, s.seconds, s.entry, s.exit) for s in sessions_of(bulk)
    ]
    assert sorted(shape) == sorted(
        (s.start, s.pageviews, s.events, s.seconds, s.entry, s.exit) for s in sessions_of(piped)
    )


@pytest.mark.parametrize(
    ("filters", "app_filters"),
    [
        ([], []),
        ([("device", "is", "mobile")], ["device:is:mobile"]),
        (
            [("country_code", "is", "US"), ("referrer_source", "is_not", None)],
            ["country:is:US", "source:is_not:"],
        ),
    ],
)
def test_the_app_agrees_with_the_duckdb_reference(
    reference: ModuleType,
    bulk_db: Path,
    filters: list[tuple[str, str, str | None]],
    app_filters: list[str],
) -> None:
    """The reports (rollups, markers, open-day rows) against plain SQL on the raw events."""
    from flask_tracking import create_app
    from flask_tracking.config import TestConfiguration
    from flask_tracking.reports.dimensions import DIMENSIONS, parse_filters
    from flask_tracking.reports.ranges import DateRange
    from flask_tracking.reports.stats import Report, ReportQuery

    con = reference.load(f"sqlite:///{bulk_db}", f"duckdb:///{bulk_db.with_suffix('.duckdb')}", 1)
    end, zone = reference.data_end(con)
    settings = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{bulk_db}",
        "EVENTS_DATABASE_URL": f"duckdb:///{bulk_db.with_suffix('.duckdb')}",
        "SPOOL_DIR": str(bulk_db.parent / "spool"),
    }
    app = create_app(type("Config", (TestConfiguration,), settings))
    try:
        for days in (3, 10):
            start = end - timedelta(days=days)
            expected = reference.reference_dashboard(con, 1, start, end, filters)
            query = ReportQuery(
                1, zone, DateRange(start, end, "range", "day"), parse_filters(app_filters)
            )
            with app.app_context():
                report = Report(query)
                top = report.aggregate(compare=False).current
                series = report.timeseries("visitors", compare=False)
                devices = report.breakdown(DIMENSIONS["device"])
                pages = report.breakdown(DIMENSIONS["page"])
            assert (top.visitors, top.visits, top.pageviews) == (
                expected["visitors"],
                expected["visits"],
                expected["pageviews"],
            )
            assert top.bounce_rate == pytest.approx(expected["bounce_rate"] or 0)
            assert top.visit_duration == pytest.approx(expected["visit_duration"] or 0)
            assert [p.value for p in series.points] == [d["visitors"] for d in expected["series"]]
            assert {(r.value, r.visitors) for r in devices.rows} == {
                (d["value"] or "", d["visitors"]) for d in expected["devices"]
            }
            top_pages = [(r.value, r.visitors, r.pageviews) for r in pages.rows[:10]]
            assert top_pages == [
                (p["value"], p["visitors"], p["pageviews"]) for p in expected["pages"]
            ]
    finally:
        con.close()
        from flask_tracking.events import close_store

        close_store(app)
