"""/api/v1/sites/{site_id}/alerts: the Alerts page by API — channels added (a webhook gets its
signing secret; an internal target is a 400 that stores nothing), rules added, read and
removed, a test sent and its delivery listed; bad input is a 400 that changes nothing."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from flask_tracking.extensions import db
from flask_tracking.notify import channels
from flask_tracking.notify.models import AlertChannel, AlertRule
from tests.api.helpers import error_of
from tests.receiver import Receiver


def test_channels_rules_and_a_test_delivery_by_api(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    app.config["ALERTS_ALLOW_PRIVATE_TARGETS"] = True  # the receiver is on loopback
    receiver = Receiver().start()
    try:
        base = f"/api/v1/sites/{site}/alerts"
        empty = client.get(base, headers=writer).get_json()
        assert empty == {"rules": [], "channels": [], "deliveries": []}
        made = client.post(
            base + "/channels",
            headers=writer,
            json={"kind": "webhook", "name": "Ops", "target": receiver.url},
        )
        assert made.status_code == 201, made.get_data(True)
        hook = made.get_json()
        assert hook["secret"].startswith("whsec_") and hook["target"] == receiver.url
        rule = client.post(
            base,
            headers=writer,
            json={"kind": "drop", "threshold": 10, "hours": 3, "channels": [hook["id"]]},
        )
        assert rule.status_code == 201, rule.get_data(True)
        body = rule.get_json()
        assert body["description"] == "fewer than 10 visitors in the last 3 hours"
        assert body["channels"] == [hook["id"]] and body["firing"] is False
        assert client.get(f"{base}/{body['id']}", headers=writer).get_json() == body
        tested = client.post(f"{base}/channels/{hook['id']}/test", headers=writer)
        assert tested.status_code == 200
        assert tested.get_json()["status"] == "sent" and tested.get_json()["event"] == "test"
        [received] = receiver.received
        assert channels.verify(
            hook["secret"], received.body, received.headers[channels.SIGNATURE_HEADER]
        )
        listed = client.get(base, headers=writer).get_json()
        assert [d["status"] for d in listed["deliveries"]] == ["sent"]
        assert client.delete(f"{base}/{body['id']}", headers=writer).status_code == 204
        assert client.get(f"{base}/{body['id']}", headers=writer).status_code == 404
        gone = client.delete(f"{base}/channels/{hook['id']}", headers=writer)
        assert gone.status_code == 204
        assert client.get(base, headers=writer).get_json()["channels"] == []
    finally:
        receiver.stop()


def test_bad_alerts_are_refused_and_change_nothing(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str], reader: Any
) -> None:
    base = f"/api/v1/sites/{site}/alerts"
    internal = client.post(
        base + "/channels",
        headers=writer,
        json={"kind": "webhook", "target": "http://169.254.169.254/latest/meta-data/"},
    )
    assert error_of(internal, 400)["message"].startswith("169.254.169.254 is a loopback")
    email = client.post(
        base + "/channels", headers=writer, json={"kind": "email", "target": "team@example.com"}
    ).get_json()
    for bad in (
        {"kind": "meteor", "channels": [email["id"]]},
        {"kind": "spike", "channels": []},
        {"kind": "spike", "channels": [999_999]},
        {"kind": "spike", "threshold": -1, "channels": [email["id"]]},
        {"kind": "drop", "hours": 0, "channels": [email["id"]]},
        {"kind": "goal", "subject": "no such goal", "channels": [email["id"]]},
        {"kind": "spike", "channels": [email["id"]], "extra": 1},
    ):
        assert client.post(base, headers=writer, json=bad).status_code == 400, bad
    assert client.post(f"{base}/channels/999999/test", headers=writer).status_code == 404
    assert client.post(base + "/channels", headers=reader, json={}).status_code == 403
    with app.app_context():
        assert db.session.query(AlertRule).count() == 0
        assert db.session.query(AlertChannel).count() == 1
