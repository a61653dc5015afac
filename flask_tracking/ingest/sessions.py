"""Sessions: a visitor's events with gaps under 30 minutes, kept up to date batch by batch.

Plain rows and SQLAlchemy Core: one SELECT for the batch's visitors, then one executemany
INSERT for new sessions and one executemany UPDATE for extended ones.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, tuple_, update

from flask_tracking.extensions import db
from flask_tracking.ingest.visitors import session_id
from flask_tracking.tracking.analytics import Session
from flask_tracking.tracking.models import EventContext

GAP = timedelta(minutes=30)
# "PageLoad" is what the original tutorial's image snippet sends for a page view.
PAGEVIEW_NAMES = frozenset({"pageview", "PageLoad"})
# Context a session takes from its first event.
FIRST_EVENT_FIELDS = EventContext.CONTEXT_FIELDS
SESSION_COLUMNS = (
    "id",
    "site_id",
    "visitor_id",
    "started_at",
    "ended_at",
    "entry_page",
    "exit_page",
    "pageviews",
    "events",
    "is_bounce",
    *FIRST_EVENT_FIELDS,
)
Row = dict[str, Any]


def as_utc(moment: datetime) -> datetime:
    """Return an aware UTC datetime (SQLite hands back naive ones)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def assign_sessions(rows: list[Row]) -> None:
    """Set each row's session_id, creating or extending sessions in the current transaction."""
    if not rows:
        return
    known = _load_sessions(rows)
    created: dict[int, Row] = {}
    changed: dict[int, Row] = {}
    for row in sorted(rows, key=lambda r: r["date"]):
        moment = as_utc(row["date"])
        candidates = known[(row["site_id"], row["visitor_id"])]
        session = next(
            (s for s in candidates if s["started_at"] - GAP <= moment <= s["ended_at"] + GAP), None
        )
        if session is None:
            session = _start(row, moment)
            candidates.append(session)
            created[session["id"]] = session
        elif session["id"] not in created:
            changed[session["id"]] = session
        _extend(session, row, moment)
        row["session_id"] = session["id"]
    if created:
        db.session.execute(insert(Session.__table__), list(created.values()))
    if changed:
        table = Session.__table__
        values: dict[str, Any] = {name: bindparam(name) for name in SESSION_COLUMNS if name != "id"}
        statement = update(table).where(table.c.id == bindparam("_id")).values(values)
        db.session.execute(statement, [{**s, "_id": s["id"]} for s in changed.values()])


def _load_sessions(rows: list[Row]) -> defaultdict[tuple[int, int], list[Row]]:
    keys = list({(row["site_id"], row["visitor_id"]) for row in rows})
    earliest = min(as_utc(row["date"]) for row in rows) - GAP
    known: defaultdict[tuple[int, int], list[Row]] = defaultdict(list)
    table = Session.__table__
    columns = [table.c[name] for name in SESSION_COLUMNS]
    for start in range(0, len(keys), 500):  # keep the IN list within every driver's limits
        query = select(*columns).where(
            tuple_(table.c.site_id, table.c.visitor_id).in_(keys[start : start + 500]),
            table.c.ended_at >= earliest,
        )
        for found in db.session.execute(query).mappings():
            session = dict(found)
            session["started_at"] = as_utc(session["started_at"])
            session["ended_at"] = as_utc(session["ended_at"])
            known[(session["site_id"], session["visitor_id"])].append(session)
    return known


def _start(row: Row, moment: datetime) -> Row:
    millis = int(moment.timestamp() * 1000)
    session: Row = {
        "id": session_id(row["visitor_id"], millis),
        "site_id": row["site_id"],
        "visitor_id": row["visitor_id"],
        "started_at": moment,
        "ended_at": moment,
        "entry_page": row.get("pathname"),
        "exit_page": row.get("pathname"),
        "pageviews": 0,
        "events": 0,
        "is_bounce": True,
    }
    for name in FIRST_EVENT_FIELDS:
        session[name] = row.get(name)
    return session


def _extend(session: Row, row: Row, moment: datetime) -> None:
    session["events"] += 1
    is_pageview = row["event"] in PAGEVIEW_NAMES
    if is_pageview:
        session["pageviews"] += 1
    if moment < session["started_at"]:  # a late event from before the session's first one
        session["started_at"] = moment
        if is_pageview:
            session["entry_page"] = row.get("pathname")
        for name in FIRST_EVENT_FIELDS:
            session[name] = row.get(name)
    if moment >= session["ended_at"]:
        session["ended_at"] = moment
        if is_pageview:
            session["exit_page"] = row.get("pathname")
    session["is_bounce"] = session["pageviews"] <= 1
