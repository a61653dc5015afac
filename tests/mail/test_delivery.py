"""Sending the outbox to a real SMTP server on loopback (aiosmtpd): what arrives, retries
with backoff while the server is away, giving up, STARTTLS with the certificate verified and
a login, and the log as the mailbox when no server is configured."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from flask import Flask
from sqlalchemy import select

from flask_tracking.extensions import db
from flask_tracking.mail import deliver_due
from flask_tracking.mail.models import OutgoingMail
from flask_tracking.mail.outbox import Delivery
from flask_tracking.ops.doctor import examine
from flask_tracking.users import accounts
from tests.conftest import make_app
from tests.mailbox import Inbox

pytestmark = pytest.mark.integration

USER, SECRET = "relay-user", "relay-secret"


def relay_login(_server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any) -> Any:
    """aiosmtpd's authenticator: only USER with SECRET may send."""
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        SECRET.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def inbox(unused_port: int) -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=unused_port)
    controller.start()
    try:
        yield handler, unused_port
    finally:
        controller.stop()


def queue_reset(app: Flask, address: str = "owner@example.com") -> None:
    """An account, and a reset link asked for it through the page."""
    with app.app_context():
        accounts.register(address, "correct horse battery", "Dana <b>", verified=True)
    app.test_client().post("/password/forgot", data={"email": address})


def run_mail_job(app: Flask) -> Any:
    """What the writer does every MAIL_INTERVAL: the scheduled `mail` job."""
    [(name, outcome)] = app.extensions["ingest"].writer.schedule.run_all("mail")
    assert name == "mail"
    return outcome


def outbox(app: Flask, to: str | None = None) -> list[OutgoingMail]:
    """The app's outbox (to one address): on PostgreSQL the apps of a test share a database."""
    with app.app_context():
        query = select(OutgoingMail).order_by(OutgoingMail.id)
        if to is not None:
            query = query.where(OutgoingMail.to_address == to)
        rows = list(db.session.scalars(query))
        db.session.expunge_all()
        return rows


def test_the_mail_job_sends_a_message_in_plain_text_and_html(
    app_factory: Any, inbox: tuple[Inbox, int]
) -> None:
    handler, port = inbox
    app = app_factory(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_FROM="Stats <s@example.org>")
    queue_reset(app)
    assert handler.received == []  # nothing leaves on the request path
    assert "1 message(s) sent" in run_mail_job(app).summary
    [(sender, recipients, message)] = handler.received
    assert (sender, recipients) == ("s@example.org", ["owner@example.com"])
    assert message["Subject"] == "Reset your Flask-Tracking password"
    assert message["From"] == "Stats <s@example.org>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert "/password/reset/" in text.get_content()
    assert "Dana <b>" in text.get_content()
    assert "Dana &lt;b&gt;" in html.get_content()  # a name is text in the HTML part too
    [row] = outbox(app)
    assert row.sent_at is not None and row.attempts == 1
    assert run_mail_job(app).summary.startswith("0 message(s) sent")  # sent once only


def test_a_message_waits_while_the_server_is_away_then_goes(
    app_factory: Any, unused_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_factory(MAIL_SERVER="127.0.0.1", MAIL_PORT=unused_port)
    queue_reset(app)
    start = datetime.now(UTC)
    with app.app_context(), caplog.at_level(logging.WARNING, "flask_tracking.mail"):
        assert deliver_due(start) == Delivery(retrying=1)
    [row] = outbox(app)
    assert row.attempts == 1 and row.sent_at is None and row.failed_at is None
    assert "ConnectionRefusedError" in row.last_error
    assert "trying again in 30 s" in caplog.text
    with app.app_context():
        assert deliver_due(start + timedelta(seconds=20)) == Delivery()  # not due yet
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=unused_port)
    controller.start()
    try:
        with app.app_context():
            assert deliver_due(start + timedelta(seconds=31)) == Delivery(sent=1)
    finally:
        controller.stop()
    assert len(handler.received) == 1


