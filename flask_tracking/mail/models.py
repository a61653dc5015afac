"""The outbox: messages waiting to be sent, and recently sent ones (kept MAIL_KEEP_DAYS)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flask_tracking.extensions import db
from flask_tracking.users.models import utcnow


class OutgoingMail(db.Model):  # type: ignore[name-defined]
    """One message to one address, rendered when it was queued."""

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    # Which template: what the log and the tests look for, never the content.
    kind: Mapped[str] = mapped_column(String(40))
    # Extra headers as JSON (List-Unsubscribe on reports), or "".
    headers: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Due at this time; a sender claims a message by moving it a lease ahead (outbox.py).
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when the last attempt failed (and, with failed_at, when it was given up).
    last_error: Mapped[str] = mapped_column(String(500), default="")
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:
        return f"<OutgoingMail {self.id} {self.kind} attempts={self.attempts}>"
