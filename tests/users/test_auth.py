"""Register, log in, log out: the original tutorial's tests and the holes it left."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_login import current_user
from sqlalchemy import func, select

from flask_tracking.extensions import db
from flask_tracking.users.models import User
from flask_tracking.users.passwords import hash_password

PASSWORD = "correct horse battery"


def user_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User)) or 0


def test_login_redirects_to_index_and_sets_current_user(client: FlaskClient, owner: User) -> None:
    with client:
        response = client.post("/login/", data={"email": owner.email, "password": PASSWORD})
        assert response.status_code == 302
        assert response.headers["Location"] == "/"
        assert current_user.is_authenticated
        assert current_user.id == owner.id


def test_logout_leaves_the_visitor_anonymous(client: FlaskClient, logged_in: User) -> None:
    with client:
        client.post("/logout/")
        client.get("/")
        assert not current_user.is_authenticated


def test_logout_redirects_to_index(client: FlaskClient, logged_in: User) -> None:
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_wrong_password_is_rejected_and_visitor_stays_anonymous(
    client: FlaskClient, owner: User
) -> None:
    with client:
        response = client.post("/login/", data={"email": owner.email, "password": "wrong-one"})
        assert response.status_code == 200
        assert b"Invalid email or password." in response.data
        assert not current_user.is_authenticated


def test_unknown_email_gets_the_same_message_as_a_wrong_password(
    client: FlaskClient, owner: User
) -> None:
    wrong_password = client.post("/login/", data={"email": owner.email, "password": "nope-nope"})
    unknown_email = client.post(
        "/login/", data={"email": "nobody@example.com", "password": "nope-nope"}
    )
    assert b"Invalid email or password." in wrong_password.data
    assert b"Invalid email or password." in unknown_email.data
    assert b"already exists" not in unknown_email.data


def test_registering_logs_the_user_in(client: FlaskClient, app: Flask) -> None:
    with client:
        response = client.post(
            "/register/", data={"name": "Ada", "email": "ada@example.com", "password": PASSWORD}
        )
        assert response.status_code == 302
        assert current_user.is_authenticated
        assert current_user.email == "ada@example.com"
        assert current_user.name == "Ada"
        # "Add your first site below" lands above the form that adds one (it was a button).
        assert response.headers["Location"] == "/sites/"
        page = client.get("/sites/").get_data(as_text=True)
        assert page.index("Add your first site below") < page.index('name="base_url"')


def test_registration_without_a_name_is_fine(client: FlaskClient, app: Flask) -> None:
    response = client.post("/register/", data={"email": "Bo@Example.com", "password": PASSWORD})
    assert response.status_code == 302
    with app.app_context():
        user = db.session.scalar(select(User))
        assert user is not None
        assert user.email == "bo@example.com"  # stored normalised
        assert user.display_name == "bo@example.com"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "", "password": PASSWORD}, b"This field is required."),
        ({"email": "not-an-email", "password": PASSWORD}, b"Invalid email address."),
        ({"email": "a@example.com", "password": ""}, b"This field is required."),
        ({"email": "a@example.com", "password": "short"}, b"at least 8 characters"),
        (
            {"email": "a@example.com", "password": PASSWORD, "name": "n" * 121},
            b"Field cannot be longer than 120 characters.",
        ),
    ],
)
def test_register_validation(
    client: FlaskClient, app: Flask, data: dict[str, str], message: bytes
) -> None:
    response = client.post("/register/", data=data)
    assert response.status_code == 200
    assert message in response.data
    assert user_count(app) == 0


def test_register_refuses_a_duplicate_email_without_saying_it_exists(
    client: FlaskClient, app: Flask, owner: User
) -> None:
    response = client.post("/register/", data={"email": owner.email.upper(), "password": PASSWORD})
    assert response.status_code == 200
    assert b"could not create an account with these details" in response.data
    assert b"already exists" not in response.data
    assert user_count(app) == 1


@pytest.mark.parametrize("password", ["short", ""])
def test_an_invalid_registration_answers_alike_for_taken_and_free_addresses(
    client: FlaskClient, app: Flask, owner: User, password: str
) -> None:
    """Nothing is created either way, so nothing may tell the two addresses apart."""
    taken = client.post("/register/", data={"email": owner.email, "password": password})
    free = client.post("/register/", data={"email": "free@example.com", "password": password})
    assert taken.status_code == free.status_code == 200

    def errors(page: bytes) -> list[str]:
        return re.findall(r'<p class="error"[^>]*>(.*?)</p>', page.decode())

    assert errors(taken.data) == errors(free.data) != []
    assert user_count(app) == 1


def test_registration_is_rate_limited_per_address(app_factory: Any) -> None:
    app = app_factory(REGISTER_RATE_LIMIT_EMAIL="3 per hour", REGISTER_RATE_LIMIT_IP="100/hour")
    client = app.test_client()
    answers = [
        client.post("/register/", data={"email": "target@example.com", "password": "x"}).status_code
        for _ in range(5)
    ]
    assert answers == [200, 200, 200, 429, 429]
    # Another address from the same browser is not held back by it.
    fresh = client.post("/register/", data={"email": "other@example.com", "password": PASSWORD})
    assert fresh.status_code == 302


def test_registration_is_rate_limited_per_ip(app_factory: Any) -> None:
    app = app_factory(REGISTER_RATE_LIMIT_IP="4 per hour")
    client = app.test_client()
    answers = [
        client.post(
            "/register/",
            data={"email": f"user{number}@example.com", "password": "x"},
            environ_base={"REMOTE_ADDR": "203.0.113.5"},
        ).status_code
        for number in range(6)
    ]
    assert answers == [200, 200, 200, 200, 429, 429]
    other = client.post(
        "/register/",
        data={"email": "someone@example.com", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "203.0.113.6"},
    )
    assert other.status_code == 302
    assert user_count(app) == 1


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
        "http:/evil.example",
        "\t//evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
    ],
)
def test_next_never_leaves_the_site(client: FlaskClient, owner: User, target: str) -> None:
    response = client.post(
        "/login/", query_string={"next": target}, data={"email": owner.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_next_is_followed_when_it_is_a_local_path(client: FlaskClient, owner: User) -> None:
    response = client.post(
        "/login/",
        query_string={"next": "/sites/?x=1"},
        data={"email": owner.email, "password": PASSWORD},
    )
    assert response.headers["Location"] == "/sites/?x=1"


def test_login_required_pages_send_anonymous_visitors_to_login(client: FlaskClient) -> None:
    response = client.get("/sites/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login/?next=")


def test_get_logout_asks_for_confirmation_and_keeps_the_session(
    client: FlaskClient, logged_in: User
) -> None:
    with client:
        response = client.get("/logout/")
        assert response.status_code == 200
        assert b"Log out?" in response.data
        assert current_user.is_authenticated


def test_get_logout_when_anonymous_goes_to_index(client: FlaskClient) -> None:
    response = client.get("/logout/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_login_renews_the_session(client: FlaskClient, owner: User) -> None:
    with client.session_transaction() as session:
        session["planted"] = "by-an-attacker"
    client.post("/login/", data={"email": owner.email, "password": PASSWORD})
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["_user_id"] == str(owner.id)


def test_session_cookie_is_httponly_and_lax(client: FlaskClient, owner: User) -> None:
    response = client.post("/login/", data={"email": owner.email, "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_raising_hash_rounds_rehashes_on_next_login(app_factory: Any) -> None:
    app = app_factory(HASH_ROUNDS=3)
    with app.app_context():
        db.session.add(User(email="old@example.com", password_hash=hash_password(PASSWORD, 1)))
        db.session.commit()
    response = app.test_client().post(
        "/login/", data={"email": "old@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "old@example.com"))
        assert user is not None
        assert user.password_hash.startswith("pbkdf2_sha512$3$")


def test_failed_logins_are_rate_limited_per_email(app_factory: Any, make_user: Any) -> None:
    app = app_factory(LOGIN_RATE_LIMIT_EMAIL="3 per minute", LOGIN_RATE_LIMIT_IP="100 per minute")
    with app.app_context():
        from flask_tracking.users import accounts

        accounts.register("victim@example.com", PASSWORD)
    client = app.test_client()
    for _ in range(3):
        assert (
            client.post(
                "/login/", data={"email": "victim@example.com", "password": "guess-guess"}
            ).status_code
            == 200
        )
    blocked = client.post("/login/", data={"email": "victim@example.com", "password": PASSWORD})
    assert blocked.status_code == 429
    assert b"Too many attempts" in blocked.data
    assert "Retry-After" in blocked.headers
    # Another account from the same address is not blocked by the per-email limit.
    other = client.post("/login/", data={"email": "other@example.com", "password": "guess-guess"})
    assert other.status_code == 200


def test_failed_logins_are_rate_limited_per_ip(app_factory: Any) -> None:
    app = app_factory(LOGIN_RATE_LIMIT_EMAIL="100 per minute", LOGIN_RATE_LIMIT_IP="2 per minute")
    client = app.test_client()
    for n in range(2):
        client.post("/login/", data={"email": f"u{n}@example.com", "password": "guess-guess"})
    response = client.post("/login/", data={"email": "u9@example.com", "password": "guess-guess"})
    assert response.status_code == 429


def test_successful_logins_do_not_count_towards_the_limit(app_factory: Any) -> None:
    app = app_factory(LOGIN_RATE_LIMIT_EMAIL="2 per minute")
    with app.app_context():
        from flask_tracking.users import accounts

        accounts.register("busy@example.com", PASSWORD)
    client = app.test_client()
    for _ in range(4):
        response = client.post("/login/", data={"email": "busy@example.com", "password": PASSWORD})
        assert response.status_code == 302
