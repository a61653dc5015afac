"""Erasing visitors' data from a site (a privacy right): the request, and carrying it out.

An admin of the site asks on its Erase page: one visitor by the visitor id a raw event shows
(a visitor-day: ids change every day), or every visitor with an event on a page in a time
range. The request is recorded (and in the requester's security log); the writer, which owns
the event store, carries it out within seconds (its `erasures` job): every row of those
visitor-days is deleted wherever it is stored, and the rollups of their days are recomputed
from what is left, so no report counts them any more.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from flask_tracking.events.store import EventStore, RollupBuilder
from flask_tracking.extensions import db
from flask_tracking.reports.ranges import as_utc
from flask_tracking.tracking.models import Erasure, Site
from flask_tracking.users import audit

MAX_SPAN_DAYS = 366


class ErasureError(ValueError):
    """A request the rules refuse, with the reason."""


def request_erasure(
    site: Site,
    user_id: int,
    *,
    visitor_id: int | None = None,
    page: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
) -> Erasure:
    """Record a request: a visitor id, or a page with a time range."""
    page = page.strip()
    if visitor_id is None and not page:
        raise ErasureError("Give a visitor id, or a page and a time range.")
    if visitor_id is not None and not 0 < visitor_id < 2**62:
        raise ErasureError("A visitor id is the number a raw event shows.")
    if page:
        if not page.startswith("/") or len(page) > 2048:
            raise ErasureError("A page is a path, starting with /.")
        if start is None or end is None or end <= start:
            raise ErasureError("Give the time range: a start before its end.")
        if (end - start).days > MAX_SPAN_DAYS:
            raise ErasureError(f"A time range is at most {MAX_SPAN_DAYS} days.")
    erasure = Erasure(
        site_id=site.id,
        requested_by=user_id,
        visitor_id=visitor_id,
        page=page,
        starts_at=start,
        ends_at=end,
    )
    db.session.add(erasure)
    what = f"visitor {visitor_id}" if visitor_id is not None else f"visitors of {page}"
    audit.record(user_id, "visitors_erased", f"{what} on {site.display_name}")
    db.session.commit()
    return erasure


def erasures_of(site: Site) -> list[Erasure]:
    return list(
        db.session.scalars(
            select(Erasure).where(Erasure.site_id == site.id).order_by(Erasure.id.desc())
        )
    )


def carry_out(store: EventStore, rollups: RollupBuilder, now: datetime | None = None) -> int:
    """Carry out every pending request (the writer's `erasures` job); return how many."""
    done = 0
    pending = db.session.scalars(
        select(Erasure).where(Erasure.done_at.is_(None)).order_by(Erasure.id)
    ).all()
    for erasure in pending:
        if erasure.visitor_id is not None:
            vds = [erasure.visitor_id]
        else:
            start, end = as_utc(erasure.starts_at), as_utc(erasure.ends_at)  # type: ignore[arg-type]
            vds = store.visitors_seen(
                erasure.site_id,
                erasure.page,
                int(start.timestamp() * 1000),
                int(end.timestamp() * 1000),
            )
        erasure.rows = store.erase_visitors(erasure.site_id, vds, rollups)
        erasure.visitors = len(vds)
        erasure.done_at = now or datetime.now(UTC)
        db.session.commit()
        done += 1
    return done