def test_a_refused_address_is_retried_with_backoff_and_given_up_at_the_last_attempt(
    app_factory: Any, inbox: tuple[Inbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    handler, port = inbox
    handler.refuse.add("owner@example.com")
    app = app_factory(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_MAX_ATTEMPTS=3)
    queue_reset(app)
    queue_reset(app, "other@example.com")  # the same batch still delivers the others
    now = datetime.now(UTC)
    with app.app_context():
        assert deliver_due(now) == Delivery(sent=1, retrying=1)
        assert deliver_due(now + timedelta(seconds=31)) == Delivery(retrying=1)
        assert deliver_due(now + timedelta(seconds=31 + 59)) == Delivery()  # 60 s this time
        with caplog.at_level(logging.ERROR, "flask_tracking.mail"):
            assert deliver_due(now + timedelta(seconds=31 + 61)) == Delivery(given_up=1)
        assert deliver_due(now + timedelta(days=1)) == Delivery()
    refused = next(row for row in outbox(app) if row.to_address == "owner@example.com")
    assert refused.failed_at is not None and refused.attempts == 3
    assert "SMTPRecipientsRefused" in refused.last_error
    assert "given up after 3 attempts" in caplog.text
    assert [recipients for _from, recipients, _m in handler.received] == [["other@example.com"]]


def test_messages_are_deleted_some_days_after_they_went(
    app_factory: Any, inbox: tuple[Inbox, int]
) -> None:
    _handler, port = inbox
    app = app_factory(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_KEEP_DAYS=7)
    queue_reset(app)
    now = datetime.now(UTC)
    with app.app_context():
        assert deliver_due(now) == Delivery(sent=1)
        deliver_due(now + timedelta(days=6))
        assert len(outbox(app)) == 1
        deliver_due(now + timedelta(days=7, minutes=1))
    assert outbox(app) == []  # a reset link does not sit in the database


@pytest.fixture
def tls_relay(unused_port: int, tmp_path: Path) -> Iterator[tuple[Inbox, int, Path]]:
    """A relay that requires STARTTLS and a login, with a certificate from a private CA."""
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "relay-ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    handler = Inbox()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=unused_port,
        tls_context=server_context,
        require_starttls=True,
        authenticator=relay_login,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield handler, unused_port, ca_file
    finally:
        controller.stop()


def test_starttls_checks_the_certificate_and_then_logs_in(
    app_factory: Any, tls_relay: tuple[Inbox, int, Path]
) -> None:
    handler, port, ca_file = tls_relay
    settings = {
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": port,
        "MAIL_USE_TLS": "true",  # as the environment gives it
        "MAIL_USERNAME": USER,
        "MAIL_PASSWORD": SECRET,
    }
    # Without the relay's CA the certificate is not trusted: nothing is sent, not even the login.
    # The second message must not slip through the connection whose STARTTLS failed.
    untrusting = app_factory(**settings)
    queue_reset(untrusting)
    queue_reset(untrusting, "second@example.com")
    with untrusting.app_context():
        assert deliver_due() == Delivery(retrying=2)
    assert "CERTIFICATE_VERIFY_FAILED" in outbox(untrusting, "owner@example.com")[0].last_error
    # A wrong password is refused by the relay.
    wrong = app_factory(**{**settings, "MAIL_PASSWORD": "not it", "MAIL_CA_FILE": str(ca_file)})
    queue_reset(wrong, "wrong@example.com")
    with wrong.app_context():
        assert deliver_due() == Delivery(retrying=1)
    assert "SMTPAuthenticationError" in outbox(wrong, "wrong@example.com")[0].last_error
    assert handler.received == []
    trusting = app_factory(**settings, MAIL_CA_FILE=str(ca_file))
    queue_reset(trusting, "trusting@example.com")
    with trusting.app_context():
        assert deliver_due() == Delivery(sent=1)
    [(_sender, recipients, _message)] = handler.received
    assert recipients == ["trusting@example.com"]


def test_without_a_server_the_log_is_the_mailbox(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    queue_reset(app)
    with caplog.at_level(logging.INFO, "flask_tracking.mail"):
        assert "1 message(s) sent" in run_mail_job(app).summary
    assert "MAIL_SERVER is not set" in caplog.text
    assert "/password/reset/" in caplog.text


def test_doctor_says_where_mail_goes_what_is_stuck_and_where_links_point(
    app_factory: Any, inbox: tuple[Inbox, int]
) -> None:
    def mail_findings(app: Flask) -> dict[str, tuple[str, str]]:
        wanted = {"mail", "outbox", "public URL"}
        return {f.what: (f.level, f.detail) for f in examine(app) if f.what in wanted}

    bare = mail_findings(app_factory())
    assert bare["mail"][0] == "warn" and "written to the log" in bare["mail"][1]
    assert bare["public URL"][0] == "warn"
    _handler, port = inbox
    app = app_factory(
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=port,
        MAIL_USE_TLS=True,
        MAIL_MAX_ATTEMPTS=1,
        PUBLIC_URL="https://stats.example.org",
    )
    queue_reset(app)
    queue_reset(app, "second@example.com")
    found = mail_findings(app)
    assert found["mail"] == ("ok", f"127.0.0.1:{port} with STARTTLS")
    assert found["outbox"] == ("ok", "2 waiting")
    assert found["public URL"] == ("ok", "https://stats.example.org")
    with app.app_context():
        deliver_due()  # the test relay offers no STARTTLS: both fail, and one attempt is all
    assert mail_findings(app)["outbox"] == ("warn", "0 waiting, 2 given up (see the log's errors)")


def test_mail_settings_come_from_the_environment_by_their_plain_names(
    app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAIL_SERVER", "smtp.example.org")
    monkeypatch.setenv("MAIL_PORT", "587")
    monkeypatch.setenv("MAIL_USE_TLS", "yes")
    monkeypatch.setenv("MAIL_FROM", "Stats <stats@example.org>")
    monkeypatch.setenv("FLASK_TRACKING_MAIL_USERNAME", '"prefixed"')
    monkeypatch.setenv("MAIL_USERNAME", "plain")  # the prefixed name wins
    app = app_factory()
    assert app.config["MAIL_SERVER"] == "smtp.example.org"
    assert app.config["MAIL_PORT"] == 587
    assert app.config["MAIL_USE_TLS"] is True and app.config["MAIL_USE_SSL"] is False
    assert app.config["MAIL_DEFAULT_SENDER"] == "Stats <stats@example.org>"
    assert app.config["MAIL_USERNAME"] == "prefixed"
    monkeypatch.setenv("MAIL_PORT", "submission")
    with pytest.raises(RuntimeError, match="MAIL_PORT='submission' is not a port"):
        make_app()
    monkeypatch.setenv("MAIL_PORT", "465")
    monkeypatch.setenv("MAIL_USE_SSL", "1")
    with pytest.raises(RuntimeError, match="cannot both be on"):
        make_app()


def test_implicit_tls_checks_the_certificate_too(
    app_factory: Any, unused_port: int, tmp_path: Path
) -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "relay-ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    handler = Inbox()
    controller = Controller(
        handler, hostname="127.0.0.1", port=unused_port, ssl_context=server_context
    )
    controller.start()
    try:
        settings = {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": unused_port, "MAIL_USE_SSL": True}
        untrusting = app_factory(**settings)
        queue_reset(untrusting)
        with untrusting.app_context():
            assert deliver_due() == Delivery(retrying=1)
        assert "CERTIFICATE_VERIFY_FAILED" in outbox(untrusting)[0].last_error
        trusting = app_factory(**settings, MAIL_CA_FILE=str(ca_file))
        queue_reset(trusting, "trusting@example.com")
        with trusting.app_context():
            assert deliver_due() == Delivery(sent=1)
    finally:
        controller.stop()
    assert len(handler.received) == 1
