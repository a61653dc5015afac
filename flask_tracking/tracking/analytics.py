"""Tables beside visits: sessions, salts, drop counts, set-aside rows, spool checkpoints."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from flask_tracking.extensions import db
from flask_tracking.tracking.models import EventContext
from flask_tracking.users.models import utcnow


class Session(EventContext, db.Model):  # type: ignore[name-defined]
    """A visitor's events with gaps under 30 minutes, summarised with its first event's context."""

    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_site_visitor_end", "site_id", "visitor_id", "ended_at"),
        Index("ix_sessions_site_start", "site_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    visitor_id: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    entry_page: Mapped[str | None] = mapped_column(String(2048))
    exit_page: Mapped[str | None] = mapped_column(String(2048))
    pageviews: Mapped[int] = mapped_column(Integer, default=0)
    events: Mapped[int] = mapped_column(Integer, default=0)
    is_bounce: Mapped[bool] = mapped_column(Boolean, default=True)

    @property
    def duration_seconds(self) -> float:
        """Return the time between the first and the last event."""
        return (self.ended_at - self.started_at).total_seconds()


class Salt(db.Model):  # type: ignore[name-defined]
    """The random key of one UTC day's visitor hashes; deleted after 48 hours."""

    __tablename__ = "salts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DroppedCount(db.Model):  # type: ignore[name-defined]
    """How many events a site had dropped on a day, per reason (bot, dnt, spam, …)."""

    __tablename__ = "dropped_events"

    site_id: Mapped[int] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class RejectedEvent(db.Model):  # type: ignore[name-defined]
    """A spooled record the database refused, kept with its error for an operator to inspect."""

    __tablename__ = "rejected_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    rejected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    payload: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)


class SpoolCheckpoint(db.Model):  # type: ignore[name-defined]
    """How far the writer has stored a spool segment, committed with the rows it stored."""

    __tablename__ = "spool_checkpoints"

    segment: Mapped[str] = mapped_column(String(255), primary_key=True)
    offset: Mapped[int] = mapped_column(BigInteger)
