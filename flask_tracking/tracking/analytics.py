"""Tables beside visits: sessions, salts, drop counts, set-aside rows, spool checkpoints."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
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


class RollupCounts:
    """What every rollup row counts (see reports/rollups.py for how visitors are attributed)."""

    visitors: Mapped[int] = mapped_column(BigInteger, default=0)
    visits: Mapped[int] = mapped_column(BigInteger, default=0)
    pageviews: Mapped[int] = mapped_column(BigInteger, default=0)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    bounces: Mapped[int] = mapped_column(BigInteger, default=0)
    duration: Mapped[float] = mapped_column(Float, default=0.0)


class RollupHour(RollupCounts, db.Model):  # type: ignore[name-defined]
    """A site's totals for one local hour (`start` is its UTC instant), for hourly charts."""

    __tablename__ = "rollup_hours"

    site_id: Mapped[int] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)


class RollupDay(RollupCounts, db.Model):  # type: ignore[name-defined]
    """A site's counts for one local day per dimension value ("total" has the value "")."""

    __tablename__ = "rollup_days"
    # Rows are replaced a whole day at a time, never upserted: values need no unique key, and
    # long referrers would not fit one.
    __table_args__ = (Index("ix_rollup_days_site_dimension_day", "site_id", "dimension", "day"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    dimension: Mapped[str] = mapped_column(String(16))
    day: Mapped[date] = mapped_column(Date)
    value: Mapped[str] = mapped_column(Text)


class RollupMonth(RollupCounts, db.Model):  # type: ignore[name-defined]
    """The sum of a local month's RollupDay rows, so that a year reads twelve rows a value."""

    __tablename__ = "rollup_months"
    # Rows are replaced a whole month at a time, never upserted: values need no unique key, and
    # long referrers would not fit one.
    __table_args__ = (
        Index("ix_rollup_months_site_dimension_month", "site_id", "dimension", "month"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    dimension: Mapped[str] = mapped_column(String(16))
    month: Mapped[date] = mapped_column(Date)
    value: Mapped[str] = mapped_column(Text)


class RollupState(db.Model):  # type: ignore[name-defined]
    """The zone a site's rollups were built in; reports use them only while it is the site's."""

    __tablename__ = "rollup_states"

    site_id: Mapped[int] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    timezone: Mapped[str] = mapped_column(String(64))
    built_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RollupDirty(db.Model):  # type: ignore[name-defined]
    """A UTC day of a site that received events since its rollups were last computed.

    Written in the same transaction as the events, so a crash never loses a refresh.
    """

    __tablename__ = "rollup_dirty"

    site_id: Mapped[int] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    marked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
