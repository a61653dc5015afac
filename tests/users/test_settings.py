"""The settings page: make API keys (the secret shown once), list them, revoke them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_tracking.extensions import db
from flask_tracking.tracking.models import Site
from flask_tracking.users import accounts, apikeys
from flask_tracking.users.forms import MAX_ACTIVE_KEYS
from flask_tracking.users.models import ApiKey, User

PASSWORD = "correct horse battery"
SECRET_IN_PAGE = re.compile(r"ftk_[A-Za-z0-9_-]{43}")


def stored_keys(app: Flask) -> list[ApiKey]:
    """Every key in the database, oldest first, detached so its attributes stay readable."""
    with app.app_context():
        keys = list(db.session.scalars(select(ApiKey).order_by(ApiKey.id)))
        for key in keys:
            db.session.expunge(key)
        return keys


def add_key(
    app: Flask, user: User, name: str = "Script", scope: str = apikeys.READ, site_id: int = 0
) -> tuple[int, str]:
    """Make a key straight through the service; return its id and secret."""
    with app.app_context():
        owner = db.session.get(User, user.id)
        assert owner is not None
        site = db.session.get(Site, site_id) if site_id else None
        key, secret = apikeys.create_key(owner, name, scope, site)
        return key.id, secret


def create(client: FlaskClient, **data: str) -> Any:
    return client.post("/settings/api-keys/", data={"name": "Export", "scope": "read", **data})


# -- access --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/settings/"),
        ("POST", "/settings/api-keys/"),
        ("POST", "/settings/api-keys/1/revoke"),
    ],
)
def test_settings_need_a_login(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method, data={"name": "x", "scope": "read"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login/?next=")


def test_settings_page_lists_nothing_at_first(client: FlaskClient, logged_in: User) -> None:
    page = client.get("/settings/").get_data(as_text=True)
    assert "<h1>Settings</h1>" in page
    assert "API keys" in page
    assert "No API keys yet." in page
    assert "Authorization: Bearer &lt;key&gt;" in page
    assert 'href="/api/v1/docs"' in page
    assert 'href="/settings/"' in page  # the nav link


def test_the_nav_links_to_settings_only_when_logged_in(client: FlaskClient, owner: User) -> None:
    assert 'href="/settings/"' not in client.get("/").get_data(as_text=True)


# -- create: the secret, once --------------------------------------------------------------


def test_create_shows_the_secret_once_and_stores_only_its_hash(
    app: Flask, client: FlaskClient, logged_in: User
) -> None:
    response = create(client, name="Nightly export")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    secrets_shown = set(SECRET_IN_PAGE.findall(page))
    assert len(secrets_shown) == 1
    secret = secrets_shown.pop()
    assert "Copy it now, it will not be shown again." in page

    [key] = stored_keys(app)
    assert key.key_hash == apikeys.digest(secret)
    assert key.user_id == logged_in.id
    assert key.name == "Nightly export"
    assert secret.startswith(key.prefix)
    columns = [getattr(key, column.key) for column in ApiKey.__table__.columns]
    assert not any(secret in str(value) for value in columns)

    again = client.get("/settings/").get_data(as_text=True)
    assert secret not in again
    assert not SECRET_IN_PAGE.search(again)
    assert "Copy it now" not in again
    assert f"{key.prefix}…" in again
    assert "Nightly export" in again
    assert "Never" in again  # not used yet
    assert "Active" in again


def test_the_create_response_is_not_stored_by_caches(client: FlaskClient, logged_in: User) -> None:
    response = create(client)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_the_name_is_stripped(app: Flask, client: FlaskClient, logged_in: User) -> None:
    assert create(client, name="  Padded  ").status_code == 200
    assert [key.name for key in stored_keys(app)] == ["Padded"]


def test_scope_and_site_are_saved(
    app: Flask, client: FlaskClient, logged_in: User, make_site: Any
) -> None:
    make_site(logged_in, "https://first.example", name="First")
    site_id = make_site(logged_in, "https://blog.example", name="Blog")
    page = client.get("/settings/").get_data(as_text=True)
    assert f'<option value="{site_id}">Blog</option>' in page
    assert '<option selected value="">All sites</option>' in page

    assert create(client, name="Writer", scope="read-write", site=str(site_id)).status_code == 200
    assert create(client, name="Reader", site="").status_code == 200
    writer, reader = stored_keys(app)
    assert (writer.scope, writer.site_id) == (apikeys.READ_WRITE, site_id)
    assert (reader.scope, reader.site_id) == (apikeys.READ, None)

    page = client.get("/settings/").get_data(as_text=True)
    keys = page[page.index('<table class="keys">') :]
    rows = re.findall(r"<tr>.*?</tr>", keys, re.S)[1:]  # after the header row
    assert "Writer" in rows[1] and "Read and write" in rows[1] and "Blog" in rows[1]
    assert "Reader" in rows[0] and "All sites" in rows[0]  # newest first
    assert ">Read<" in rows[0]


def test_the_scope_defaults_to_read(client: FlaskClient, logged_in: User) -> None:
    page = client.get("/settings/").get_data(as_text=True)
    assert '<option selected value="read">Read</option>' in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": ""}, "Give the key a name."),
        ({"name": "    "}, "Give the key a name."),
        ({"name": "x" * 101}, "Field must be between 1 and 100 characters long."),
        ({"scope": "admin"}, "Not a valid choice."),
        ({"scope": ""}, "Not a valid choice."),
        ({"site": "999"}, "Choose one of your sites, or All sites."),
        ({"site": "abc"}, "Choose one of your sites, or All sites."),
    ],
)
def test_invalid_forms_are_a_400_and_make_nothing(
    app: Flask, client: FlaskClient, logged_in: User, data: dict[str, str], message: str
) -> None:
    response = create(client, **data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    assert not SECRET_IN_PAGE.search(page)
    assert stored_keys(app) == []


def test_a_name_of_exactly_100_characters_is_fine(
    app: Flask, client: FlaskClient, logged_in: User
) -> None:
    assert create(client, name="x" * 100).status_code == 200
    assert len(stored_keys(app)) == 1


def test_another_users_site_cannot_be_chosen(
    app: Flask, client: FlaskClient, logged_in: User, make_user: Any, make_site: Any
) -> None:
    stranger = make_user(email="stranger@example.com")
    theirs = make_site(stranger, "https://theirs.example", name="Theirs")
    page = client.get("/settings/").get_data(as_text=True)
    assert "Theirs" not in page
    response = create(client, site=str(theirs))
    assert response.status_code == 400
    assert "Choose one of your sites, or All sites." in response.get_data(as_text=True)
    assert stored_keys(app) == []


def test_names_are_escaped(
    app: Flask, client: FlaskClient, logged_in: User, make_site: Any
) -> None:
    payload = "<script>alert(1)</script>"
    site_id = make_site(logged_in, "https://x.example", name=payload)
    response = create(client, name=payload, site=str(site_id))
    assert response.status_code == 200
    for page in (response.get_data(as_text=True), client.get("/settings/").get_data(as_text=True)):
        assert payload not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# -- revoke --------------------------------------------------------------------------------


def test_revoke_a_key(app: Flask, client: FlaskClient, logged_in: User) -> None:
    key_id, _ = add_key(app, logged_in)
    page = client.get("/settings/").get_data(as_text=True)
    assert f'action="/settings/api-keys/{key_id}/revoke"' in page

    response = client.post(f"/settings/api-keys/{key_id}/revoke")
    assert response.status_code == 302
    assert response.headers["Location"] == "/settings/"
    [key] = stored_keys(app)
    assert key.revoked_at is not None
    assert not key.active

    page = client.get("/settings/").get_data(as_text=True)
    assert "Revoked the API key “Script”." in page  # the flash
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert f"Revoked {today}" in page
    assert f'action="/settings/api-keys/{key_id}/revoke"' not in page  # no button any more


def test_revoking_twice_is_harmless(app: Flask, client: FlaskClient, logged_in: User) -> None:
    key_id, _ = add_key(app, logged_in)
    assert client.post(f"/settings/api-keys/{key_id}/revoke").status_code == 302
    [first] = stored_keys(app)
    response = client.post(f"/settings/api-keys/{key_id}/revoke", follow_redirects=True)
    assert response.status_code == 200
    assert "was already revoked" in response.get_data(as_text=True)
    [second] = stored_keys(app)
    assert second.revoked_at == first.revoked_at


def test_another_users_key_is_a_404_and_stays_active(
    app: Flask, client: FlaskClient, logged_in: User, make_user: Any
) -> None:
    stranger = make_user(email="stranger@example.com")
    key_id, _ = add_key(app, stranger, name="Theirs")
    assert "Theirs" not in client.get("/settings/").get_data(as_text=True)
    assert client.post(f"/settings/api-keys/{key_id}/revoke").status_code == 404
    [key] = stored_keys(app)
    assert key.active


@pytest.mark.parametrize("key_id", ["999", "0", "-1", "abc", str(2**31)])
def test_unknown_keys_are_a_404(client: FlaskClient, logged_in: User, key_id: str) -> None:
    assert client.post(f"/settings/api-keys/{key_id}/revoke").status_code == 404


def test_revoke_needs_a_post(app: Flask, client: FlaskClient, logged_in: User) -> None:
    key_id, _ = add_key(app, logged_in)
    assert client.get(f"/settings/api-keys/{key_id}/revoke").status_code == 405
    assert stored_keys(app)[0].active


def _token(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def test_revoke_and_create_need_the_csrf_token(app_factory: Any) -> None:
    app = app_factory(WTF_CSRF_ENABLED=True)
    with app.app_context():
        user = accounts.register("csrf@example.com", PASSWORD)
        db.session.refresh(user)
        db.session.expunge(user)
    key_id, _ = add_key(app, user)
    client = app.test_client()
    token = _token(client, "/login/")
    login = {"email": "csrf@example.com", "password": PASSWORD, "csrf_token": token}
    assert client.post("/login/", data=login).status_code == 302

    assert client.post(f"/settings/api-keys/{key_id}/revoke").status_code == 400
    assert (
        client.post("/settings/api-keys/", data={"name": "x", "scope": "read"}).status_code == 400
    )
    assert len(stored_keys(app)) == 1
    assert stored_keys(app)[0].active

    token = _token(client, "/settings/")
    response = client.post(
        "/settings/api-keys/", data={"name": "x", "scope": "read", "csrf_token": token}
    )
    assert response.status_code == 200
    response = client.post(f"/settings/api-keys/{key_id}/revoke", data={"csrf_token": token})
    assert response.status_code == 302
    assert [key.active for key in stored_keys(app)] == [False, True]


# -- the cap -------------------------------------------------------------------------------


def test_at_most_fifty_active_keys(app: Flask, client: FlaskClient, logged_in: User) -> None:
    ids = [add_key(app, logged_in, name=f"Key {n}")[0] for n in range(MAX_ACTIVE_KEYS)]
    assert MAX_ACTIVE_KEYS == 50

    response = create(client, name="One too many")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "You already have 50 active keys" in page
    assert not SECRET_IN_PAGE.search(page)
    assert len(stored_keys(app)) == 50

    # Revoked keys do not count: revoke one and there is room again.
    assert client.post(f"/settings/api-keys/{ids[0]}/revoke").status_code == 302
    assert create(client, name="Replacement").status_code == 200
    assert len(stored_keys(app)) == 51
    assert create(client, name="Again too many").status_code == 400


def test_the_cap_is_per_user(
    app: Flask, client: FlaskClient, logged_in: User, make_user: Any
) -> None:
    stranger = make_user(email="stranger@example.com")
    for n in range(MAX_ACTIVE_KEYS):
        add_key(app, stranger, name=f"Key {n}")
    assert create(client).status_code == 200
