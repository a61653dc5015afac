"""/api/v1/sites/{id}/experiments: CRUD, bad definitions, and results on a hand-built set of
exposures and conversions (the statistics themselves: tests/reports/test_significance.py).

2026-03-10 (UTC), the experiment "pricing" running from 08:00, read at 12:00:
- control "A": v0..v4 exposed after 08:00; v5 only at 07:00 (before the start: not counted);
- treatment "B": v6, v7, v8 exposed;
- v9 saw A then B: mixed, left out;
- v3 also saw another experiment's variant (ignored here);
- Signup (revenue from `amount`): v0 after exposure; v1 before its exposure (not counted);
  v6 and v7 after; v8 twice after (10 and 20);
- the page goal /pricing: v0 after exposure, v6 before its exposure (not counted).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_tracking.extensions import db
from flask_tracking.ingest import drain
from flask_tracking.reports.experiments import EXPOSURE, Variant, assign
from flask_tracking.reports.significance import Arm, compare, holm
from flask_tracking.tracking.models import Experiment, Goal
from tests.api.conversions.test_goals import create
from tests.api.helpers import FIREFOX, error_of, spool_event, utc
from tests.api.test_stats import ok

NOW = utc(2026, 3, 10, 12)
START = "2026-03-10T08:00:00Z"
SIGNUP = {
    "name": "Signup",
    "kind": "event",
    "event": "Signup",
    "revenue_property": "amount",
    "currency": "EUR",
}
PRICING = {"name": "Pricing", "kind": "page", "path": "/pricing"}
SPARE = {"name": "Spare", "kind": "page", "path": "/spare"}


def visitor(number: int) -> dict[str, Any]:
    return {"ip": f"198.51.100.{number + 10}", "user_agent": FIREFOX, "width": 1440}


def exposure(key: str, variant: str) -> dict[str, Any]:
    return {"name": EXPOSURE, "props": {"experiment": key, "variant": variant}}


SIGNED_UP = {"name": "Signup", "props": {"plan": "pro"}}
EVENTS: list[tuple[int, datetime, str, dict[str, Any]]] = [
    *((n, utc(2026, 3, 10, 9, n), "/", exposure("pricing", "A")) for n in range(5)),
    (5, utc(2026, 3, 10, 7, 0), "/", exposure("pricing", "A")),
    *((n, utc(2026, 3, 10, 9, n), "/", exposure("pricing", "B")) for n in (6, 7, 8)),
    (9, utc(2026, 3, 10, 9, 0), "/", exposure("pricing", "A")),
    (9, utc(2026, 3, 10, 9, 30), "/", exposure("pricing", "B")),
    (3, utc(2026, 3, 10, 9, 10), "/", exposure("other", "B")),
    (0, utc(2026, 3, 10, 10, 0), "/pricing", {}),
    (0, utc(2026, 3, 10, 10, 1), "/pricing", SIGNED_UP),
    (1, utc(2026, 3, 10, 8, 30), "/", SIGNED_UP),  # before v1's exposure at 09:01
    (6, utc(2026, 3, 10, 9, 0), "/pricing", {}),  # before v6's exposure at 09:06
    (6, utc(2026, 3, 10, 10, 0), "/", SIGNED_UP),
    (7, utc(2026, 3, 10, 10, 0), "/", SIGNED_UP),
    (8, utc(2026, 3, 10, 10, 0), "/", {"name": "Signup", "props": {"amount": 10}}),
    (8, utc(2026, 3, 10, 10, 5), "/", {"name": "Signup", "props": {"amount": 20}}),
    (9, utc(2026, 3, 10, 10, 0), "/", SIGNED_UP),  # mixed: left out
]


@pytest.fixture
def exposures(app: Flask, site: int, monkeypatch: pytest.MonkeyPatch) -> int:
    for number, at, path, extra in EVENTS:
        spool_event(app, site, visitor(number), at, path, **extra)
    drain(app)

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return NOW.astimezone(tz) if tz is not None else NOW.replace(tzinfo=None)

    monkeypatch.setattr("flask_tracking.api.experiments.datetime", Frozen)
    return site


@pytest.fixture
def goal_ids(client: FlaskClient, site: int, writer: dict[str, str]) -> list[int]:
    return [create(client, site, writer, body)["id"] for body in (SIGNUP, PRICING, SPARE)]


def url(site_id: int, experiment_id: int | None = None, suffix: str = "") -> str:
    base = f"/api/v1/sites/{site_id}/experiments"
    return base if experiment_id is None else f"{base}/{experiment_id}{suffix}"


def definition(goal_ids: list[int], **changes: Any) -> dict[str, Any]:
    return {
        "key": "pricing",
        "name": "New pricing page",
        "variants": [{"name": "A", "weight": 50}, {"name": "B", "weight": 50}],
        "primary_goal": goal_ids[0],
        "secondary_goals": [goal_ids[1]],
        "start": START,
        "status": "running",
        **changes,
    }


def test_results_count_exposed_visitors_and_their_later_conversions(
    client: FlaskClient,
    exposures: int,
    goal_ids: list[int],
    writer: dict[str, str],
    reader: dict[str, str],
) -> None:
    created = client.post(url(exposures), json=definition(goal_ids), headers=writer)
    assert created.status_code == 201, created.get_data(as_text=True)
    experiment = created.get_json()
    assert experiment["primary_goal"] == {"id": goal_ids[0], "name": "Signup"}
    assert [v["share"] for v in experiment["variants"]] == [50.0, 50.0]
    found = ok(client.get(url(exposures, experiment["id"], "/results"), headers=reader))
    assert found["exposed"] == {"A": 5, "B": 3}
    assert found["mixed"] == 1
    assert found["end"] == "2026-03-10T12:00:00Z"
    signup, pricing = found["goals"]
    assert (signup["goal"], signup["primary"], pricing["primary"]) == ("Signup", True, False)
    arms = {arm["variant"]: arm for arm in signup["arms"]}
    assert (arms["A"]["converted"], arms["A"]["conversions"], arms["A"]["rate"]) == (1, 1, 20.0)
    assert (arms["B"]["converted"], arms["B"]["conversions"], arms["B"]["revenue"]) == (3, 4, 30.0)
    assert [(a["variant"], a["converted"]) for a in pricing["arms"]] == [("A", 1), ("B", 0)]
    # The numbers are reports/significance.py's on those counts, Holm over the two goals.
    on_signup = compare(Arm(5, 1), Arm(3, 3))
    on_pricing = compare(Arm(5, 1), Arm(3, 0))
    [shown] = signup["comparisons"]
    assert shown["variant"] == "B"
    assert shown["difference"] == pytest.approx(80.0)
    assert shown["p_value"] == pytest.approx(on_signup.p_value, rel=1e-3)
    adjusted = holm([on_signup.p_value, on_pricing.p_value])
    assert shown["adjusted_p_value"] == pytest.approx(adjusted[0], rel=1e-3)
    assert pricing["comparisons"][0]["adjusted_p_value"] == pytest.approx(adjusted[1], rel=1e-3)
    assert shown["chance_to_beat"] == pytest.approx(100 * on_signup.chance_to_beat, abs=0.01)
    assert shown["sequential_p_value"] == pytest.approx(on_signup.sequential_p_value, rel=1e-3)
    assert found["sample_ratio_mismatch"] is False
    # Stopped at 10:00: the conversions after it (v8's second, at 10:05) are not counted.
    stopped = definition(goal_ids, status="stopped", end="2026-03-10T10:02:00Z")
    assert client.put(url(exposures, experiment["id"]), json=stopped, headers=writer).status_code
    found = ok(client.get(url(exposures, experiment["id"], "/results"), headers=reader))
    arms = {arm["variant"]: arm for arm in found["goals"][0]["arms"]}
    assert (arms["B"]["converted"], arms["B"]["conversions"], arms["B"]["revenue"]) == (3, 3, 10.0)


def test_a_draft_has_no_results_and_unequal_weights_are_checked(
    client: FlaskClient,
    exposures: int,
    goal_ids: list[int],
    writer: dict[str, str],
    reader: dict[str, str],
) -> None:
    draft = definition(goal_ids, status="draft", start=None)
    experiment = client.post(url(exposures), json=draft, headers=writer).get_json()
    found = ok(client.get(url(exposures, experiment["id"], "/results"), headers=reader))
    assert found["exposed"] == {"A": 0, "B": 0} and found["start"] is None
    assert found["goals"][0]["comparisons"][0]["p_value"] is None
    # 5 and 3 against 1:9 weights: off beyond chance? Not with 8 visitors; with the weights
    # 99:1 it is (p < 0.001).
    skewed = definition(
        goal_ids, variants=[{"name": "A", "weight": 1}, {"name": "B", "weight": 99}]
    )
    assert client.put(url(exposures, experiment["id"]), json=skewed, headers=writer).status_code
    found = ok(client.get(url(exposures, experiment["id"], "/results"), headers=reader))
    assert found["sample_ratio_mismatch"] is True
    assert found["experiment"]["variants"][1]["share"] == 99.0


def test_bad_experiments_are_400_and_change_nothing(
    app: Flask, client: FlaskClient, site: int, goal_ids: list[int], writer: dict[str, str]
) -> None:
    one = [{"name": "A", "weight": 1}]
    six = [{"name": f"V{n}", "weight": 1} for n in range(6)]
    cases = [
        ({"variants": one}, "variants", "2 to 5 variants"),
        ({"variants": six}, "variants", "2 to 5 variants"),
        ({"variants": [{"name": "A", "weight": 0}, {"name": "B"}]}, "variants", "zero or neg"),
        ({"variants": [{"name": "A", "weight": -5}, {"name": "B"}]}, "variants", "zero or neg"),
        ({"variants": [{"name": "A"}, {"name": "A"}]}, "variants", "same name"),
        ({"variants": [{"name": "A\x00"}, {"name": "B"}]}, "variants", "control characters"),
        ({"key": "Pricing Page"}, "key", "lower-case letters"),
        ({"primary_goal": 999_999}, "goals", "no goal 999999"),
        ({"secondary_goals": [goal_ids[0]]}, "goals", "listed twice"),
        ({"secondary_goals": [goal_ids[1]] * 6}, "goals", "at most 5 secondary"),
        ({"end": "2026-03-10T07:00:00Z"}, "end", "after the start"),
        ({"start": None}, "start", "has a start"),
        ({"start": "2026-03-10T08:00:00"}, "start", "timezone"),
        ({"status": "paused"}, "status", "Input should be"),
        ({"primary_goal": 2**31}, "primary_goal", "less than or equal to"),
    ]
    for changes, field, message in cases:
        response = client.post(url(site), json=definition(goal_ids, **changes), headers=writer)
        error = error_of(response, 400)
        assert message in error["details"].get(field, ""), (changes, error)
    with app.app_context():
        assert db.session.query(Experiment).count() == 0
    first = client.post(url(site), json=definition(goal_ids), headers=writer)
    assert first.status_code == 201
    again = error_of(client.post(url(site), json=definition(goal_ids), headers=writer), 400)
    assert "already has an experiment with the key 'pricing'" in again["details"]["key"]


def test_an_experiment_is_read_replaced_and_deleted_and_keeps_its_goals(
    app: Flask,
    client: FlaskClient,
    site: int,
    goal_ids: list[int],
    writer: dict[str, str],
    reader: dict[str, str],
) -> None:
    experiment = client.post(url(site), json=definition(goal_ids), headers=writer).get_json()
    listed = ok(client.get(url(site), headers=reader))["data"]
    assert [e["key"] for e in listed] == ["pricing"]
    refused = client.delete(f"/api/v1/sites/{site}/goals/{goal_ids[1]}", headers=writer)
    assert refused.status_code == 409
    assert (
        "is a goal of the experiment(s) 'New pricing page'"
        in refused.get_json()["error"]["message"]
    )
    three = definition(
        goal_ids,
        name="Three ways",
        variants=[{"name": "A"}, {"name": "B"}, {"name": "C", "weight": 20}],
        secondary_goals=[goal_ids[2]],
    )
    replaced = ok(client.put(url(site, experiment["id"]), json=three, headers=writer))
    assert [v["name"] for v in replaced["variants"]] == ["A", "B", "C"]
    assert replaced["secondary_goals"] == [{"id": goal_ids[2], "name": "Spare"}]
    assert ok(client.get(url(site, experiment["id"]), headers=reader)) == replaced
    # Pricing is no longer used: it can go.
    gone = client.delete(f"/api/v1/sites/{site}/goals/{goal_ids[1]}", headers=writer)
    assert gone.status_code == 204
    assert client.delete(url(site, experiment["id"]), headers=writer).status_code == 204
    assert client.get(url(site, experiment["id"]), headers=reader).status_code == 404
    with app.app_context():
        assert db.session.query(Goal).count() == 2


def test_a_server_side_experiment_reported_through_the_events_api(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str], reader: dict[str, str]
) -> None:
    """A Flask app that assigns variants itself (reports/experiments.assign on its user ids,
    as the tracker would) reports exposures and conversions with an API key."""
    goal = create(client, site, writer, {"name": "Upgrade", "kind": "event", "event": "Upgrade"})
    body = {
        "key": "checkout-copy",
        "name": "Checkout copy",
        "variants": [{"name": "old", "weight": 1}, {"name": "new", "weight": 1}],
        "primary_goal": goal["id"],
        "start": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "status": "running",
    }
    experiment = client.post(url(site), json=body, headers=writer).get_json()
    variants = [Variant("old", 1), Variant("new", 1)]
    expected: dict[str, list[int]] = {"old": [0, 0], "new": [0, 0]}
    for user in range(40):
        variant = assign("checkout-copy", f"user-{user}", variants)
        who = {"ip": f"203.0.113.{user + 1}", "user_agent": FIREFOX}
        page = "https://a.example/checkout"
        props = {"experiment": "checkout-copy", "variant": variant}
        sent = [{"name": EXPOSURE, "url": page, "props": props, **who}]
        if user % 3 == 0:
            sent.append({"name": "Upgrade", "url": page, **who})
        for event in sent:
            response = client.post(f"/api/v1/sites/{site}/events", json=event, headers=writer)
            assert response.status_code == 202, response.get_data(as_text=True)
        expected[variant][0] += 1
        expected[variant][1] += user % 3 == 0
    assert min(n for n, _ in expected.values()) > 10  # the hash splits them
    drain(app)
    found = ok(client.get(url(site, experiment["id"], "/results"), headers=reader))
    assert found["exposed"] == {name: counts[0] for name, counts in expected.items()}
    arms = {arm["variant"]: arm["converted"] for arm in found["goals"][0]["arms"]}
    assert arms == {name: counts[1] for name, counts in expected.items()}
