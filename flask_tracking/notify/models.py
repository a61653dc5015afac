"""Scheduled reports (who gets which site's numbers how often, and which periods went out)
and alerts (rules, the channels they go to, and every delivery)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
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


alert_rule_channels = Table(
    "alert_rule_channels",
    db.Model.metadata,
    Column("rule_id", ForeignKey("alert_rules.id", ondelete="CASCADE"), primary_key=True),
    Column("channel_id", ForeignKey("alert_channels.id", ondelete="CASCADE"), primary_key=True),
)


class AlertChannel(db.Model):  # type: ignore[name-defined]
    """Where a site's alerts go: an email address, a signed webhook, or a Slack incoming
    webhook (notify/channels.py)."""

    __tablename__ = "alert_channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # email, webhook, slack
    name: Mapped[str] = mapped_column(String(80))
    target: Mapped[str] = mapped_column(String(2000))  # the address or the URL
    # A webhook's signing secret (shown to the site's editors, who put it in their receiver).
    secret: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AlertRule(db.Model):  # type: ignore[name-defined]
    """A condition on a site's traffic, read every ALERTS_INTERVAL, with its debounce state
    (notify/alerts.py)."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # spike, drop, change, goal, experiment
    threshold: Mapped[float] = mapped_column(Float, default=0.0)
    hours: Mapped[int] = mapped_column(Integer, default=1)  # the window of drop/change/goal
    # A goal rule's goal name (fires at >= threshold conversions in the window), or an
    # experiment rule's experiment key.
    subject: Mapped[str] = mapped_column(String(120), default="")
    below: Mapped[bool] = mapped_column(Boolean, default=False)  # a goal rule: < threshold
    consecutive: Mapped[int] = mapped_column(Integer, default=2)  # readings before it fires
    quiet_minutes: Mapped[int] = mapped_column(Integer, default=60)
    # The debounce state: readings over in a row, whether it is firing, when it last fired.
    streak: Mapped[int] = mapped_column(Integer, default=0)
    firing: Mapped[bool] = mapped_column(Boolean, default=False)
    fired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_value: Mapped[float | None] = mapped_column(Float)
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    site: Mapped[Site] = relationship()
    channels: Mapped[list[AlertChannel]] = relationship(
        secondary=alert_rule_channels, order_by="AlertChannel.id"
    )


class AlertDelivery(db.Model):  # type: ignore[name-defined]
    """One message to one channel — an alert firing, its recovery, or a test — and how its
    delivery went: retried with backoff until sent or given up (ALERTS_MAX_ATTEMPTS)."""

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("alert_channels.id", ondelete="CASCADE"), index=True
    )
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("alert_rules.id", ondelete="SET NULL"))
    event: Mapped[str] = mapped_column(String(10))  # fired, recovered, test
    payload: Mapped[str] = mapped_column(Text)  # the message, as JSON (notify/channels.py)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    channel: Mapped[AlertChannel] = relationship()
