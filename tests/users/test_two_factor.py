"""Two-factor login: set up from the QR code (decoded here as an app would read it), log in
with a code, never twice with the same one, with a recovery code once, remember a browser,
turn it off with the password and a code; rate-limited."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_tracking.extensions import db
from flask_tracking.users import accounts, twofactor
from flask_tracking.users.models import User
from tests.conftest import PASSWORD


def turn_on(client: FlaskClient) -> tuple[str, list[str]]:
    """Set two-factor login up as a user does; return the secret and the recovery codes."""
    assert client.post("/settings/two-factor/setup").status_code == 302
    page = client.get("/settings/two-factor").get_data(as_text=True)
    assert "<svg" in page and "QR code to scan" in page
    secret = re.search(r'<code class="totp-secret">([A-Z2-7]+)</code>', page)
    assert secret
    answer = client.post(
        "/settings/two-factor/enable", data={"code": pyotp.TOTP(secret.group(1)).now()}
    )
    assert answer.status_code == 200
    codes = re.findall(r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>", answer.get_data(True))
    assert len(codes) == 10
    return secret.group(1), codes


def password_step(client: FlaskClient, email: str = "owner@example.com") -> Any:
    return client.post("/login/", data={"email": email, "password": PASSWORD})


def test_the_provisioning_uri_names_the_issuer_and_account() -> None:
    user = User(email="owner@example.com", password_hash="x")
    secret = pyotp.random_base32()
    uri = twofactor.provisioning_uri(secret, user)
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    assert unquote(parts.path) == "/Flask-Tracking:owner@example.com"
    assert parse_qs(parts.query) == {"secret": [secret], "issuer": ["Flask-Tracking"]}


def test_logging_in_then_asks_for_a_code_which_works_once(
    app: Flask, client: FlaskClient, logged_in: User
) -> None:
    secret, _codes = turn_on(client)
    client.post("/logout/")
    first = password_step(client)
    assert first.headers["Location"].endswith("/login/code")
    assert client.get("/settings/").status_code == 302  # not logged in yet
    wrong = client.post("/login/code", data={"code": "000000"})
    assert wrong.status_code == 200 and "not right" in wrong.get_data(as_text=True)
    # The code that turned it on was accepted at this step: the next step's code is needed.
    totp = pyotp.TOTP(secret)
    later = time.time() + 30
    code = totp.at(later)
    assert client.post("/login/code", data={"code": code}).status_code == 302
    assert client.get("/settings/").status_code == 200
    other = app.test_client()
    password_step(other)
    replay = other.post("/login/code", data={"code": code})
    assert replay.status_code == 200  # the same code twice: refused
    assert other.get("/settings/").status_code == 302


def test_a_recovery_code_works_once_and_the_count_goes_down(
    app: Flask, client: FlaskClient, logged_in: User
) -> None:
    _secret, codes = turn_on(client)
    client.post("/logout/")
    password_step(client)
    used = client.post("/login/code", data={"code": codes[3].upper()})
    assert used.status_code == 302
    assert "9 recovery codes left" in client.get("/settings/two-factor").get_data(as_text=True)
    client.post("/logout/")
    password_step(client)
    again = client.post("/login/code", data={"code": codes[3]})
    assert again.status_code == 200


def test_a_remembered_browser_skips_the_code_until_the_password_changes(
    app: Flask, client: FlaskClient, logged_in: User
) -> None:
    secret, _codes = turn_on(client)
    client.post("/logout/")
    password_step(client)
    code = pyotp.TOTP(secret).at(time.time() + 30)
    done = client.post("/login/code", data={"code": code, "remember": "y"})
    assert twofactor.REMEMBER_COOKIE in done.headers["Set-Cookie"]
    assert "HttpOnly" in done.headers["Set-Cookie"]
    client.post("/logout/")
    assert password_step(client).headers["Location"] == "/"  # straight in
    # A new password forgets every remembered browser.
    with app.app_context():
        user = db.session.get(User, logged_in.id)
        accounts.reset_password(user, "another long password")
    client.post("/logout/")
    again = client.post(
        "/login/", data={"email": logged_in.email, "password": "another long password"}
    )
    assert again.headers["Location"].endswith("/login/code")


def test_turning_it_off_asks_for_the_password_and_a_code(
    app: Flask, client: FlaskClient, logged_in: User
) -> None:
    secret, _codes = turn_on(client)
    code = pyotp.TOTP(secret).at(time.time() + 30)
    wrong_password = client.post(
        "/settings/two-factor/disable", data={"password": "nope nope", "code": code}
    )
    assert wrong_password.status_code == 400
    wrong_code = client.post(
        "/settings/two-factor/disable", data={"password": PASSWORD, "code": "123456"}
    )
    assert wrong_code.status_code == 400
    off = client.post("/settings/two-factor/disable", data={"password": PASSWORD, "code": code})
    assert off.status_code == 302
    client.post("/logout/")
    assert password_step(client).headers["Location"] == "/"
    with app.app_context():
        user = db.session.get(User, logged_in.id)
        assert user.totp_secret is None and twofactor.recovery_codes_left(user) == 0


def test_a_wrong_first_code_does_not_turn_it_on(client: FlaskClient, logged_in: User) -> None:
    client.post("/settings/two-factor/setup")
    assert client.post("/settings/two-factor/enable", data={"code": "000000"}).status_code == 400
    client.post("/logout/")
    assert password_step(client).headers["Location"] == "/"


def test_codes_are_rate_limited_per_user(app_factory: Any) -> None:
    app = app_factory(TWO_FACTOR_RATE_LIMIT="3 per 10 minutes")
    with app.app_context():
        user = accounts.register("owner@example.com", PASSWORD, verified=True)
        user.totp_secret = pyotp.random_base32()
        db.session.commit()
    client = app.test_client()
    password_step(client)
    answers = [client.post("/login/code", data={"code": "000000"}).status_code for _ in range(5)]
    assert answers == [200, 200, 200, 429, 429]


@pytest.mark.parametrize("offset", [-30, 0, 30])
def test_a_code_of_the_step_before_or_after_is_accepted(offset: int) -> None:
    secret = pyotp.random_base32()
    now = 1_800_000_000.0
    code = pyotp.TOTP(secret).at(now + offset)
    assert twofactor.matching_step(secret, code, now) == int((now + offset) // 30)
    assert twofactor.matching_step(secret, pyotp.TOTP(secret).at(now + 90), now) is None
