"""Login sessions live on the server: logging out, changing the password and "log out
everywhere" end them, so a copy of the session cookie taken before is worth nothing after."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from flask_tracking.extensions import db
from flask_tracking.users.models import LoginSession, User
from flask_tracking.users.passwords import verify_password

PASSWORD = "correct horse battery"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def log_in(app: Flask, email: str = "owner@example.com", password: str = PASSWORD) -> FlaskClient:
    client = app.test_client()
    response = client.post(
        "/login/", data={"email": email, "password": password}, headers={"User-Agent": FIREFOX}
    )
    assert response.status_code == 302
    return client


def stolen_copy(app: Flask, client: FlaskClient) -> FlaskClient:
    """Another client holding the same session cookie (as a thief who copied it would)."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("session", cookie.value)
    return thief


def logged_in(client: FlaskClient) -> bool:
    response = client.get("/settings/")
    return response.status_code == 200


def sessions(app: Flask) -> list[LoginSession]:
    with app.app_context():
        rows = list(db.session.scalars(select(LoginSession).order_by(LoginSession.id)))
        for row in rows:
            db.session.expunge(row)
        return rows


def test_a_copied_cookie_stops_working_when_its_owner_logs_out(app: Flask, owner: User) -> None:
    client = log_in(app)
    thief = stolen_copy(app, client)
    assert logged_in(thief)  # the copy works while the session lives…
    assert client.post("/logout/").status_code == 302
    assert not logged_in(client)
    assert not logged_in(thief)  # …and not a moment after
    [row] = sessions(app)
    assert row.revoked_at is not None


def test_the_cookie_holds_a_token_and_the_table_only_its_hash(app: Flask, owner: User) -> None:
    client = log_in(app)
    with client.session_transaction() as cookie_session:
        token = cookie_session["login"]
    [row] = sessions(app)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (row.token_hash, row.device)
    assert row.device == "Firefox on Linux"


def test_changing_the_password_ends_every_other_session(app: Flask, owner: User) -> None:
    laptop, phone = log_in(app), log_in(app)
    response = laptop.post(
        "/settings/password", data={"current": PASSWORD, "new": "a brand new password"}
    )
    assert response.status_code == 302
    assert logged_in(laptop)  # the browser that changed it stays in, in a fresh session
    assert not logged_in(phone)
    assert log_in(app, password="a brand new password")
    with app.app_context():
        user = db.session.get(User, owner.id)
        assert user is not None
        assert verify_password("a brand new password", user.password_hash)


def test_a_wrong_current_password_changes_nothing(app: Flask, owner: User) -> None:
    laptop, phone = log_in(app), log_in(app)
    response = laptop.post(
        "/settings/password", data={"current": "not it at all", "new": "a brand new password"}
    )
    assert response.status_code == 400
    assert b"not your current password" in response.data
    assert logged_in(laptop) and logged_in(phone)
    assert log_in(app, password=PASSWORD)


def test_a_short_new_password_is_refused(app: Flask, owner: User) -> None:
    laptop = log_in(app)
    response = laptop.post("/settings/password", data={"current": PASSWORD, "new": "short"})
    assert response.status_code == 400
    assert b"at least 8 characters" in response.data
    assert log_in(app, password=PASSWORD)


def test_log_out_everywhere_ends_every_session(app: Flask, owner: User) -> None:
    laptop, phone = log_in(app), log_in(app)
    thief = stolen_copy(app, phone)
    response = laptop.post("/settings/sessions/end-all")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login/"
    assert not any(logged_in(client) for client in (laptop, phone, thief))
    assert all(row.revoked_at is not None for row in sessions(app))


def test_the_settings_page_lists_sessions_and_ends_one(app: Flask, owner: User) -> None:
    laptop, phone = log_in(app), log_in(app)
    page = laptop.get("/settings/").get_data(as_text=True)
    assert page.count("Firefox on Linux") == 2
    assert "(this browser)" in page
    laptop_row, phone_row = sessions(app)
    ended = laptop.post(f"/settings/sessions/{phone_row.id}/end")
    assert ended.status_code == 302
    assert logged_in(laptop) and not logged_in(phone)
    # Another user's session cannot be ended from here (nor even seen).
    assert laptop.post(f"/settings/sessions/{phone_row.id}/end").status_code == 404
    assert re.search(r"/settings/sessions/\d+/end", page)
    assert laptop_row.revoked_at is None


def test_someone_elses_session_is_as_missing_as_none(
    app: Flask, owner: User, make_user: Any
) -> None:
    make_user(email="other@example.com")
    mine, theirs = log_in(app), log_in(app, email="other@example.com")
    their_row = sessions(app)[1]
    assert mine.post(f"/settings/sessions/{their_row.id}/end").status_code == 404
    assert logged_in(theirs)


def test_an_idle_or_old_session_expires(app: Flask, owner: User) -> None:
    idle, old = log_in(app), log_in(app)
    idle_row, old_row = sessions(app)
    now = datetime.now(UTC)
    with app.app_context():
        db.session.execute(
            update(LoginSession)
            .where(LoginSession.id == idle_row.id)
            .values(last_seen_at=now - timedelta(days=8))
        )
        db.session.execute(
            update(LoginSession)
            .where(LoginSession.id == old_row.id)
            .values(created_at=now - timedelta(days=31))
        )
        db.session.commit()
    assert not logged_in(idle)
    assert not logged_in(old)


def test_last_use_is_recorded_at_most_every_few_minutes(app: Flask, owner: User) -> None:
    client = log_in(app)
    [row] = sessions(app)
    first_seen = row.last_seen_at
    for _ in range(3):
        assert logged_in(client)
    [row] = sessions(app)
    assert row.last_seen_at == first_seen  # reads do not write on every request
    with app.app_context():
        db.session.execute(
            update(LoginSession).values(last_seen_at=datetime.now(UTC) - timedelta(minutes=6))
        )
        db.session.commit()
    assert logged_in(client)
    [row] = sessions(app)
    assert datetime.now(UTC) - row.last_seen_at.replace(tzinfo=UTC) < timedelta(minutes=1)


def test_a_cookie_without_a_session_token_is_anonymous(app: Flask, owner: User) -> None:
    """A cookie signed with the app's key but made before login sessions existed."""
    client = app.test_client()
    with client.session_transaction() as cookie_session:
        cookie_session["_user_id"] = str(owner.id)
        cookie_session["_fresh"] = True
    assert not logged_in(client)
