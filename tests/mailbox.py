"""Reading what the app queued for sending (the outbox) and following the links in it; and an
inbox for a real SMTP server on loopback (aiosmtpd) to read what arrived."""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy import select

from flask_tracking.extensions import db
from flask_tracking.mail.models import OutgoingMail


@dataclass(frozen=True)
class Queued:
    to: str
    kind: str
    subject: str
    text: str
    html: str

    def link(self, host: str = "localhost") -> str:
        """The path (and query) of the first link to this app (the test client's host) in the
        plain-text body — not, say, the address of the site a message is about."""
        for found in re.findall(r"https?://\S+", self.text):
            parts = urlsplit(found)
            if parts.hostname == host:
                return parts.path + (f"?{parts.query}" if parts.query else "")
        raise AssertionError(f"no link to {host} in: {self.text}")


def queued(app: Flask, *, to: str | None = None, kind: str | None = None) -> list[Queued]:
    """Every message in the outbox (sent or not), oldest first, optionally of one kind or to
    one address."""
    with app.app_context():
        query = select(OutgoingMail).order_by(OutgoingMail.id)
        if to is not None:
            query = query.where(OutgoingMail.to_address == to)
        if kind is not None:
            query = query.where(OutgoingMail.kind == kind)
        return [
            Queued(m.to_address, m.kind, m.subject, m.text_body, m.html_body)
            for m in db.session.scalars(query)
        ]


class Inbox:
    """An aiosmtpd handler keeping what it accepts; addresses in `refuse` get a 550."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], EmailMessage]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def link(self, to: str, base: str) -> str:
        """The first link under `base` in the plain text of the last message to `to`."""
        for _sender, recipients, message in reversed(self.received):
            if to in recipients:
                body = message.get_body(("plain",))
                assert body is not None
                for found in re.findall(r"https?://\S+", body.get_content()):
                    if found.startswith(base):
                        return str(found)
                raise AssertionError(f"no link under {base} in the mail to {to}")
        raise AssertionError(f"no mail to {to} arrived")
