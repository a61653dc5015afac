"""Scheduled reports: who gets which site's numbers how often, and which periods went out."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Date, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flask_tracking.extensions import db
from flask_tracking.users.models import utcnow

if TYPE_CHECKING:
    from flask_tracking.tracking.models import Site


class ReportSchedule(db.Model):  # type: ignore[name-defined]
    """One recipient of a site's report: daily, weekly (on a weekday) or monthly (on the
    first), at a local hour of the site's zone (notify/schedule.py)."""

    __tablename__ = "report_schedules"
    __table_args__ = (UniqueConstraint("site_id", "email", "frequency"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    frequency: Mapped[str] = mapped_column(String(10))  # daily, weekly, monthly
    weekday: Mapped[int] = mapped_column(Integer, default=0)  # Monday = 0 (weekly only)
    hour: Mapped[int] = mapped_column(Integer, default=8)  # local hour, 0 to 23
    # The SHA-256 of the token in the link that confirms an outside address.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # An address that is not a member's confirms by a link first; members' are confirmed.
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    site: Mapped[Site] = relationship()


class ReportSent(db.Model):  # type: ignore[name-defined]
    """A period's report went to a recipient: the unique key is what makes it go once, across
    restarts and several writers."""

    __tablename__ = "report_sent"
    __table_args__ = (UniqueConstraint("schedule_id", "first_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("report_schedules.id", ondelete="CASCADE"), index=True
    )
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
