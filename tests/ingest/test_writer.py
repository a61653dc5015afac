"""The batch writer into the event store: sessions, exactly-once storage, set-aside rows, drop
counts, salts, and the spool's segments."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from flask_tracking.events import current_store
from flask_tracking.events.tables import tables
from flask_tracking.extensions import db
from flask_tracking.ingest import drain, spool
from flask_tracking.ingest.records import DropRecord, EventRecord
from flask_tracking.tracking.analytics import RejectedEvent, Salt
from flask_tracking.users.models import User
from tests.conftest import count_rows, drop_counts, stored_events, stored_sessions

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)


def _start() -> datetime:
    """Three hours ago, or earlier when the next 90 minutes would cross UTC midnight: visitor
    ids rotate there, so a test's visit must stay within one UTC day whatever the hour."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    if (start + timedelta(minutes=90)).date() != start.date():
        start -= timedelta(hours=2)
    return start


START = _start()


@pytest.fixture
def site_id(owner: User, make_site: Any) -> int:
    return make_site(owner, "https://example.com")  # type: ignore[no-any-return]


def spool_event(
    app: Flask,
    site_id: int,
    at: datetime,
    path: str = "/",
    name: str = "pageview",
    ua: str = FIREFOX,
    ip: str = "81.2.69.142",
    **fields: Any,
) -> EventRecord:
    record = EventRecord(
        event_id=uuid.uuid4().hex,
        site_id=site_id,
        timestamp_ms=int(at.timestamp() * 1000),
        name=name,
        url="https://example.com" + path,
        ip=ip,
        user_agent=ua,
        **fields,
    )
    app.extensions["ingest"].spool.append(record.to_line())
    return record


def rows(app: Flask, model: Any, *order: Any) -> list[Any]:
    with app.app_context():
        found = list(db.session.scalars(select(model).order_by(*order)))
        db.session.expunge_all()
        return found


def count(app: Flask, model: Any) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model)) or 0


def test_events_under_30_minutes_apart_form_one_session(app: Flask, site_id: int) -> None:
    spool_event(app, site_id, START, "/a", referrer="https://www.google.com/search", width=1280)
    spool_event(app, site_id, START + timedelta(minutes=10), "/b")
    spool_event(
        app, site_id, START + timedelta(minutes=12), "/b", name="Signup", props={"plan": "pro"}
    )
    spool_event(app, site_id, START + timedelta(minutes=39), "/c")
    assert drain(app) == 4
    [session] = stored_sessions(app)
    assert (session.pageviews, session.events, session.bounce) == (3, 4, False)
    assert (session.entry, session.exit) == ("/a", "/c")
    assert session.seconds == 39 * 60
    assert session.source == "Google"
    assert (session.browser, session.device, session.screen) == ("Firefox", "desktop", "laptop")
    assert session.country == ""  # GeoIP is off in the test configuration
    visits = stored_events(app)
    assert {v.session_id for v in visits} == {session.sid}
    assert len({v.visitor_id for v in visits}) == 1
    assert visits[2].props == {"plan": "pro"}


def test_a_gap_of_30_minutes_or_more_starts_a_new_session(app: Flask, site_id: int) -> None:
    spool_event(app, site_id, START, "/a")
    spool_event(app, site_id, START + timedelta(minutes=31), "/b")
    drain(app)
    sessions = stored_sessions(app)
    assert [(s.entry, s.pageviews, s.bounce) for s in sessions] == [
        ("/a", 1, True),
        ("/b", 1, True),
    ]


def test_sessions_continue_across_batches(app: Flask, site_id: int) -> None:
    spool_event(app, site_id, START, "/a")
    drain(app)
    spool_event(app, site_id, START + timedelta(minutes=20), "/b")
    drain(app)
    [session] = stored_sessions(app)
    assert (session.pageviews, session.exit, session.bounce) == (2, "/b", False)


def test_a_late_event_extends_its_session_backwards(app: Flask, site_id: int) -> None:
    spool_event(app, site_id, START + timedelta(minutes=20), "/b")
    drain(app)
    spool_event(app, site_id, START, "/a", referrer="https://duckduckgo.com/")
    drain(app)
    [session] = stored_sessions(app)
    assert (session.entry, session.exit) == ("/a", "/b")
    assert session.source == "DuckDuckGo"
    assert session.seconds == 20 * 60


