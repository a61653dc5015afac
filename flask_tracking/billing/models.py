"""What billing keeps in the app database: each account's subscription, the provider events
already handled, and the payments (invoices) seen.

An account is a user and the sites they own. An account without a `Subscription` row is on
the plans file's default plan.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from flask_tracking.extensions import db
from flask_tracking.users.models import utcnow

# A subscription's life: a trial, then active (paid), past due (a payment failed: collection
# goes on, the owner is warned), ended (cancelled or unpaid; the plan's on_end then applies),
# locked (no collection, reports read-only, data purged after the retention).
TRIALING, ACTIVE, PAST_DUE, ENDED, LOCKED = "trialing", "active", "past_due", "ended", "locked"
# Usage against the plan: under it, past 80 %, past 100 % (within the grace margin), over.
OK, WARNED, FULL, OVER = "ok", "warned", "full", "over"


class Subscription(db.Model):  # type: ignore[name-defined]
    """An account's plan, the terms it was bought at, and where it stands."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True, index=True
    )
    plan: Mapped[str] = mapped_column(String(40))
    plan_version: Mapped[int] = mapped_column(Integer)
    # The plan as it was when bought (plans.Plan.terms()): a new version does not change it.
    terms_json: Mapped[str] = mapped_column(Text)
    price: Mapped[str] = mapped_column(String(20), default="")  # "eur-month"; "" when free
    status: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(16), default="")  # "", "local", "stripe"
    customer_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    subscription_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    trial_ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    current_period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The provider's time of the state held here: an older event does not overwrite it.
    state_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set by the `billing` job from the month's usage (service.check_quotas).
    quota_state: Mapped[str] = mapped_column(String(8), default=OK)
    quota_used: Mapped[int] = mapped_column(BigInteger, default=0)
    quota_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    @property
    def terms(self) -> dict[str, Any]:
        return dict(json.loads(self.terms_json))


class BillingEvent(db.Model):  # type: ignore[name-defined]
    """A provider event handled: the same id again changes nothing."""

    __tablename__ = "billing_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(60))
    # The provider's object it is about (a subscription's or invoice's id), when any.
    subject: Mapped[str] = mapped_column(String(255), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    outcome: Mapped[str] = mapped_column(String(200), default="")
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Payment(db.Model):  # type: ignore[name-defined]
    """An invoice of an account, paid or failed, as the provider reported it."""

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("provider", "invoice_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    invoice_id: Mapped[str] = mapped_column(String(255))
    number: Mapped[str] = mapped_column(String(80), default="")
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12))  # "paid" or "failed"
    url: Mapped[str] = mapped_column(String(2048), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
