"""/api/v1/sites/{id}/goals: CRUD with the settings page's rules, and goals in the stats
reports (breakdown by goal, filter by goal) on test_stats.py's hand-counted data set.

Today (2026-03-10, UTC): 5 visitors; GB, SE and FR1 send Signup ({plan: free}, {plan: pro,
seats: 3}, {plan: pro}); GB and FR1 view /pricing; US, FR1 and FR2 view /docs or /blog….
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from flask_tracking.extensions import db
from flask_tracking.tracking.models import Goal
from tests.api.test_stats import get, ok

SIGNUP = {"name": "Signup", "kind": "event", "event": "Signup"}
PRO = {**SIGNUP, "name": "Pro", "property": "plan", "property_value": "pro"}
SEATS = {
    **SIGNUP,
    "name": "Seats",
    "revenue_property": "seats",
    "currency": "eur",  # stored upper-case
}
PRICING = {"name": "Pricing", "kind": "page", "path": "/pricing"}


def goals_url(site_id: int, goal_id: int | None = None) -> str:
    url = f"/api/v1/sites/{site_id}/goals"
    return url if goal_id is None else f"{url}/{goal_id}"


def create(client: FlaskClient, site_id: int, headers: dict[str, str], body: dict[str, Any]) -> Any:
    response = client.post(goals_url(site_id), json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def stored(app: Flask) -> list[tuple[str, str, str]]:
    with app.app_context():
        return [
            (g.name, g.kind, g.path or g.event) for g in db.session.query(Goal).order_by(Goal.id)
        ]


def test_goals_are_created_listed_read_replaced_and_deleted(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str], reader: dict[str, str]
) -> None:
    made = create(client, site, writer, PRO)
    assert made["name"] == "Pro" and made["kind"] == "event"
    assert (made["event"], made["property"], made["property_value"]) == ("Signup", "plan", "pro")
    assert made["description"] == "Event Signup with plan = pro"
    assert made["created_at"].endswith("Z")
    seats = create(client, site, writer, SEATS)
    assert (seats["revenue_property"], seats["currency"]) == ("seats", "EUR")
    listed = ok(client.get(goals_url(site), headers=reader))["data"]
    assert [goal["name"] for goal in listed] == ["Pro", "Seats"]
    assert ok(client.get(goals_url(site, made["id"]), headers=reader)) == made
    replaced = client.put(goals_url(site, made["id"]), json=PRICING, headers=writer)
    assert ok(replaced)["kind"] == "page" and replaced.get_json()["path"] == "/pricing"
    assert replaced.get_json()["event"] == "" and replaced.get_json()["id"] == made["id"]
    assert stored(app) == [("Pricing", "page", "/pricing"), ("Seats", "event", "Signup")]
    deleted = client.delete(goals_url(site, made["id"]), headers=writer)
    assert deleted.status_code == 204
    assert client.get(goals_url(site, made["id"]), headers=reader).status_code == 404
    assert stored(app) == [("Seats", "event", "Signup")]


def test_bad_definitions_are_400_naming_the_field_and_change_nothing(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str]
) -> None:
    create(client, site, writer, SIGNUP)
    cases = [
        ({**PRICING, "path": "pricing"}, "path", "starts with /"),
        ({**PRICING, "path": "/a\u0007b"}, "path", "control characters"),
        ({**PRICING, "event": "Signup"}, "kind", "path pattern only"),
        ({**SIGNUP, "name": "Other", "event": ""}, "event", "needs an event name"),
        ({**SIGNUP, "name": "Other", "revenue_property": "amount"}, "currency", "ISO 4217"),
        ({**SIGNUP, "name": "Other", "property": "plan"}, "property_value", "needs a value"),
        ({**SIGNUP}, "name", "already has a goal named 'Signup'"),
        ({**SIGNUP, "kind": "funnel"}, "kind", "Input should be"),
        ({**SIGNUP, "name": ""}, "name", "at least 1 character"),
        ({**SIGNUP, "colour": "red"}, "colour", "Unknown field"),
    ]
    for body, field, message in cases:
        response = client.post(goals_url(site), json=body, headers=writer)
        assert response.status_code == 400, body
        details = response.get_json()["error"]["details"]
        assert message in details.get(field, ""), (body, details)
    assert stored(app) == [("Signup", "event", "Signup")]
    goal_id = client.get(goals_url(site), headers=writer).get_json()["data"][0]["id"]
    response = client.put(goals_url(site, goal_id), json={**PRICING, "path": ""}, headers=writer)
    assert response.status_code == 400
    assert stored(app) == [("Signup", "event", "Signup")]


def test_breakdown_by_goal_and_filter_by_goal(
    app: Flask, client: FlaskClient, data: int, writer: dict[str, str], reader: dict[str, str]
) -> None:
    for body in (SIGNUP, PRO, SEATS, PRICING):
        create(client, data, writer, body)
    body = ok(get(client, data, "breakdown", reader, period="today", dimension="goal"))
    assert body["dimension"] == "goal" and body["total"] == 4
    rows = {row["value"]: (row["visitors"], row["events"], row["share"]) for row in body["results"]}
    assert rows == {
        "Signup": (3, 3, 60.0),  # GB, SE, FR1 of 5 visitors
        "Pro": (2, 2, 40.0),  # SE, FR1
        "Seats": (3, 3, 60.0),  # the same events: the revenue is on the dashboard
        "Pricing": (2, 2, 40.0),  # GB, FR1
    }
    # Visitors who converted, in every other report.
    converted = ok(get(client, data, "aggregate", reader, period="today", filter=["goal:is:Pro"]))
    assert converted["filters"] == ["goal:is:Pro"]
    assert converted["results"]["visitors"]["value"] == 2
    assert (
        converted["results"]["pageviews"]["value"] == 3
    )  # SE's /, FR1's /blog/post-1 and /pricing
    pages = ok(
        get(
            client,
            data,
            "breakdown",
            reader,
            period="today",
            dimension="country",
            filter=["goal:is:Pricing"],
        )
    )
    assert sorted(row["value"] for row in pages["results"]) == ["FR", "GB"]
    unknown = get(client, data, "aggregate", reader, period="today", filter=["goal:is:Nope"])
    assert unknown.status_code == 400
    assert "no goal named 'Nope'" in unknown.get_json()["error"]["message"]
    bad = get(client, data, "aggregate", reader, period="today", filter=["goal:is_not:Pro"])
    assert bad.status_code == 400
