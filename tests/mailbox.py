"""Reading what the app queued for sending (the outbox) and following the links in it."""

from __future__ import annotations

import re
from dataclasses import dataclass
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
