"""/api/v1/sites/{id}/funnels: CRUD, and a funnel's results on test_stats.py's data set.

Today (2026-03-10, UTC): GB views / then /pricing, then sends Signup; SE views / and sends
Signup; FR1 views /blog/post-1, /pricing and sends Signup; US and FR2 never reach / or
/pricing.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_tracking.extensions import db
from flask_tracking.tracking.models import Funnel, Goal
from tests.api.conversions.test_goals import create
from tests.api.test_stats import ok

HOME = {"name": "Home", "kind": "page", "path": "/"}
PRICING = {"name": "Pricing", "kind": "page", "path": "/pricing"}
SIGNUP = {"name": "Signup", "kind": "event", "event": "Signup"}


@pytest.fixture
def goal_ids(client: FlaskClient, data: int, writer: dict[str, str]) -> list[int]:
    return [create(client, data, writer, body)["id"] for body in (HOME, PRICING, SIGNUP)]


def funnels_url(site_id: int, funnel_id: int | None = None) -> str:
    url = f"/api/v1/sites/{site_id}/funnels"
    return url if funnel_id is None else f"{url}/{funnel_id}"


def test_a_funnel_is_created_read_with_its_results_replaced_and_deleted(
    app: Flask,
    client: FlaskClient,
    data: int,
    goal_ids: list[int],
    writer: dict[str, str],
    reader: dict[str, str],
) -> None:
    made = client.post(
        funnels_url(data), json={"name": "Checkout", "steps": goal_ids}, headers=writer
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    funnel = made.get_json()
    assert [step["name"] for step in funnel["steps"]] == ["Home", "Pricing", "Signup"]
    assert funnel["across_visits"] is False
    listed = ok(client.get(funnels_url(data), headers=reader))["data"]
    assert [f["name"] for f in listed] == ["Checkout"]
    body = ok(client.get(funnels_url(data, funnel["id"]) + "?period=today", headers=reader))
    assert body["funnel"] == funnel
    steps = [
        (s["step"], s["goal"], s["visits"], s["of_entered"], s["dropped"]) for s in body["steps"]
    ]
    assert steps == [
        (1, "Home", 2, 100.0, None),
        (2, "Pricing", 1, 50.0, 1),
        (3, "Signup", 1, 50.0, 0),
    ]
    assert body["converted"] == 50.0
    assert body["steps"][1]["median_seconds"] == 300.0  # GB: / at 09:00, /pricing at 09:05
    # With a filter: only the British visit.
    gb = ok(
        client.get(
            funnels_url(data, funnel["id"]) + "?period=today&filter=country:is:GB", headers=reader
        )
    )
    assert [s["visits"] for s in gb["steps"]] == [1, 1, 1] and gb["filters"] == ["country:is:GB"]
    replaced = client.put(
        funnels_url(data, funnel["id"]),
        json={"name": "Pricing to signup", "steps": goal_ids[1:]},
        headers=writer,
    )
    assert ok(replaced)["name"] == "Pricing to signup"
    body = ok(client.get(funnels_url(data, funnel["id"]) + "?period=today", headers=reader))
    assert [s["visits"] for s in body["steps"]] == [2, 2]  # GB and FR1 both signed up
    assert client.delete(funnels_url(data, funnel["id"]), headers=writer).status_code == 204
    with app.app_context():
        assert db.session.query(Funnel).count() == 0
        assert db.session.query(Goal).count() == 3  # the goals stay


def test_bad_funnels_are_400_and_a_used_goal_cannot_be_deleted(
    app: Flask,
    client: FlaskClient,
    data: int,
    goal_ids: list[int],
    writer: dict[str, str],
) -> None:
    cases = [
        ({"name": "F", "steps": []}, "steps", "needs 2 to 8 steps"),
        ({"name": "F", "steps": goal_ids[:1]}, "steps", "A funnel of one step is a goal"),
        ({"name": "F", "steps": goal_ids * 3}, "steps", "at most 8 steps"),
        ({"name": "F", "steps": [goal_ids[0], 999_999]}, "steps", "no goal 999999"),
        ({"name": "F", "steps": [goal_ids[0], 2**31]}, "steps.1", "less than or equal to"),
        ({"name": "F", "steps": [0, goal_ids[0]]}, "steps.0", "greater than or equal to 1"),
        ({"name": "", "steps": goal_ids}, "name", "at least 1 character"),
        ({"name": "F", "steps": goal_ids, "across": True}, "across", "Unknown field"),
    ]
    for body, field, message in cases:
        response = client.post(funnels_url(data), json=body, headers=writer)
        assert response.status_code == 400, body
        assert message in response.get_json()["error"]["details"].get(field, ""), body
    with app.app_context():
        assert db.session.query(Funnel).count() == 0
    client.post(funnels_url(data), json={"name": "F", "steps": goal_ids}, headers=writer)
    refused = client.delete(f"/api/v1/sites/{data}/goals/{goal_ids[1]}", headers=writer)
    assert refused.status_code == 409
    assert "is a step of the funnel(s) 'F'" in refused.get_json()["error"]["message"]
    with app.app_context():
        assert db.session.query(Goal).count() == 3