def test_different_browsers_are_different_visitors(app: Flask, site_id: int) -> None:
    spool_event(app, site_id, START, "/a", ua=FIREFOX)
    spool_event(app, site_id, START, "/a", ua=SAFARI)
    assert len({v.visitor_id for v in stored_events(app)}) == 2
    assert count_rows(app, "sessions") == 2


def test_stored_rows_hold_no_raw_ip(app: Flask, site_id: int) -> None:
    spool_event(app, site_id, START, "/a", ip="81.2.69.142")
    [visit] = stored_events(app)
    assert visit.ip_address is None
    assert "81.2.69.142" not in repr(visit)


def test_a_batch_that_fails_midway_is_stored_whole_on_the_retry(
    app: Flask, site_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events, drop counts and the spool position are one transaction: all or nothing."""
    spool_event(app, site_id, START, "/a")
    spool_event(app, site_id, START + timedelta(minutes=1), "/b")
    app.extensions["ingest"].spool.append(DropRecord(site_id, 0, "bot").to_line())
    store = app.extensions["events"]["store"] or _open(app)

    def broken(*_args: Any) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(store, "_count_drop", broken)  # after the events, before the position
    with pytest.raises(RuntimeError):
        drain(app)
    monkeypatch.undo()
    assert count_rows(app, "events") == 2  # this drain stored the batch again, whole
    [session] = stored_sessions(app)
    assert (session.pageviews, session.events) == (2, 2)
    assert drop_counts(app) == {(site_id, "bot"): 1}
    assert drain(app) == 0


def test_an_event_spooled_twice_in_one_batch_is_stored_once(app: Flask, site_id: int) -> None:
    record = spool_event(app, site_id, START, "/a")
    app.extensions["ingest"].spool.append(record.to_line())
    assert drain(app) == 1


def _open(app: Flask) -> Any:
    with app.app_context():
        return current_store()


def test_a_row_the_database_refuses_is_set_aside_and_the_rest_stored(
    app: Flask, site_id: int
) -> None:
    spool_event(app, site_id, START, "/ok-1")
    spool_event(app, 987_654, START, "/poison")  # a site deleted after the event was accepted
    spool_event(app, site_id, START, "/ok-2")
    assert drain(app) == 2
    assert sorted(v.pathname for v in stored_events(app)) == ["/ok-1", "/ok-2"]
    [rejected] = rows(app, RejectedEvent)
    assert "/poison" in rejected.payload
    assert "site 987654 no longer exists" in rejected.error
    assert drain(app) == 0  # not retried forever
    assert count(app, RejectedEvent) == 1


def test_a_malformed_spool_line_is_set_aside(app: Flask, site_id: int) -> None:
    app.extensions["ingest"].spool.append(b'{"k": "e", "id": "x"}\n')
    app.extensions["ingest"].spool.append(b"not json at all\n")
    spool_event(app, site_id, START, "/fine")
    assert drain(app) == 1
    assert count(app, RejectedEvent) == 2


@pytest.mark.parametrize(
    "line",
    [
        b'{"k": "e", "id": "x", "ip": "81.2.69.142", "ua": "Firefox"}\n',  # incomplete
        b'{"k": "e", "id": "x", "ip": "81.2.69.142", "ua": "Fire\n',  # cut off: not JSON
        b'{"k": "e", "s": "nope", "ip": "2a02:c7f:1234:5678::1", "t": 1}\n',
    ],
)
def test_a_set_aside_line_keeps_no_raw_address(app: Flask, site_id: int, line: bytes) -> None:
    app.extensions["ingest"].spool.append(line)
    drain(app)
    [rejected] = rows(app, RejectedEvent)
    assert "81.2.69.142" not in rejected.payload
    assert "2a02:c7f:1234:5678" not in rejected.payload
    assert (
        "81.2.69.0" in rejected.payload
        or "(removed)" in rejected.payload
        or ("2a02:c7f:1234::" in rejected.payload)
    )


def test_a_partly_written_last_line_waits(app: Flask, site_id: int) -> None:
    spool_event(app, site_id, START, "/complete")
    record = EventRecord(
        event_id=uuid.uuid4().hex,
        site_id=site_id,
        timestamp_ms=int(START.timestamp() * 1000),
        name="pageview",
        url="https://example.com/partial",
        user_agent=FIREFOX,
    )
    data = record.to_line()
    app.extensions["ingest"].spool.append(data[:20])  # a writer killed mid-line
    assert drain(app) == 1
    assert [v.pathname for v in stored_events(app)] == ["/complete"]


def test_database_outage_keeps_the_spool_and_retries(
    app: Flask, site_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool_event(app, site_id, START, "/a")
    from flask_tracking.ingest import writer as writer_module

    def unavailable(*_args: Any) -> None:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(writer_module.Salts, "for_day", unavailable)  # the salts' database
    with pytest.raises(OperationalError):
        drain(app)
    monkeypatch.undo()
    assert drain(app) == 1
    assert count_rows(app, "events") == 1


def test_drop_counts_are_kept_per_site_day_and_reason(app: Flask, site_id: int) -> None:
    ingest = app.extensions["ingest"]
    now_ms = int(START.timestamp() * 1000)
    for reason in ("bot", "bot", "dnt"):
        ingest.spool.append(DropRecord(site_id, now_ms, reason).to_line())
    drain(app)
    ingest.spool.append(DropRecord(site_id, now_ms, "bot").to_line())
    assert drop_counts(app) == {(site_id, "bot"): 3, (site_id, "dnt"): 1}
    with app.app_context():
        store = current_store()
        d = tables(store.engine).drops.c
        assert store.fetch(select(d.day).distinct()) == [(_day_number(START.date()),)]


def test_salts_rotate_daily_and_are_deleted_after_48_hours(app: Flask, site_id: int) -> None:
    today = datetime.now(UTC).date()
    with app.app_context():
        db.session.add(Salt(day=today - timedelta(days=2), salt=b"x" * 32))
        db.session.commit()
    now = datetime.now(UTC)
    spool_event(app, site_id, now - timedelta(days=1), "/yesterday")
    spool_event(app, site_id, now, "/today")
    drain(app)
    days = sorted(s.day for s in rows(app, Salt))
    assert days == [today - timedelta(days=1), today]
    assert len({s.salt for s in rows(app, Salt)}) == 2
    # The same person on two days is two visitors: no id links them across days.
    assert len({v.visitor_id for v in stored_events(app)}) == 2


def test_stored_segments_are_deleted(app: Flask, site_id: int) -> None:
    ingest = app.extensions["ingest"]
    spool_event(app, site_id, START, "/a")
    ingest.spool.close()  # seal, as at shutdown
    drain(app)  # stored to the end of a sealed segment: deleted in the same pass
    assert spool.segments(ingest.writer.settings.directory) == []
    assert count_rows(app, "checkpoints") == 0


def test_a_segment_sealed_between_listing_and_reading_is_read_under_its_new_name(
    app: Flask, site_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under a flood, a process seals its segment every few seconds: the writer that listed it
    # open a moment before must read it all the same (it used to fail the whole pass and back
    # off, longer each time, while the spool grew and the dashboard fell behind).
    ingest = app.extensions["ingest"]
    directory = ingest.writer.settings.directory
    spool_event(app, site_id, START, "/a")
    spool_event(app, site_id, START, "/b")
    listed = spool.segments(directory)
    assert [s.sealed for s in listed] == [False]
    ingest.spool.close()  # sealed (renamed) after the writer's listing
    real = spool.segments
    calls = []

    def stale_once(path: str) -> list[spool.Segment]:
        calls.append(path)
        return listed if len(calls) == 1 else real(path)

    monkeypatch.setattr(spool, "segments", stale_once)
    assert drain(app) == 2
    assert sorted(e.pathname or "" for e in stored_events(app)) == ["/a", "/b"]
    assert real(directory) == []  # the next pass saw it sealed and stored: deleted
    assert count_rows(app, "checkpoints") == 0


def test_a_segment_sealed_by_a_process_that_then_exits_is_stored_once(
    app: Flask, site_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At shutdown a worker seals its last segment (a rename) and exits while the writer runs:
    # listed open a moment before, the segment is finished (its process is gone) when the
    # writer reads it under its sealed name. Deleting "the open file" then left the sealed
    # one, its checkpoint gone: the next pass stored it all again (the concurrency test saw
    # three load events stored twice).
    ingest = app.extensions["ingest"]
    directory = ingest.writer.settings.directory
    spool_event(app, site_id, START, "/a")
    spool_event(app, site_id, START, "/b")
    [listed] = spool.segments(directory)
    ingest.spool.close()  # sealed after the listing...
    exited = subprocess.Popen([sys.executable, "-c", ""])  # ...by a process now gone
    exited.wait()
    stale = [dataclasses.replace(listed, pid=exited.pid)]
    real = spool.segments
    calls: list[str] = []

    def stale_once(path: str) -> list[spool.Segment]:
        calls.append(path)
        return stale if len(calls) == 1 else real(path)

    monkeypatch.setattr(spool, "segments", stale_once)
    assert drain(app) == 2
    assert drain(app) == 0
    assert sorted(e.pathname or "" for e in stored_events(app)) == ["/a", "/b"]
    assert real(directory) == []  # the sealed file is deleted with its checkpoint
    assert count_rows(app, "checkpoints") == 0


def test_a_quiet_segment_is_sealed_at_its_age_and_deleted_once_stored(
    app_factory: Any, site_in: Any
) -> None:
    app = app_factory(SPOOL_SEGMENT_SECONDS=0.3)
    site_id = site_in(app)
    ingest = app.extensions["ingest"]
    spool_event(app, site_id, START, "/a", ip="81.2.69.142")
    directory = ingest.writer.settings.directory
    [segment] = spool.segments(directory)
    assert not segment.sealed
    # No more events come: the segment's own timer seals it anyway.
    deadline = time.monotonic() + 5
    while not all(s.sealed for s in spool.segments(directory)):
        assert time.monotonic() < deadline, "the quiet segment was never sealed"
        time.sleep(0.02)
    assert drain(app) == 1
    assert spool.segments(directory) == []
    assert not any(b"81.2.69.142" in path.read_bytes() for path in Path(directory).iterdir())


def test_a_busy_segment_is_sealed_at_its_age_by_the_next_event(
    app_factory: Any, site_in: Any
) -> None:
    app = app_factory(SPOOL_SEGMENT_SECONDS=0.2)
    site_id = site_in(app)
    directory = app.extensions["ingest"].writer.settings.directory
    spool_event(app, site_id, START, "/a")
    time.sleep(0.25)
    spool_event(app, site_id, START, "/b")
    assert [s.sealed for s in spool.segments(directory)] == [True, False]


def test_a_full_spool_answers_503_and_accepts_nothing(app_factory: Any, make_user: Any) -> None:
    app = app_factory(SPOOL_MAX_BYTES=600)
    with app.app_context():
        from flask_tracking.tracking.models import Site
        from flask_tracking.users import accounts

        user = accounts.register("full@example.com", "correct horse battery")
        db.session.add(Site(owner_id=user.id, base_url="https://example.com"))
        db.session.commit()
    client = app.test_client()
    statuses = [
        client.post(
            "/api/event",
            json={"site": 1, "url": f"https://example.com/{n}"},
            headers={"User-Agent": FIREFOX},
        ).status_code
        for n in range(10)
    ]
    assert statuses[0] == 202
    assert 503 in statuses
    first_refused = statuses.index(503)
    assert set(statuses[first_refused:]) == {503}
    response = client.post(
        "/api/event",
        json={"site": 1, "url": "https://example.com/x"},
        headers={"User-Agent": FIREFOX},
    )
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["error"]["code"] == "overloaded"
    assert drain(app) == first_refused


def test_segments_rotate_past_their_size(app_factory: Any) -> None:
    app = app_factory(SPOOL_SEGMENT_BYTES=400)
    with app.app_context():
        from flask_tracking.tracking.models import Site
        from flask_tracking.users import accounts

        user = accounts.register("rotate@example.com", "correct horse battery")
        db.session.add(Site(owner_id=user.id, base_url="https://example.com"))
        db.session.commit()
        site = db.session.scalar(select(Site.id))
    for n in range(6):
        spool_event(app, site, START + timedelta(seconds=n), f"/{n}")
    names = os.listdir(app.config["SPOOL_DIR"])
    assert sum(name.endswith(".sealed") for name in names) >= 2
    assert drain(app) == 6


@pytest.fixture(autouse=True)
def _no_writer_threads(app: Flask) -> Iterator[None]:
    """These tests drive the writer by hand; make sure no background thread competes."""
    assert app.config["INGEST_WRITER"] == "off"
    yield


def test_day_boundaries_are_utc(app: Flask, site_id: int) -> None:
    ingest = app.extensions["ingest"]
    moment = datetime(2026, 1, 1, 23, 59, 59, tzinfo=UTC)
    ingest.spool.append(DropRecord(site_id, int(moment.timestamp() * 1000), "bot").to_line())
    drain(app)
    with app.app_context():
        store = current_store()
        d = tables(store.engine).drops.c
        assert store.fetch(select(d.day)) == [(_day_number(date(2026, 1, 1)),)]


def _day_number(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def test_shutdown_with_the_database_down_keeps_the_spool(
    app: Flask, site_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from flask_tracking.ingest import writer as writer_module

    spool_event(app, site_id, START, "/pending")

    def unavailable(*_args: Any) -> None:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(writer_module.Salts, "for_day", unavailable)
    stop = threading.Event()
    stop.set()
    app.extensions["ingest"].writer.run(stop)  # returns, having logged, instead of raising
    monkeypatch.undo()
    assert spool.segments(app.extensions["ingest"].writer.settings.directory)  # kept
    assert drain(app) == 1  # the next start stores it


def _marked_rows(app: Flask) -> tuple[list[Any], list[Any]]:
    """The open days' marked sessions and events, in a stable order."""
    t = tables("duckdb")
    with app.app_context():
        store = current_store()
        sessions = store.fetch(select(t.recent_sessions).order_by(*t.recent_sessions.c))
        events = store.fetch(select(t.recent_events).order_by(t.recent_events.c.eid))
    return sessions, events


@pytest.mark.parametrize("part_rows", [200_000, 7], ids=["at once", "in parts"])
def test_refreshing_only_the_new_visitors_gives_what_a_rebuild_gives(
    app: Flask, site_id: int, monkeypatch: pytest.MonkeyPatch, part_rows: int
) -> None:
    # Within today (UTC), so that no day is closed meanwhile: open days only.
    now = datetime.now(UTC).replace(microsecond=0)
    midnight = now.replace(hour=0, minute=0, second=0)
    base = max(now - timedelta(hours=3), midnight + timedelta(minutes=10))
    with app.app_context():
        store = current_store()
    rebuilds: list[bool] = []
    mark = store._mark_touched

    def recording(cursor: Any, *, full: bool, **options: Any) -> None:
        rebuilds.append(full)
        mark(cursor, full=full, **options)

    monkeypatch.setattr(store, "_mark_touched", recording)
    monkeypatch.setattr(store, "refresh_part_rows", part_rows)  # "in parts": 2 to 7 of them
    # Batches of events, each refreshed on its own: returning visitors (whose session goes
    # on, or whose new event starts a new session, or whose entry comes late), new visitors.
    visitors = [(f"81.2.69.{n}", FIREFOX if n % 2 else SAFARI) for n in range(1, 9)]
    for batch in range(6):
        for number, (ip, ua) in enumerate(visitors[: 3 + batch]):
            minutes = 10 + batch * (8 if number % 3 else 31) + number
            path = f"/p{(batch + number) % 4}"
            spool_event(app, site_id, base + timedelta(minutes=minutes), path, ip=ip, ua=ua)
            if number == 2:  # earlier than this visitor's other events, arriving late
                late = base + timedelta(minutes=5 - batch)
                spool_event(app, site_id, late, "/late", ip=ip, ua=ua)
        if batch % 2:
            at = base + timedelta(minutes=10 + batch)
            spool_event(app, site_id, at, "/x", name="Signup", ip="81.2.69.1")
        drain(app)  # stores the batch and refreshes: only the visitors it touched
    # The first refresh marks everything; each later one marks what was appended, and marks
    # whole only the visitor with an event before its last session (the "/late" ones).
    assert rebuilds == [True] + [False] * 5
    incremental = _marked_rows(app)
    assert len(incremental[1]) == count_rows(app, "recent") == 42
    with app.app_context():
        store._rewritten()  # as after any change but appends: everything is marked anew
        store.refresh()
    assert rebuilds[-1] is True
    assert _marked_rows(app) == incremental
    assert "/late" in {s.entry for s in stored_sessions(app)}


def test_a_new_sites_first_batch_of_known_values_is_stored(
    app: Flask, site_id: int, owner: User, make_site: Any
) -> None:
    # Its every value is in the dictionary cache already, so the only query before the insert
    # is the new site's last event id (DuckDB once refused the insert after it: a result not
    # read to the end). `flask-tracking demo` run twice hit it.
    spool_event(app, site_id, START, "/same")
    assert drain(app) == 1
    other = make_site(owner, "https://example.com")
    spool_event(app, other, START, "/same")
    assert drain(app) == 1
    assert count_rows(app, "events") == 2
