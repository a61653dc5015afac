"""Security keys (WebAuthn) as a second factor, through the app's JSON steps, answered by a
software key (tests/softkey.py): adding one, logging in with it, and each answer refused — a
replay, another origin, a cloned key whose counter went back, another account's key, an
expired or missing challenge, garbage. The real-browser path is in
tests/browser/test_accounts_browser.py (Chromium's virtual authenticator)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_tracking.extensions import db
from flask_tracking.users import audit, securitykeys
from flask_tracking.users.models import SecurityKey, User
from tests.conftest import PASSWORD
from tests.softkey import SoftKey


def turn_on_two_factor(app: Flask, email: str = "owner@example.com") -> str:
    secret = pyotp.random_base32()
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        assert user is not None
        user.totp_secret = secret
        user.totp_enabled_at = datetime.now(UTC)
        db.session.commit()
    return secret


def post_json(client: FlaskClient, path: str, body: Any = None) -> Any:
    return client.post(path, data=json.dumps(body or {}), content_type="application/json")


def add_key(client: FlaskClient, key: SoftKey, name: str = "Desk key") -> Any:
    options = post_json(client, "/settings/two-factor/keys/options")
    assert options.status_code == 200, options.get_data(True)
    return post_json(
        client, "/settings/two-factor/keys", {"name": name, "credential": key.create(options.json)}
    )


def password_step(client: FlaskClient, email: str = "owner@example.com") -> None:
    answer = client.post("/login/", data={"email": email, "password": PASSWORD})
    assert answer.headers["Location"] == "/login/code"


def key_step(client: FlaskClient, key: SoftKey) -> tuple[Any, dict[str, Any]]:
    """Ask for the challenge and answer it with the key; return the answer and what was sent."""
    options = post_json(client, "/login/key/options")
    assert options.status_code == 200, options.get_data(True)
    sent = {"credential": key.get(options.json)}
    return post_json(client, "/login/key", sent), sent


def logged_in_as(client: FlaskClient) -> bool:
    return client.get("/settings/").status_code == 200


@pytest.fixture
def with_key(app: Flask, client: FlaskClient, logged_in: User) -> SoftKey:
    """The owner, with two-factor login on and one key added; logged out again."""
    turn_on_two_factor(app)
    key = SoftKey()
    answer = add_key(client, key)
    assert answer.status_code == 200 and answer.json == {"next": "/settings/two-factor"}
    client.post("/logout/")
    return key


def test_a_key_is_added_once_two_factor_is_on_and_listed(
    app: Flask, client: FlaskClient, logged_in: User
) -> None:
    refused = post_json(client, "/settings/two-factor/keys/options")
    assert refused.status_code == 400 and refused.json == {
        "error": "Turn two-factor login on first."
    }
    turn_on_two_factor(app)
    options = post_json(client, "/settings/two-factor/keys/options").json
    assert options["rp"] == {"id": "localhost", "name": "Flask-Tracking"}
    assert options["user"]["name"] == "owner@example.com"
    assert "owner" not in options["user"]["id"]  # an opaque handle, not the address
    key = SoftKey()
    answer = post_json(
        client,
        "/settings/two-factor/keys",
        {"name": "Desk <key>", "credential": key.create(options)},
    )
    assert answer.status_code == 200
    page = client.get("/settings/two-factor").get_data(True)
    assert "<strong>Desk &lt;key&gt;</strong>" in page  # escaped like any name a user types
    with app.app_context():
        [stored] = db.session.scalars(select(SecurityKey)).all()
        assert stored.credential_id == key.id and stored.transports == "usb"
        assert audit.events_of(logged_in.id)[0].kind == "security_key_added"
    # The same key again is refused, and the next options exclude it.
    options = post_json(client, "/settings/two-factor/keys/options").json
    assert [c["id"] for c in options["excludeCredentials"]] == [key.id]
    again = post_json(client, "/settings/two-factor/keys", {"credential": key.create(options)})
    assert again.status_code == 400 and again.json == {
        "error": "This security key is registered already."
    }


def test_logging_in_with_the_key_instead_of_a_code(
    app: Flask, client: FlaskClient, with_key: SoftKey
) -> None:
    password_step(client)
    assert "Use a security key" in client.get("/login/code").get_data(True)
    answer, _sent = key_step(client, with_key)
    assert answer.status_code == 200 and answer.json == {"next": "/"}
    assert logged_in_as(client)
    with app.app_context():
        stored = db.session.scalar(select(SecurityKey))
        assert stored is not None and stored.sign_count == 1 and stored.last_used_at is not None
        events = audit.events_of(stored.user_id)
        assert (events[0].kind, events[0].detail) == (
            "login",
            "password and a security key (Desk key)",
        )


def test_an_answer_is_accepted_once(client: FlaskClient, with_key: SoftKey) -> None:
    password_step(client)
    answer, sent = key_step(client, with_key)
    assert answer.status_code == 200
    client.post("/logout/")
    # The same signed answer, played into the next login: the challenge it signed is gone.
    password_step(client)
    replayed = post_json(client, "/login/key", sent)
    assert replayed.status_code == 400
    assert replayed.json == {"error": "No security key request is waiting: start again."}
    assert post_json(client, "/login/key/options").status_code == 200
    replayed = post_json(client, "/login/key", sent)
    assert replayed.status_code == 400 and "refused" in replayed.json["error"]
    assert not logged_in_as(client)


def test_a_replayed_session_cookie_cannot_use_its_challenge_twice(
    app: Flask, client: FlaskClient, with_key: SoftKey
) -> None:
    password_step(client)
    options = post_json(client, "/login/key/options").json
    cookie = client.get_cookie("session")
    assert cookie is not None
    saved = cookie.value
    sent = {"credential": with_key.get(options)}
    assert post_json(client, "/login/key", sent).status_code == 200
    thief = app.test_client()
    thief.set_cookie("session", saved)  # the cookie from before the answer: challenge inside
    again = post_json(thief, "/login/key", {"credential": with_key.get(options)})
    assert again.status_code == 400
    assert again.json == {
        "error": "This security key request was used already or has expired: start again."
    }
    assert not logged_in_as(thief)


@pytest.mark.parametrize("trouble", ["another origin", "counter went back"])
def test_answers_that_are_not_this_accounts_key_here_are_refused(
    app: Flask, client: FlaskClient, with_key: SoftKey, trouble: str
) -> None:
    key = with_key
    if trouble == "another origin":
        key.origin = "https://phishing.example"
    elif trouble == "counter went back":
        password_step(client)
        assert key_step(client, key)[0].status_code == 200
        client.post("/logout/")
        key.sign_count = 0  # a clone of the key, made before that use
    password_step(client)
    answer, _ = key_step(client, key)
    assert answer.status_code == 400 and "refused" in answer.json["error"]
    assert not logged_in_as(client)
    with app.app_context():
        assert audit.events_of(db.session.scalar(select(User.id)))[0].kind == "two_factor_failed"


def test_another_accounts_key_is_not_accepted(
    app: Flask, client: FlaskClient, with_key: SoftKey, make_user: Any
) -> None:
    make_user(email="other@example.com")
    turn_on_two_factor(app, "other@example.com")
    client.post("/login/", data={"email": "other@example.com", "password": PASSWORD})
    client.post("/login/code", data={"code": "000000"})  # fails, but the login stays pending
    other_key = SoftKey()
    with app.app_context():
        # The other account gets a key of its own, so the login step hands out a challenge.
        other = db.session.scalar(select(User).where(User.email == "other@example.com"))
        assert other is not None
        db.session.add(
            SecurityKey(
                user_id=other.id,
                name="Theirs",
                credential_id=other_key.id,
                public_key=b"\xa0",
                sign_count=0,
            )
        )
        db.session.commit()
    answer, _ = key_step(client, with_key)  # the owner's key, answering the other's login
    assert answer.status_code == 400
    assert answer.json == {"error": "This security key is not registered to this account."}
    assert not logged_in_as(client)


def test_an_expired_challenge_is_refused(
    client: FlaskClient, with_key: SoftKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(securitykeys, "CHALLENGE_SECONDS", -1)
    password_step(client)
    answer, _ = key_step(client, with_key)
    assert answer.status_code == 400 and "expired" in answer.json["error"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", "The request is not JSON."),
        (b"[]", "The request carries no credential."),
        (b'{"credential": "x"}', "The request carries no credential."),
    ],
)
def test_garbage_gets_a_clear_400(
    client: FlaskClient, with_key: SoftKey, body: bytes, error: str
) -> None:
    password_step(client)
    post_json(client, "/login/key/options")
    answer = client.post("/login/key", data=body, content_type="application/json")
    assert answer.status_code == 400 and answer.json == {"error": error}
    # A credential of the right shape with nonsense inside is refused too, never a 500.
    post_json(client, "/login/key/options")
    nonsense = post_json(client, "/login/key", {"credential": {"id": with_key.id, "response": 5}})
    assert nonsense.status_code == 400 and "refused" in nonsense.json["error"]


def test_without_a_waiting_login_the_key_steps_refuse(client: FlaskClient) -> None:
    for path in ("/login/key/options", "/login/key"):
        answer = post_json(client, path, {"credential": {}})
        assert answer.status_code == 400
        assert answer.json == {"error": "No login is waiting: log in again."}


def test_removing_a_key_and_turning_two_factor_off_take_the_keys_away(
    app: Flask, client: FlaskClient, with_key: SoftKey, make_user: Any
) -> None:
    password_step(client)
    assert key_step(client, with_key)[0].status_code == 200
    second = SoftKey()
    assert add_key(client, second, "Spare").status_code == 200
    with app.app_context():
        ids = list(db.session.scalars(select(SecurityKey.id).order_by(SecurityKey.id)))
    stranger = app.test_client()
    make_user(email="stranger@example.com")
    stranger.post("/login/", data={"email": "stranger@example.com", "password": PASSWORD})
    assert stranger.post(f"/settings/two-factor/keys/{ids[0]}/remove").status_code == 404
    assert client.post(f"/settings/two-factor/keys/{ids[0]}/remove").status_code == 302
    page = client.get("/settings/two-factor").get_data(True)
    assert "<strong>Desk key</strong>" not in page and "<strong>Spare</strong>" in page
    secret = turn_on_two_factor(app)  # a known secret, to turn it off with a code
    answer = client.post(
        "/settings/two-factor/disable",
        data={"password": PASSWORD, "code": pyotp.TOTP(secret).now()},
    )
    assert answer.status_code == 302
    with app.app_context():
        assert db.session.scalars(select(SecurityKey)).all() == []
