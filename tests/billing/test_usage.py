"""Usage is what the writer stored, per account and UTC month, exactly: under concurrent
ingestion, across a month boundary, with a line spooled twice, and for several accounts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from flask_tracking import ingest
from flask_tracking.billing import usage
from flask_tracking.ingest.records import EventRecord
from tests.billing.conftest import CHROME, send_events
from tests.conftest import stored_events


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def _record(site_id: int, at_ms: int, n: int) -> EventRecord:
    return EventRecord(
        event_id=f"{n:032x}",
        site_id=site_id,
        timestamp_ms=at_ms,
        name="pageview",
        url=f"https://example.com/{n}",
        ip=f"8.8.8.{n % 250 + 1}",
        user_agent=CHROME,
    )


def test_usage_counts_stored_events_exactly_under_concurrent_ingestion(
    app_factory: Any, plans_file: str, site_in: Any
) -> None:
    app = app_factory(BILLING_PROVIDER="local", BILLING_PLANS_FILE=plans_file)
    sites = [site_in(app, email=f"owner{n}@example.com") for n in range(3)]
    with app.app_context():
        from flask_tracking.tracking.models import Site

        owners = {s: app.extensions["sqlalchemy"].session.get(Site, s).owner_id for s in sites}
    accepted: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def post(site_id: int) -> None:
        answers = send_events(app.test_client(), site_id, 60)
        with lock:
            accepted.extend(site_id for r in answers if "X-Tracking-Dropped" not in r.headers)

    def writer() -> None:  # the writer stores batch after batch while events arrive
        while not stop.is_set():
            ingest.drain(app)

    threads = [threading.Thread(target=post, args=(s,)) for s in sites for _ in range(2)]
    background = threading.Thread(target=writer)
    background.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    background.join()
    events = stored_events(app)
    assert len(accepted) == len(events) == 360
    with app.app_context():
        used = usage.by_account(usage.month_of(datetime.now(UTC)))
    for site_id, owner in owners.items():
        assert used[owner] == sum(1 for e in events if e.site_id == site_id) == 120


def test_usage_follows_the_utc_month_of_each_event(app: Flask, site_in: Any) -> None:
    site_id = site_in(app)
    spool = app.extensions["ingest"].spool
    before, after = _ms("2026-11-30T23:59:59.900"), _ms("2026-12-01T00:00:00.100")
    for n in range(5):
        spool.append(_record(site_id, before, n).to_line())
    for n in range(5, 12):
        spool.append(_record(site_id, after, n).to_line())
    spool.append(_record(site_id, after, 11).to_line())  # the same line again: stored once
    ingest.drain(app)
    assert len(stored_events(app)) == 12
    with app.app_context():
        owner = next(iter(usage.by_account(202611)))
        assert usage.by_account(202611) == {owner: 5}
        assert usage.by_account(202612) == {owner: 7}
        assert usage.history(owner) == [(202612, 7), (202611, 5)]
        assert usage.this_month(owner, datetime(2026, 12, 15, tzinfo=UTC)) == 7


def test_the_forecast_projects_the_month_to_date_rate() -> None:
    mid = datetime(2026, 11, 16, tzinfo=UTC)  # 15 of November's 30 days gone
    assert usage.forecast(1000, 5000, mid).projected == 2000
    assert usage.forecast(1000, 5000, mid).percent == 20
    start = datetime(2026, 11, 1, 0, 10, tzinfo=UTC)  # an hour at least: no wild guesses
    assert usage.forecast(10, 5000, start).projected == 10 * 30 * 24
    assert usage.forecast(0, 0).percent == 0
