"""Sessions: a visitor's events with gaps under 30 minutes, kept up to date batch by batch."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, tuple_

from flask_tracking.extensions import db
from flask_tracking.ingest.visitors import session_id
from flask_tracking.tracking.analytics import Session
from flask_tracking.tracking.models import EventContext

GAP = timedelta(minutes=30)
# "PageLoad" is what the original tutorial's image snippet sends for a page view.
PAGEVIEW_NAMES = frozenset({"pageview", "PageLoad"})
# Context a session takes from its first event.
FIRST_EVENT_FIELDS = EventContext.CONTEXT_FIELDS


def as_utc(moment: datetime) -> datetime:
    """Return an aware UTC datetime (SQLite hands back naive ones)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def assign_sessions(rows: list[dict[str, Any]]) -> None:
    """Set each row's session_id, creating or extending sessions in the current transaction."""
    if not rows:
        return
    known = _load_sessions(rows)
    for row in sorted(rows, key=lambda r: r["date"]):
        key = (row["site_id"], row["visitor_id"])
        moment = as_utc(row["date"])
        session = _find(known[key], moment)
        if session is None:
            session = _start(row, moment)
            known[key].append(session)
            db.session.add(session)
        _extend(session, row, moment)
        row["session_id"] = session.id


def _load_sessions(rows: list[dict[str, Any]]) -> defaultdict[tuple[int, int], list[Session]]:
    keys = {(row["site_id"], row["visitor_id"]) for row in rows}
    earliest = min(as_utc(row["date"]) for row in rows) - GAP
    known: defaultdict[tuple[int, int], list[Session]] = defaultdict(list)
    key_list = list(keys)
    for start in range(0, len(key_list), 500):  # keep the IN list within every driver's limits
        chunk = key_list[start : start + 500]
        query = select(Session).where(
            tuple_(Session.site_id, Session.visitor_id).in_(chunk), Session.ended_at >= earliest
        )
        for session in db.session.scalars(query):
            session.started_at = as_utc(session.started_at)
            session.ended_at = as_utc(session.ended_at)
            known[(session.site_id, session.visitor_id)].append(session)
    return known


def _find(candidates: list[Session], moment: datetime) -> Session | None:
    for session in candidates:
        if session.started_at - GAP <= moment <= session.ended_at + GAP:
            return session
    return None


def _start(row: dict[str, Any], moment: datetime) -> Session:
    millis = int(moment.timestamp() * 1000)
    session = Session(
        id=session_id(row["visitor_id"], millis),
        site_id=row["site_id"],
        visitor_id=row["visitor_id"],
        started_at=moment,
        ended_at=moment,
        entry_page=row.get("pathname"),
        exit_page=row.get("pathname"),
        pageviews=0,
        events=0,
        is_bounce=True,
    )
    for name in FIRST_EVENT_FIELDS:
        setattr(session, name, row.get(name))
    return session


def _extend(session: Session, row: dict[str, Any], moment: datetime) -> None:
    session.events += 1
    is_pageview = row["event"] in PAGEVIEW_NAMES
    if is_pageview:
        session.pageviews += 1
    if moment < session.started_at:  # a late event from before the session's first one
        session.started_at = moment
        if is_pageview:
            session.entry_page = row.get("pathname")
        for name in FIRST_EVENT_FIELDS:
            setattr(session, name, row.get(name))
    if moment >= session.ended_at:
        session.ended_at = moment
        if is_pageview:
            session.exit_page = row.get("pathname")
    session.is_bounce = session.pageviews <= 1
