"""Tables of the write path kept in the SQL database: daily salts and set-aside spool records.

Salts live here, not in the event store, because every app node must hash with the same one.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Date,
    DateTime,
    LargeBinary,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from flask_tracking.extensions import db
from flask_tracking.users.models import utcnow


class Salt(db.Model):  # type: ignore[name-defined]
    """The random key of one UTC day's visitor hashes; deleted after 48 hours."""

    __tablename__ = "salts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RejectedEvent(db.Model):  # type: ignore[name-defined]
    """A spooled record the database refused, kept with its error for an operator to inspect."""

    __tablename__ = "rejected_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    rejected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    payload: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
