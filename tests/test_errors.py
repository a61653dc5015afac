"""One error handler: the right status, HTML in the layout or JSON, no traceback for users."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, abort
from flask.testing import FlaskClient


def test_missing_page_is_a_404_html_page_in_the_layout(client: FlaskClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert b"404 \xc2\xb7 Not found" in response.data
    assert b"Flask-Tracking</a>" in response.data  # the site's own layout


def test_error_without_its_own_template_uses_the_generic_page(client: FlaskClient) -> None:
    response = client.put("/login/")
    assert response.status_code == 405
    assert b"405 \xc2\xb7 Method Not Allowed" in response.data


def test_clients_that_prefer_json_get_the_json_envelope(client: FlaskClient) -> None:
    response = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert error["status"] == 404
    assert error["code"] == "not_found"
    assert error["message"]


def _broken_app(app_factory: Any, **overrides: Any) -> Flask:
    app: Flask = app_factory(**overrides)

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    @app.route("/teapot")
    def teapot() -> str:
        abort(418)

    return app


def test_unhandled_exception_is_a_500_page_without_traceback(
    app_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = _broken_app(app_factory)
    app.logger.propagate = True  # let caplog see the record
    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert b"Something went wrong" in response.data
    assert b"secret internals" not in response.data
    assert b"Traceback" not in response.data
    assert any("unhandled exception" in r.getMessage() and r.exc_info for r in caplog.records)


def test_unhandled_exception_as_json(app_factory: Any) -> None:
    app = _broken_app(app_factory)
    response = app.test_client().get("/boom", headers={"Accept": "application/json"})
    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "internal_server_error"
    assert b"secret internals" not in response.data


def test_any_http_error_keeps_its_status(app_factory: Any) -> None:
    app = _broken_app(app_factory)
    response = app.test_client().get("/teapot")
    assert response.status_code == 418


def test_csrf_failure_is_a_400_page(app_factory: Any) -> None:
    app = app_factory(WTF_CSRF_ENABLED=True)
    response = app.test_client().post(
        "/login/", data={"email": "a@example.com", "password": "whatever1"}
    )
    assert response.status_code == 400
    assert b"CSRF" in response.data


def test_an_unreachable_event_store_is_a_503_with_retry_after(
    app_factory: Any, tmp_path: Any
) -> None:
    """A worker whose store owner is away (restarting): the page and the API say so."""
    from flask_tracking.api.spec import PREFIX
    from flask_tracking.events import close_store
    from tests.api.helpers import new_site

    app = app_factory()
    site_id, headers = new_site(app)
    close_store(app)
    app.config["EVENTS_SOCKET"] = str(tmp_path / "nobody-listens.sock")
    client = app.test_client()
    api = client.get(f"{PREFIX}/sites/{site_id}/stats/aggregate", headers=headers)
    assert api.status_code == 503
    assert api.headers["Retry-After"] == "5"
    assert api.get_json()["error"]["code"] == "service_unavailable"
    assert "event store" in api.get_json()["error"]["message"]


def test_the_favicon_is_served_so_json_pages_log_no_404(client: FlaskClient) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype == "image/vnd.microsoft.icon"
    assert response.data[:4] == b"\x00\x00\x01\x00"  # an ICO directory: reserved 0, type 1
    assert b"\x89PNG" in response.data
    assert "max-age=604800" in response.headers["Cache-Control"]
    response.close()
    page = client.get("/login/").get_data(as_text=True)
    assert 'rel="icon" href="/static/favicon.svg"' in page
    svg = client.get("/static/favicon.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    svg.close()
