"""/api/v1/sites/{site_id}/reports: the scheduled email reports of the Email reports page, by
API — listed, added (a member's address active at once, another awaiting confirmation), read,
stopped; editors and up; a duplicate is a 409, bad input a 400."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from flask_tracking.extensions import db
from flask_tracking.tracking.models import Membership
from flask_tracking.users import accounts, apikeys
from tests.api.helpers import bearer, error_of
from tests.conftest import PASSWORD
from tests.mailbox import queued


def test_reports_are_listed_added_read_and_stopped(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    base = f"/api/v1/sites/{site}/reports"
    assert client.get(base, headers=writer).get_json() == {"data": []}
    made = client.post(
        base,
        headers=writer,
        json={"email": "A@Example.com", "frequency": "weekly", "weekday": 4, "hour": 7},
    )
    assert made.status_code == 201, made.get_data(True)
    body = made.get_json()
    assert body["email"] == "a@example.com" and body["status"] == "active"  # the owner's
    assert body["schedule"] == "every Friday at 07:00"
    outside = client.post(base, headers=writer, json={"email": "x@b.example", "frequency": "daily"})
    assert outside.status_code == 201
    assert outside.get_json()["status"] == "awaiting_confirmation"
    assert [m.to for m in queued(app, kind="report_confirm")] == ["x@b.example"]
    listed = client.get(base, headers=writer).get_json()["data"]
    assert [r["email"] for r in listed] == ["a@example.com", "x@b.example"]
    one = client.get(f"{base}/{body['id']}", headers=writer)
    assert one.status_code == 200 and one.get_json() == body
    assert client.delete(f"{base}/{body['id']}", headers=writer).status_code == 204
    assert client.get(f"{base}/{body['id']}", headers=writer).status_code == 404


def test_duplicates_and_bad_input_are_refused(
    client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    base = f"/api/v1/sites/{site}/reports"
    report = {"email": "a@example.com", "frequency": "daily"}
    assert client.post(base, headers=writer, json=report).status_code == 201
    again = client.post(base, headers=writer, json=report)
    assert error_of(again, 409)["code"] == "conflict"
    for bad in (
        {"email": "not an address", "frequency": "daily"},
        {"email": "a@example.com", "frequency": "hourly"},
        {"email": "a@example.com", "frequency": "daily", "hour": 24},
        {"email": "a@example.com", "frequency": "weekly", "weekday": 7},
        {"email": "a@example.com", "frequency": "daily", "extra": 1},
    ):
        assert (
            error_of(client.post(base, headers=writer, json=bad), 400)["code"] == "invalid_request"
        )
    assert len(client.get(base, headers=writer).get_json()["data"]) == 1


def test_a_viewers_key_cannot_see_or_change_reports(
    app: Flask, client: FlaskClient, site: int
) -> None:
    with app.app_context():
        viewer = accounts.register("viewer@example.com", PASSWORD, verified=True)
        db.session.add(Membership(site_id=site, user_id=viewer.id, role="viewer"))
        db.session.commit()
        secret = apikeys.create_key(viewer, "v", apikeys.READ_WRITE)[1]
    headers: Any = bearer(secret)
    base = f"/api/v1/sites/{site}/reports"
    assert client.get(base, headers=headers).status_code == 403
    posted = client.post(
        base, headers=headers, json={"email": "v@example.com", "frequency": "daily"}
    )
    assert posted.status_code == 403
