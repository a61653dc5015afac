"""bench/generate.py: deterministic, realistic data whose sessions follow the writer's rules."""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import sqlite3
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from flask_tracking.ingest.visitors import session_id
from flask_tracking.tracking.models import EventContext

GENERATE = Path(__file__).resolve().parents[2] / "bench" / "generate.py"
ARGS = ["--events", "3000", "--days", "10", "--paths", "200", "--seed", "7", "--no-rollups"]
CONTEXT = EventContext.CONTEXT_FIELDS
ENRICHED = (
    *CONTEXT,
    "event_id",
    "date",
    "event",
    "url",
    "pathname",
    "browser_version",
    "os_version",
    "screen_width",
    "postal_code",
    "country_name",
    "latitude",
    "longitude",
    "props",
    "ip_address",
)


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    """bench/generate.py, imported from its path (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_generate", GENERATE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bulk_db(generate: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database generated once with ARGS, shared by the read-only tests."""
    path = tmp_path_factory.mktemp("bulk") / "events.db"
    generate.main(["--database-url", f"sqlite:///{path}", *ARGS])
    return path


def rows(path: Path, query: str) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(query)]


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_same_arguments_give_identical_rows(
    generate: ModuleType, bulk_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    again = tmp_path / "again.db"
    totals = generate.main(["--database-url", f"sqlite:///{again}", *ARGS])
    assert totals.events == 3000
    for table in ("visits", "sessions", "sites"):
        query = f"SELECT * FROM {table} ORDER BY rowid"  # noqa: S608
        assert rows(again, query) == rows(bulk_db, query)
    assert len(rows(again, "SELECT id FROM visits")) == 3000
    assert "site id: 1" in capsys.readouterr().out


def test_a_second_run_refuses_then_replaces(
    generate: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    small = ["--events", "200", "--days", "3", "--no-rollups"]
    generate.main(["--database-url", url, *small])
    with pytest.raises(SystemExit, match="--replace"):
        generate.main(["--database-url", url, *small])
    generate.main(["--database-url", url, *small, "--replace", "--seed", "2"])
    stored = rows(tmp_path / "events.db", "SELECT site_id, count(*) AS n FROM visits GROUP BY 1")
    assert stored == [{"site_id": 1, "n": 200}]
    capsys.readouterr()


def test_sessions_are_what_the_writer_would_derive(bulk_db: Path) -> None:
    """Recompute sessions from the visits with the rules of flask_tracking/ingest/sessions.py."""
    visits = rows(bulk_db, "SELECT * FROM visits ORDER BY date, id")
    by_visitor: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
    for visit in visits:
        by_visitor[visit["visitor_id"]].append(visit)
    expected: dict[int, dict[str, Any]] = {}
    for events in by_visitor.values():
        session: dict[str, Any] | None = None
        for event in events:
            moment = parse(event["date"])
            if session is None or moment - session["ended_at"] > timedelta(minutes=30):
                millis = int(moment.timestamp() * 1000)
                session = {
                    "id": session_id(event["visitor_id"], millis),
                    "visitor_id": event["visitor_id"],
                    "started_at": moment,
                    "entry_page": event["pathname"],
                    "exit_page": event["pathname"],
                    "pageviews": 0,
                    "events": 0,
                    **{name: event[name] for name in CONTEXT},
                }
                expected[session["id"]] = session
            session["ended_at"] = moment
            session["events"] += 1  # every event, pageviews included
            if event["event"] == "pageview":
                session["pageviews"] += 1
                session["exit_page"] = event["pathname"]
            session["is_bounce"] = int(session["pageviews"] <= 1)
            assert event["session_id"] == session["id"]
    stored = {}
    for session in rows(bulk_db, "SELECT * FROM sessions"):
        session["started_at"] = parse(session["started_at"])
        session["ended_at"] = parse(session["ended_at"])
        assert session.pop("site_id") == 1
        stored[session["id"]] = session
    assert stored == expected


def test_mixes_are_plausible(bulk_db: Path) -> None:
    sessions = rows(bulk_db, "SELECT * FROM sessions")
    visits = rows(bulk_db, "SELECT * FROM visits")
    share = lambda values, key: Counter(values)[key] / len(values)  # noqa: E731
    assert 0.38 < share([s["is_bounce"] for s in sessions], 1) < 0.55
    devices = [s["device"] for s in sessions]
    assert 0.45 < share(devices, "desktop") < 0.65
    assert 0.30 < share(devices, "mobile") < 0.50
    assert 0.01 < share(devices, "tablet") < 0.10
    assert 0.30 < share([s["referrer_source"] for s in sessions], None) < 0.60
    assert len({s["country_code"] for s in sessions}) >= 20
    assert None not in {s["country_code"] for s in sessions}  # every network resolves
    names = Counter(v["event"] for v in visits)
    assert set(names) == {"pageview", "Signup", "Download", "Outbound Link: Click"}
    assert 0.02 < 1 - names["pageview"] / len(visits) < 0.20
    assert any(s["utm_campaign"] for s in sessions)
    # Screens fit devices: phones report phone widths, desktops never do.
    for visit in visits:
        if visit["device"] == "mobile":
            assert visit["screen_size"] == "mobile"
        elif visit["device"] == "desktop":
            assert visit["screen_size"] in ("laptop", "desktop")
    gaps = [
        (parse(b["date"]) - parse(a["date"])).total_seconds()
        for a, b in itertools.pairwise(visits)
        if a["session_id"] == b["session_id"] and b["event"] == a["event"] == "pageview"
    ]
    # 5-300 s apart; a returning person's two visits within 30 minutes make one session.
    assert min(gaps) >= 5
    assert sorted(gaps)[len(gaps) * 98 // 100] <= 300
    assert max(gaps) <= 30 * 60


def test_visitor_ids_change_every_utc_day(generate: ModuleType, bulk_db: Path) -> None:
    days_of: defaultdict[int, set[str]] = defaultdict(set)
    for visit in rows(bulk_db, "SELECT visitor_id, date FROM visits"):
        days_of[visit["visitor_id"]].add(visit["date"][:10])
    assert all(len(days) == 1 for days in days_of.values())

    # The same people do come back on other days, under another id.
    settings = generate.parse_args(["--database-url", "sqlite://", *ARGS])
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
    assert set().union(*returning) <= set(days_of)


@pytest.mark.integration  # the bundled GeoIP database resolves the generated addresses
def test_through_pipeline_stores_the_same_enriched_events(
    generate: ModuleType, tmp_path: Path
) -> None:
    args = ["--events", "1500", "--days", "4", "--seed", "5", "--no-rollups"]
    piped, bulk = tmp_path / "piped.db", tmp_path / "bulk.db"
    totals = generate.main(["--database-url", f"sqlite:///{piped}", *args, "--through-pipeline"])
    generate.main(["--database-url", f"sqlite:///{bulk}", *args])
    assert totals.events == 1500
    columns = ", ".join(ENRICHED)
    query = f"SELECT {columns} FROM visits ORDER BY event_id"  # noqa: S608
    assert rows(piped, query) == rows(bulk, query)
    # Sessions cover the same events; only the (salted) visitor and session ids differ.
    shape = "SELECT started_at, ended_at, entry_page, exit_page, pageviews, events FROM sessions"
    assert sorted(map(str, rows(piped, shape))) == sorted(map(str, rows(bulk, shape)))


def test_duckdb_reference_agrees_with_plain_sql(bulk_db: Path) -> None:
    pytest.importorskip("duckdb")
    spec = importlib.util.spec_from_file_location(
        "bench_duckdb_reference", GENERATE.with_name("duckdb_reference.py")
    )
    assert spec is not None and spec.loader is not None
    reference = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = reference
    spec.loader.exec_module(reference)

    con = reference.load(f"sqlite:///{bulk_db}", 1)
    end, _zone = reference.data_end(con)
    start = end - timedelta(days=3)
    result = reference.reference_dashboard(con, 1, start, end, [("device", "is", "mobile")])
    con.close()

    begin, stop = (moment.replace(tzinfo=None).isoformat(sep=" ") for moment in (start, end))
    (expected,) = rows(
        bulk_db,
        "SELECT count(DISTINCT visitor_id) AS visitors, "  # noqa: S608
        "sum(event = 'pageview') AS pageviews FROM visits "
        "WHERE session_id IN (SELECT id FROM sessions WHERE device = 'mobile') "
        f"AND date >= '{begin}' AND date < '{stop}'",
    )
    assert (result["visitors"], result["pageviews"]) == (
        expected["visitors"],
        expected["pageviews"],
    )
    (sessions,) = rows(
        bulk_db,
        "SELECT count(*) AS visits, avg(is_bounce) * 100 AS bounce_rate "  # noqa: S608
        "FROM sessions WHERE device = 'mobile' "
        f"AND started_at >= '{begin}' AND started_at < '{stop}'",
    )
    assert result["visits"] == sessions["visits"]
    assert result["bounce_rate"] == pytest.approx(sessions["bounce_rate"])
    assert {row["value"] for row in result["devices"]} == {"mobile"}
    assert len(result["series"]) == 3
    assert sum(day["visits"] for day in result["series"]) == result["visits"]
    assert result["pages"][0]["pageviews"] >= result["pages"][-1]["pageviews"]


def test_large_loads_drop_and_restore_the_indexes(
    generate: ModuleType, bulk_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generate, "DEFER_INDEXES_FROM", 0)
    deferred = tmp_path / "deferred.db"
    generate.main(["--database-url", f"sqlite:///{deferred}", *ARGS])
    schema = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
    assert rows(deferred, schema) == rows(bulk_db, schema)
    query = "SELECT * FROM visits ORDER BY rowid"
    assert rows(deferred, query) == rows(bulk_db, query)
