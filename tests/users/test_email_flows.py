"""What goes by email: a forgotten password, a confirmed address, a changed one — through the
app's pages, reading the outbox the writer's `mail` job sends from (tests/mail has the SMTP
side), and the rules for new passwords."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous.timed import TimestampSigner

from flask_tracking.extensions import db
from flask_tracking.users import accounts
from flask_tracking.users.models import User
from tests.conftest import PASSWORD
from tests.mailbox import queued

NEW_PASSWORD = "a fresh hard one"


def forgot(client: FlaskClient, email: str, **kwargs: Any) -> Any:
    return client.post("/password/forgot", data={"email": email}, **kwargs)


def reset(client: FlaskClient, path: str, password: str = NEW_PASSWORD, confirm: str = "") -> Any:
    return client.post(path, data={"password": password, "confirm": confirm or password})


def test_a_reset_answer_is_the_same_whether_or_not_the_address_has_an_account(
    app: Flask, client: FlaskClient, owner: User
) -> None:
    known = forgot(client, owner.email.upper())
    unknown = forgot(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 200

    def answer(page: bytes) -> str:
        text = page.decode()
        return re.sub(r"(OWNER@EXAMPLE\.COM|nobody@example\.com)", "ADDRESS", text)

    assert answer(known.data) == answer(unknown.data)
    assert "a link to choose a new password is on its way" in " ".join(
        known.get_data(as_text=True).split()
    )
    [sent] = queued(app)
    assert (sent.to, sent.kind) == (owner.email, "password_reset")


def test_a_reset_link_sets_the_password_once_and_logs_every_other_browser_out(
    app: Flask, owner: User, auth: Any
) -> None:
    other_browser = app.test_client()
    assert (
        other_browser.post("/login/", data={"email": owner.email, "password": PASSWORD}).status_code
        == 302
    )
    client = app.test_client()
    forgot(client, owner.email)
    link = queued(app)[0].link()
    assert link.startswith("/password/reset/")
    page = client.get(link)
    assert page.status_code == 200 and owner.email in page.get_data(as_text=True)
    # Two different passwords, or a weak one, are refused and change nothing.
    assert reset(client, link, NEW_PASSWORD, "something else").status_code == 400
    assert reset(client, link, "password1").status_code == 400
    done = reset(client, link)
    assert done.status_code == 302
    assert client.get("/settings/").status_code == 200  # this browser is logged in afresh
    assert other_browser.get("/settings/").status_code == 302  # the other was logged out
    # The link worked once: the password it was made for is gone.
    assert client.get(link).status_code == 400
    assert reset(client, link, "yet another strong one").status_code == 400
    fresh = app.test_client()
    assert (
        fresh.post("/login/", data={"email": owner.email, "password": PASSWORD}).status_code == 200
    )
    assert (
        fresh.post("/login/", data={"email": owner.email, "password": NEW_PASSWORD}).status_code
        == 302
    )


def test_a_reset_link_expires_and_an_altered_one_is_refused(
    app: Flask, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = {"now": 1_767_261_600}  # the signer's clock, in seconds
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _self: clock["now"])
    client = app.test_client()
    forgot(client, owner.email)
    link = queued(app)[0].link()
    clock["now"] += 3599
    assert client.get(link).status_code == 200
    clock["now"] += 2  # past PASSWORD_RESET_MAX_AGE (an hour)
    assert client.get(link).status_code == 400
    assert "expired" in client.get(link).get_data(as_text=True)
    assert reset(client, link).status_code == 400
    clock["now"] -= 1800
    altered = link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb")
    assert client.get(altered).status_code == 400
    assert client.get("/password/reset/not-a-token").status_code == 400
    assert reset(client, "/password/reset/not-a-token").status_code == 400


def add_user(app: Flask, email: str = "owner@example.com") -> None:
    """An account in this app's database, made as `init` makes one (confirmed)."""
    with app.app_context():
        accounts.register(email, PASSWORD, verified=True)


def test_asking_for_reset_links_is_rate_limited_per_address_and_per_client(
    app_factory: Any,
) -> None:
    app = app_factory(PASSWORD_RESET_RATE_LIMIT_EMAIL="2 per hour")
    add_user(app)
    client = app.test_client()
    answers = [forgot(client, "owner@example.com").status_code for _ in range(4)]
    assert answers == [200, 200, 429, 429]
    assert len(queued(app)) == 2  # no more mail to the address than the limit allows
    assert forgot(client, "someone-else@example.com").status_code == 200
    app = app_factory(PASSWORD_RESET_RATE_LIMIT_IP="3 per hour")
    client = app.test_client()
    answers = [forgot(client, f"n{n}@example.com").status_code for n in range(5)]
    assert answers == [200, 200, 200, 429, 429]


