"""The settings page's account section: name and email, and deleting the account with all
its data."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from flask_tracking.extensions import db
from flask_tracking.tracking.models import Goal, SharedLink, Site
from flask_tracking.users import apikeys
from flask_tracking.users.models import ApiKey, LoginSession, User
from tests.conftest import PASSWORD
from tests.mailbox import queued
from tests.reports import dataset


def account(client: FlaskClient, **data: str) -> Any:
    return client.post("/settings/account", data={"name": "", "current": "", **data})


def user_row(app: Flask, user_id: int) -> tuple[str, str] | None:
    with app.app_context():
        user = db.session.get(User, user_id)
        return None if user is None else (user.name, user.email)


def test_the_settings_page_has_the_account(client: FlaskClient, logged_in: User) -> None:
    page = client.get("/settings/").get_data(as_text=True)
    for section in ('id="account"', 'id="password"', 'id="sessions"', 'id="delete"'):
        assert section in page
    assert f'value="{logged_in.email}"' in page


def test_a_name_changes_without_the_password(
    client: FlaskClient, app: Flask, logged_in: User
) -> None:
    response = account(client, name="  Dana Owner ", email=logged_in.email)
    assert response.status_code == 302
    assert user_row(app, logged_in.id) == ("Dana Owner", logged_in.email)


def test_a_new_email_needs_the_password_and_a_free_address(
    client: FlaskClient, app: Flask, logged_in: User, make_user: Any
) -> None:
    other = make_user("other@example.com")
    before = user_row(app, logged_in.id)
    wrong = account(client, name="X", email="new@example.com", current="not my password")
    assert wrong.status_code == 400
    assert "Type your current password" in wrong.get_data(as_text=True)
    taken = account(client, name="X", email=other.email.upper(), current=PASSWORD)
    assert taken.status_code == 400
    assert "That address cannot be used" in taken.get_data(as_text=True)
    bad = account(client, name="X", email="not-an-address", current=PASSWORD)
    assert bad.status_code == 400
    assert user_row(app, logged_in.id) == before  # nothing changed, not even the name
    moved = account(client, name="X", email=" New@Example.com ", current=PASSWORD)
    assert moved.status_code == 302
    # The address changes only once confirmed from the new mailbox; the old one is told.
    assert user_row(app, logged_in.id) == ("X", "owner@example.com")
    [confirmation] = queued(app, kind="email_change")
    assert confirmation.to == "new@example.com"
    assert client.get(confirmation.link()).status_code == 200  # a button, not the change
    assert user_row(app, logged_in.id) == ("X", "owner@example.com")
    assert client.post(confirmation.link()).status_code == 302
    assert user_row(app, logged_in.id) == ("X", "new@example.com")
    [notice] = queued(app, kind="email_changed")
    assert notice.to == "owner@example.com"
    assert "new@example.com" in notice.text
    assert client.post(confirmation.link()).status_code == 400  # once only
    client.post("/logout/")
    old = client.post("/login/", data={"email": before and before[1], "password": PASSWORD})
    assert old.status_code != 302
    new = client.post("/login/", data={"email": "new@example.com", "password": PASSWORD})
    assert new.status_code == 302


def test_deleting_the_account_removes_its_sites_events_keys_and_logins(
    client: FlaskClient, app: Flask, logged_in: User, make_user: Any, make_site: Any, row_count: Any
) -> None:
    mine = make_site(logged_in)
    stranger = make_user("stranger@example.com")
    theirs = make_site(stranger, "https://theirs.example")
    for site_id in (mine, theirs):
        dataset.spool(app, site_id, dataset.A, dataset.utc(8, 12, 0), "/")
    with app.app_context():
        db.session.add(Goal(site_id=mine, name="Signup", kind="event", event="Signup"))
        db.session.add(SharedLink(site_id=mine, token="t" * 32))
        owner = db.session.get(User, logged_in.id)
        assert owner is not None
        apikeys.create_key(owner, "Script", apikeys.READ, None)
        db.session.commit()
    assert row_count(app, "events") == 2

    refused = client.post(
        "/settings/delete", data={"password": PASSWORD, "confirm_email": "someone@else.example"}
    )
    assert refused.status_code == 400
    wrong = client.post(
        "/settings/delete", data={"password": "nope", "confirm_email": logged_in.email}
    )
    assert wrong.status_code == 400
    assert user_row(app, logged_in.id) is not None and row_count(app, "events") == 2

    done = client.post(
        "/settings/delete", data={"password": PASSWORD, "confirm_email": logged_in.email.upper()}
    )
    assert done.status_code == 302
    assert user_row(app, logged_in.id) is None
    with app.app_context():

        def count(model: Any, **where: Any) -> int:
            query = select(func.count()).select_from(model).filter_by(**where)
            return db.session.scalar(query) or 0

        assert count(Site, owner_id=logged_in.id) == 0
        assert count(Goal) == 0 and count(SharedLink) == 0
        assert count(ApiKey, user_id=logged_in.id) == 0
        assert count(LoginSession, user_id=logged_in.id) == 0
        assert count(Site) == 1  # the stranger's site stays, with its event
    assert row_count(app, "events") == 1
    assert client.get("/settings/").status_code == 302  # logged out
    again = client.post("/login/", data={"email": logged_in.email, "password": PASSWORD})
    assert again.status_code != 302
