"""Queue a message (in the caller's transaction) and deliver what is due (the `mail` job)."""

from __future__ import annotations

import contextlib
import json
import logging
import smtplib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app, render_template
from flask_mailman import EmailMultiAlternatives
from sqlalchemy import delete, select, update

from flask_tracking.extensions import db
from flask_tracking.mail.models import OutgoingMail

logger = logging.getLogger("flask_tracking.mail")

LEASE = timedelta(minutes=5)  # a claimed message is anybody's again after this (a crash)
FIRST_RETRY = timedelta(seconds=30)  # then doubling, up to…
LONGEST_RETRY = timedelta(hours=1)
BATCH = 50  # messages per pass at most


def queue(
    to: str, kind: str, subject: str, *, headers: dict[str, str] | None = None, **context: Any
) -> OutgoingMail:
    """Render templates/mail/<kind>.txt and .html and add the message to the outbox, in the
    current transaction: it is sent once the caller commits, and not at all if it rolls back."""
    context = {"subject": subject, "to": to, **context}
    message = OutgoingMail(
        to_address=to,
        kind=kind,
        subject=subject,
        headers=json.dumps(headers) if headers else "",
        text_body=render_template(f"mail/{kind}.txt", **context),
        html_body=render_template(f"mail/{kind}.html", **context),
    )
    db.session.add(message)
    return message


@dataclass(frozen=True)
class Delivery:
    sent: int = 0
    retrying: int = 0
    given_up: int = 0


def retry_delay(attempts: int) -> timedelta:
    """Seconds before the next try after `attempts` failed ones: 30 s, 1 min, 2 min… 1 h."""
    delay: timedelta = FIRST_RETRY * 2 ** max(attempts - 1, 0)
    return min(delay, LONGEST_RETRY)


def deliver_due(now: datetime | None = None) -> Delivery:
    """Send the messages that are due (one SMTP connection for the batch); a failure is
    retried later with backoff, and given up after MAIL_MAX_ATTEMPTS (logged as an error)."""
    now = now or datetime.now(UTC)
    _forget_old(now)
    due = list(
        db.session.scalars(
            select(OutgoingMail.id)
            .where(
                OutgoingMail.sent_at.is_(None),
                OutgoingMail.failed_at.is_(None),
                OutgoingMail.next_attempt_at <= now,
            )
            .order_by(OutgoingMail.next_attempt_at, OutgoingMail.id)
            .limit(BATCH)
        )
    )
    claimed = [message_id for message_id in due if _claim(message_id, now)]
    if not claimed:
        return Delivery()
    counts = {"sent": 0, "retrying": 0, "given_up": 0}
    config = current_app.config
    connection = _Connection() if config["MAIL_SERVER"] else None
    try:
        for message_id in claimed:
            message = db.session.get(OutgoingMail, message_id)
            if message is None:  # deleted meanwhile (its account went)
                continue
            try:
                _send(message, connection)
            except (smtplib.SMTPException, OSError) as error:
                counts[_failed(message, error, now)] += 1
            else:
                message.sent_at = datetime.now(UTC)
                message.attempts += 1
                message.last_error = ""
                counts["sent"] += 1
            db.session.commit()
    finally:
        if connection is not None:
            connection.close()
    return Delivery(**counts)


class _Connection:
    """One SMTP connection for a batch, opened at the first message."""

    def __init__(self) -> None:
        self.backend: Any = None

    def get(self) -> Any:
        if self.backend is None:
            backend = current_app.extensions["mailman"].get_connection(fail_silently=False)
            try:
                backend.open()
            except BaseException:
                # Not kept: a connection whose STARTTLS or login failed is still open, and
                # the next message would go through it in the clear.
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    backend.close()
                raise
            self.backend = backend
        return self.backend

    def close(self) -> None:
        if self.backend is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.backend.close()
            self.backend = None


def _send(message: OutgoingMail, connection: _Connection | None) -> None:
    if connection is None:  # development: no MAIL_SERVER, the log is the mailbox
        logger.info(
            "mail not sent (MAIL_SERVER is not set) to %s: %s\n%s",
            message.to_address,
            message.subject,
            message.text_body,
        )
        return
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.text_body,
        from_email=current_app.config["MAIL_DEFAULT_SENDER"] or None,
        to=[message.to_address],
        headers={"Auto-Submitted": "auto-generated", **json.loads(message.headers or "{}")},
        connection=connection.get(),
    )
    email.attach_alternative(message.html_body, "text/html")
    try:
        email.send()
    except (smtplib.SMTPException, OSError):
        connection.close()  # the next message opens a fresh connection
        raise


def _failed(message: OutgoingMail, error: Exception, now: datetime) -> str:
    message.attempts += 1
    message.last_error = f"{type(error).__name__}: {error}"[:500]
    if message.attempts >= int(current_app.config["MAIL_MAX_ATTEMPTS"]):
        message.failed_at = now
        logger.error(
            "mail %s (%s) to %s given up after %d attempts: %s",
            message.id,
            message.kind,
            message.to_address,
            message.attempts,
            message.last_error,
        )
        return "given_up"
    delay = retry_delay(message.attempts)
    message.next_attempt_at = now + delay
    logger.warning(
        "mail %s (%s) not sent (%s); trying again in %.0f s",
        message.id,
        message.kind,
        message.last_error,
        delay.total_seconds(),
    )
    return "retrying"


def _claim(message_id: int, now: datetime) -> bool:
    """Move the message a lease ahead, if it is still due: whoever does that sends it."""
    result = db.session.execute(
        update(OutgoingMail)
        .where(
            OutgoingMail.id == message_id,
            OutgoingMail.sent_at.is_(None),
            OutgoingMail.failed_at.is_(None),
            OutgoingMail.next_attempt_at <= now,
        )
        .values(next_attempt_at=now + LEASE)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _forget_old(now: datetime) -> None:
    """Delete messages sent or given up more than MAIL_KEEP_DAYS ago (they hold links)."""
    cutoff = now - timedelta(days=float(current_app.config["MAIL_KEEP_DAYS"]))
    db.session.execute(
        delete(OutgoingMail).where(
            (OutgoingMail.sent_at < cutoff) | (OutgoingMail.failed_at < cutoff)
        )
    )
    db.session.commit()
