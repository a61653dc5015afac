"""CSRF on real forms, and stranger-supplied values rendered inert."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from flask_tracking.ingest import drain
from flask_tracking.users.models import User

PAYLOAD = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def _csrf_token(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def test_forms_refuse_posts_without_a_csrf_token(app_factory: Any) -> None:
    app = app_factory(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    for path, data in [
        ("/register/", {"email": "a@example.com", "password": "long-enough"}),
        ("/login/", {"email": "a@example.com", "password": "long-enough"}),
    ]:
        assert client.post(path, data=data).status_code == 400


def test_forms_work_with_their_csrf_token(app_factory: Any) -> None:
    app = app_factory(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    token = _csrf_token(client, "/register/")
    response = client.post(
        "/register/",
        data={"email": "a@example.com", "password": "long-enough", "csrf_token": token},
    )
    assert response.status_code == 302
    # Logged in now: logging out and adding a site also need the token.
    assert client.post("/sites/", data={"base_url": "https://e.com"}).status_code == 400
    token = _csrf_token(client, "/sites/")
    assert (
        client.post("/sites/", data={"base_url": "https://e.com", "csrf_token": token}).status_code
        == 302
    )
    assert client.post("/logout/").status_code == 400
    assert client.post("/logout/", data={"csrf_token": token}).status_code == 302


def test_tracked_values_are_rendered_inert(
    app: Flask, client: FlaskClient, logged_in: User, make_site: Any
) -> None:
    site_id = make_site(logged_in)
    client.get(
        f"/sites/{site_id}/visit",
        query_string={
            # `ref` is a query parameter the stored URL keeps, so the payload reaches the page.
            "url": "https://example.com/" + PAYLOAD + "?ref=" + PAYLOAD,
            "ref": "javascript:alert(3)//" + PAYLOAD,
            "event": PAYLOAD,
        },
        headers={"User-Agent": PAYLOAD},
    )
    assert drain(app) == 1
    page = client.get(f"/sites/{site_id}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # A javascript: referrer is shown as text, never as a link.
    assert 'href="javascript:' not in page
    assert "javascript:alert(3)" in page


def test_names_are_escaped_too(
    client: FlaskClient, make_user: Any, auth: Any, make_site: Any
) -> None:
    user = make_user(email="x@example.com", name=PAYLOAD)
    make_site(user, name=PAYLOAD)
    auth.login(email="x@example.com")
    for path in ("/", "/sites/"):
        page = client.get(path).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;" in page


def test_form_fields_carry_no_autocomplete_none(client: FlaskClient, logged_in: User) -> None:
    """The field macro leaves out an autocomplete it was not given (it once wrote "None")."""
    page = client.get("/sites/").get_data(as_text=True)
    assert 'name="base_url"' in page
    assert 'autocomplete="None"' not in page
