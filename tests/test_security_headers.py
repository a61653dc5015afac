"""Security headers on every answer, framing only where an owner allows it, the collector's
cross-origin headers, and the longest URL the app reads (answered in the usual envelope)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_tracking.extensions import db
from flask_tracking.tracking.models import SharedLink
from flask_tracking.users.models import User

PAGES = ["/", "/login/", "/register/", "/static/style.css", "/api/v1/docs", "/nowhere"]


def policy(response: Any) -> dict[str, str]:
    """The Content-Security-Policy as {directive: sources}."""
    text = response.headers["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in text.split(";"))


@pytest.mark.parametrize("path", PAGES)
def test_every_answer_carries_the_security_headers(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    response.close()  # a static file's answer holds the file open
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "camera=()" in headers["Permissions-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert policy(response)["frame-ancestors"] == "'none'"
    assert "Strict-Transport-Security" not in headers  # plain HTTP: no HSTS


@pytest.mark.parametrize("path", ["/", "/login/", "/register/", "/api/v1/docs", "/nowhere"])
def test_pages_allow_nothing_inline_and_nothing_from_elsewhere(
    client: FlaskClient, path: str
) -> None:
    response = client.get(path)
    assert response.mimetype == "text/html"
    directives = policy(response)
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["form-action"] == "'self'"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]


def test_the_dashboard_has_no_inline_script_or_style(
    app: Flask, client: FlaskClient, logged_in: User, make_site: Any
) -> None:
    """What the policy forbids must not be in the page: it would be broken, not just unsafe."""
    site_id = make_site(logged_in)
    client.get(
        f"/sites/{site_id}/visit",
        query_string={"url": "https://example.com/a"},
        environ_base={"REMOTE_ADDR": "8.8.8.8"},
    )
    from flask_tracking.ingest import drain

    drain(app)
    for path in (f"/sites/{site_id}", f"/sites/{site_id}/visits", "/settings/", "/sites/"):
        page = client.get(path).get_data(as_text=True)
        assert not re.search(r"\sstyle=[\"']", page), path  # (the snippet's is escaped text)
        assert not re.search(r"\son[a-z]+=", page), path  # no inline event handlers
        for script in re.findall(r"<script([^>]*)>", page):
            # Only external scripts, or data blocks the browser never runs.
            assert "src=" in script or 'type="application/json"' in script, (path, script)


def test_json_answers_may_run_nothing(app: Flask, client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.mimetype == "application/json"
    assert policy(response)["default-src"] == "'none'"


def test_hsts_is_sent_over_https_only(app: Flask, client: FlaskClient) -> None:
    secure = client.get("/", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in client.get("/").headers


def test_hsts_can_be_left_to_the_proxy(app_factory: Any) -> None:
    app = app_factory(HSTS_SECONDS=0)
    response = app.test_client().get("/", base_url="https://localhost")
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/js/tracker.js"), ("POST", "/api/event"), ("GET", "/sites/1/visit")],
)
def test_the_collector_and_tracker_keep_what_other_sites_pages_need(
    client: FlaskClient, method: str, path: str
) -> None:
    response = client.open(path, method=method, data="{}", content_type="application/json")
    headers = response.headers
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert headers["X-Content-Type-Options"] == "nosniff"
    # Nothing that would stop another site's page from loading the script or the beacon.
    assert "X-Frame-Options" not in headers
    assert "Cross-Origin-Opener-Policy" not in headers


def make_link(app: Flask, site_id: int, origins: str = "") -> str:
    with app.app_context():
        link = SharedLink(site_id=site_id, token="t" * 43, embed_origins=origins)
        db.session.add(link)
        db.session.commit()
        return link.token


def test_a_shared_dashboard_is_not_framed_by_default(
    app: Flask, client: FlaskClient, owner: User, make_site: Any
) -> None:
    token = make_link(app, make_site(owner))
    response = client.get(f"/share/{token}")
    assert response.status_code == 200
    assert policy(response)["frame-ancestors"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_a_shared_dashboard_may_be_framed_by_the_origins_its_owner_lists(
    app: Flask, client: FlaskClient, owner: User, make_site: Any
) -> None:
    token = make_link(app, make_site(owner), "https://blog.example.com\nhttp://localhost:8080")
    response = client.get(f"/share/{token}")
    assert policy(response)["frame-ancestors"] == "https://blog.example.com http://localhost:8080"
    assert "X-Frame-Options" not in response.headers
    # The owner's own pages stay unframeable.
    assert policy(client.get("/login/"))["frame-ancestors"] == "'none'"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("https://Blog.Example.com/", "https://blog.example.com"),
        ("  http://localhost:8080  ", "http://localhost:8080"),
        ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
        ("https://a.example\n\nhttps://a.example", "https://a.example"),
    ],
)
def test_embed_origins_are_normalised(
    app: Flask, client: FlaskClient, logged_in: User, make_site: Any, typed: str, stored: str
) -> None:
    site_id = make_site(logged_in)
    response = client.post(f"/sites/{site_id}/shares", data={"name": "x", "embed_origins": typed})
    assert response.status_code == 302
    with app.app_context():
        [link] = db.session.scalars(select(SharedLink)).all()
        assert link.embed_origins == stored


@pytest.mark.parametrize(
    "typed",
    [
        "blog.example.com",  # no scheme
        "javascript:alert(1)",
        "https://blog.example.com/path",
        "https://blog.example.com?q=1",
        "https://user@blog.example.com",
        "https://a.example; script-src *",  # would add a directive to the policy
        "https://a.example 'unsafe-inline'",
        "*",
        "ftp://files.example.com",
        "https://exa mple.com",
    ],
)
def test_anything_but_an_origin_is_refused(
    app: Flask, client: FlaskClient, logged_in: User, make_site: Any, typed: str
) -> None:
    site_id = make_site(logged_in)
    response = client.post(f"/sites/{site_id}/shares", data={"name": "x", "embed_origins": typed})
    assert response.status_code == 200
    assert b"Not an origin" in response.data
    with app.app_context():
        assert db.session.scalars(select(SharedLink)).all() == []


LONG = "x" * 17_000


@pytest.mark.parametrize(
    ("path", "json_answer"),
    [
        (f"/api/v1/sites?q={LONG}", True),
        (f"/sites/1/visit?url={LONG}", True),
        (f"/{LONG}", False),
        (f"/login/?next={LONG}", False),
    ],
)
def test_a_url_over_the_limit_is_a_414_in_the_usual_envelope(
    client: FlaskClient, path: str, json_answer: bool
) -> None:
    response = client.get(path)
    assert response.status_code == 414
    if json_answer:
        assert response.get_json()["error"]["code"] == "request_uri_too_long"
    else:
        assert response.mimetype == "text/html"
        assert b"Flask-Tracking" in response.data  # the site's own error page


def test_the_event_endpoint_answers_a_long_url_with_a_json_414(client: FlaskClient) -> None:
    response = client.post(
        f"/api/event?pad={LONG}", data=json.dumps({"site": 1}), content_type="application/json"
    )
    assert response.status_code == 414
    assert response.get_json()["error"]["code"] == "request_uri_too_long"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_a_url_just_under_the_limit_is_read(client: FlaskClient) -> None:
    response = client.get("/login/?next=" + "x" * (16 * 1024 - 30))
    assert response.status_code == 200


def test_the_openapi_document_states_the_url_limit(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    for path in document["paths"].values():
        for operation in path.values():
            assert "414" in operation["responses"]
    assert "16384" in document["info"]["description"]