def test_registration_sends_a_confirmation_link_which_confirms_on_a_post(
    app: Flask, client: FlaskClient
) -> None:
    made = client.post(
        "/register/", data={"email": "new@example.com", "password": PASSWORD, "name": "New"}
    )
    assert made.status_code == 302
    [mail] = queued(app, kind="verify_email")
    assert mail.to == "new@example.com"
    link = mail.link()
    # A GET (a mail scanner following links) shows a button and confirms nothing.
    assert client.get(link).status_code == 200
    assert verified_at("new@example.com", app) is None
    assert client.post(link).status_code == 302
    assert verified_at("new@example.com", app) is not None
    assert client.post("/verify-email/garbage").status_code == 400


def verified_at(email: str, app: Flask) -> Any:
    with app.app_context():
        user = db.session.query(User).filter_by(email=email).one()
        return user.email_verified_at


def test_with_verification_required_an_unconfirmed_account_waits_at_the_confirmation_page(
    app_factory: Any,
) -> None:
    app = app_factory(REQUIRE_EMAIL_VERIFICATION=True)
    client = app.test_client()
    made = client.post("/register/", data={"email": "new@example.com", "password": PASSWORD})
    assert made.headers["Location"].endswith("/verify-email/")
    for path in ("/", "/sites/", "/settings/"):
        answer = client.get(path)
        assert answer.status_code == 302 and answer.headers["Location"].endswith("/verify-email/")
    assert "new@example.com" in client.get("/verify-email/").get_data(as_text=True)
    assert client.post("/verify-email/").status_code == 302  # send it again
    first, again = queued(app, kind="verify_email")
    assert first.link() == again.link() or first.to == again.to
    assert client.post(again.link()).status_code == 302
    assert client.get("/sites/").status_code == 200
    assert client.get("/verify-email/").status_code == 302  # nothing left to confirm


def test_accounts_made_by_the_operator_need_no_confirmation(app_factory: Any) -> None:
    app = app_factory(REQUIRE_EMAIL_VERIFICATION=True)
    add_user(app)
    client = app.test_client()
    client.post("/login/", data={"email": "owner@example.com", "password": PASSWORD})
    assert client.get("/sites/").status_code == 200


def test_a_changed_address_confirmation_is_refused_once_the_address_was_taken_meanwhile(
    app: Flask, client: FlaskClient, logged_in: User, make_user: Any
) -> None:
    client.post(
        "/settings/account",
        data={"name": "", "email": "wanted@example.com", "current": PASSWORD},
    )
    link = queued(app, kind="email_change")[0].link()
    make_user("wanted@example.com")  # someone registered it in between
    assert client.post(link).status_code == 400
    with app.app_context():
        assert db.session.get(User, logged_in.id).email == "owner@example.com"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "at least 8 characters"),
        ("password1", "most common passwords"),
        ("iloveyou", "most common passwords"),
        ("Football", "most common passwords"),
        ("aaaaaaaaaaaa", "too easy to guess"),
        ("new@example.com", "too easy to guess"),
    ],
)
def test_weak_new_passwords_are_refused_with_the_reason(
    app: Flask, client: FlaskClient, password: str, reason: str
) -> None:
    answer = client.post("/register/", data={"email": "new@example.com", "password": password})
    assert answer.status_code == 200
    assert reason in answer.get_data(as_text=True)
    assert queued(app) == []


def test_tracked_and_typed_text_in_a_mail_is_escaped_in_its_html_part(
    app: Flask, client: FlaskClient
) -> None:
    client.post(
        "/register/",
        data={"email": "new@example.com", "password": PASSWORD, "name": "<script>x()</script>"},
    )
    [mail] = queued(app)
    assert "<script>" not in mail.html
    assert "&lt;script&gt;x()&lt;/script&gt;" in mail.html
    assert "<script>x()</script>" in mail.text  # the plain part is plain text


def test_links_use_the_public_url_not_the_host_the_request_claimed(app_factory: Any) -> None:
    app = app_factory(PUBLIC_URL="https://stats.example.org/")
    client = app.test_client()
    client.post(
        "/register/",
        data={"email": "new@example.com", "password": PASSWORD},
        headers={"Host": "attacker.example"},
    )
    [mail] = queued(app)
    assert "https://stats.example.org/verify-email/" in mail.text
    assert "attacker.example" not in mail.text + mail.html
