"""Outgoing email: queued in the database with the request's own transaction, delivered by the
writer's scheduled `mail` job over SMTP (Flask-Mailman), retried with backoff.

A request never talks to an SMTP server: `queue()` renders the message (plain text and HTML
from templates/mail/) and adds it to the outbox; the job (ops/jobs.py) sends what is due. So a
slow or absent mail server never slows a page, and a message survives a restart. Without
MAIL_SERVER (development), the job writes each message to the log instead of sending it.
"""

from __future__ import annotations

from flask import Flask
from flask_mailman import Mail

from flask_tracking.config import as_flag, read_plainly
from flask_tracking.mail.outbox import deliver_due, queue

__all__ = ["deliver_due", "init_app", "queue"]

mail = Mail()

# The and the spec's names, read plainly from the environment as well as with the
# FLASK_TRACKING_ prefix (which wins): they are how every mail setting is usually spelt.
PLAIN = ("MAIL_SERVER", "MAIL_PORT", "MAIL_USE_TLS", "MAIL_USE_SSL", "MAIL_USERNAME",
         "MAIL_PASSWORD", "MAIL_FROM")  # fmt: skip


def settings_from(config: dict[str, object]) -> dict[str, object]:
    """Return the mail settings with their types: a port number, TLS flags as booleans."""

    def flag(key: str) -> bool:
        return as_flag(config.get(key))

    return {
        "MAIL_SERVER": str(config.get("MAIL_SERVER") or ""),
        "MAIL_PORT": int(str(config.get("MAIL_PORT") or 25)),
        "MAIL_USE_TLS": flag("MAIL_USE_TLS"),
        "MAIL_USE_SSL": flag("MAIL_USE_SSL"),
        "MAIL_USERNAME": str(config.get("MAIL_USERNAME") or "") or None,
        "MAIL_PASSWORD": str(config.get("MAIL_PASSWORD") or "") or None,
        "MAIL_DEFAULT_SENDER": str(config.get("MAIL_FROM") or ""),
    }


def init_app(app: Flask) -> None:
    """Read the mail settings (plain MAIL_* environment names too) and bind Flask-Mailman."""
    read_plainly(app.config, PLAIN)
    try:
        app.config.update(settings_from(app.config))
    except ValueError:
        raise RuntimeError(f"MAIL_PORT={app.config.get('MAIL_PORT')!r} is not a port") from None
    if app.config["MAIL_USE_TLS"] and app.config["MAIL_USE_SSL"]:
        raise RuntimeError("MAIL_USE_TLS (STARTTLS) and MAIL_USE_SSL cannot both be on")
    app.config.setdefault("MAIL_TIMEOUT", 30)
    app.config["MAIL_BACKEND"] = "flask_tracking.mail.backend.VerifyingEmailBackend"
    mail.init_app(app)
