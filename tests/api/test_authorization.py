"""The authorization matrix: every operation of the API (read from its registry, so a new one is
covered the day it is added) against every kind of caller that must be refused.

For each refusal: the right status and code, the error envelope, nothing of user A's site in
the answer, and nothing changed (the site is intact, nothing was spooled).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from flask_tracking.api.spec import OPERATIONS, Operation
from flask_tracking.extensions import db
from flask_tracking.notify.models import AlertChannel, AlertRule, ReportSchedule
from flask_tracking.reports.goals import make_goal
from flask_tracking.tracking.experiments import Draft, add_experiment
from flask_tracking.tracking.funnels import add_funnel
from flask_tracking.tracking.goals import add_goal
from flask_tracking.tracking.models import Experiment, Funnel, Goal, Site
from flask_tracking.users import apikeys
from flask_tracking.users.models import ApiKey, User
from tests.api.conftest import bearer

SITE_NAME = "Alice's secret shop"
SITE_URL = "https://alice-secret.example"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"

# A valid request for each operation that needs more than its path (checked by test_examples).
QUERIES = {"breakdown": {"dimension": "page"}, "properties": {"event": "Signup"}}
BODIES = {
    "create_site": {"base_url": "https://new.example", "name": "New"},
    "update_site": {"name": "Renamed"},
    "send_event": {"url": SITE_URL + "/pricing", "ip": "203.0.113.7", "user_agent": UA},
    "send_events": {
        "events": [{"url": SITE_URL + "/pricing", "ip": "203.0.113.7", "user_agent": UA}]
    },
    "create_goal": {"name": "Bought", "kind": "event", "event": "Purchase"},
    "replace_goal": {"name": "Welcomed", "kind": "page", "path": "/welcome"},
    "create_funnel": {"name": "New funnel", "steps": "the site's goals"},
    "replace_funnel": {"name": "Renamed funnel", "steps": "the site's goals"},
    "create_experiment": {
        "key": "new-test",
        "name": "New test",
        "variants": [{"name": "A", "weight": 1}, {"name": "B", "weight": 1}],
        "primary_goal": "the site's first goal",
    },
    "create_report": {"email": "new@example.com", "frequency": "weekly", "weekday": 2},
    "create_alert": {"kind": "spike", "threshold": 50, "channels": "the site's channel"},
    "create_alert_channel": {"kind": "email", "target": "oncall@example.com"},
    "replace_experiment": {
        "key": "renamed-test",
        "name": "Renamed test",
        "variants": [{"name": "A", "weight": 2}, {"name": "B", "weight": 1}],
        "primary_goal": "the site's first goal",
    },
}
SUCCESS = {
    "create_site": 201,
    "delete_site": 204,
    "send_event": 202,
    "send_events": 202,
    "create_goal": 201,
    "delete_goal": 204,
    "create_funnel": 201,
    "delete_funnel": 204,
    "create_experiment": 201,
    "delete_experiment": 204,
    "create_report": 201,
    "delete_report": 204,
    "create_alert": 201,
    "delete_alert": 204,
    "create_alert_channel": 201,
    "delete_alert_channel": 204,
}
GOAL_NAME = "Alice's secret goal"


def op_id(op: Operation) -> str:
    """Name the test case after the operation."""
    return f"{op.method} {op.path}"


def call(
    client: FlaskClient, op: Operation, site_id: int, headers: dict[str, str], **extra: str
) -> Any:
    """Make a valid request for `op` on `site_id` (its first goal, its funnel, its
    experiment) with `headers`."""
    with client.application.app_context():
        goal_ids = list(db.session.scalars(select(Goal.id).where(Goal.site_id == site_id)))
        funnel_id = db.session.scalar(select(func.min(Funnel.id)).where(Funnel.site_id == site_id))
        experiment_id = db.session.scalar(
            select(func.min(Experiment.id)).where(Experiment.site_id == site_id)
        )
        report_id = db.session.scalar(
            select(func.min(ReportSchedule.id)).where(ReportSchedule.site_id == site_id)
        )
        alert_id = db.session.scalar(
            select(func.min(AlertRule.id)).where(AlertRule.site_id == site_id)
        )
        channel_id = db.session.scalar(
            select(func.min(AlertChannel.id)).where(AlertChannel.site_id == site_id)
        )
    path = "/api/v1" + op.path.replace("{site_id}", str(site_id))
    # The site's last goal, which no funnel or experiment uses (so deleting it succeeds).
    path = path.replace("{goal_id}", str(max(goal_ids, default=999_999)))
    path = path.replace("{funnel_id}", str(funnel_id or 999_999))
    path = path.replace("{experiment_id}", str(experiment_id or 999_999))
    path = path.replace("{report_id}", str(report_id or 999_999))
    path = path.replace("{alert_id}", str(alert_id or 999_999))
    path = path.replace("{channel_id}", str(channel_id or 999_999))
    query = {**QUERIES.get(op.name, {}), **extra}
    body = BODIES.get(op.name)
    if body and body.get("steps"):
        body = {**body, "steps": sorted(goal_ids)[:2] or [999_998, 999_999]}
    if body and body.get("channels"):
        body = {**body, "channels": [channel_id or 999_999]}
    if body and body.get("primary_goal"):
        body = {**body, "primary_goal": min(goal_ids, default=999_999)}
    return client.open(path, method=op.method, query_string=query, json=body, headers=headers)


@pytest.fixture
def world(app: Flask, make_user: Any, make_site: Any, make_key: Any) -> dict[str, Any]:
    """User A with a site and keys of every kind; user B with a site and a read-write key."""
    alice: User = make_user("alice@example.com")
    bob: User = make_user("bob@example.com")
    site = make_site(alice, SITE_URL, SITE_NAME)
    other = make_site(alice, "https://alice-other.example", "Alice's other site")
    bobs = make_site(bob, "https://bob.example", "Bob's site")
    with app.app_context():
        for site_id, name in ((site, GOAL_NAME), (other, "Other goal"), (bobs, "Bob's goal")):
            row = db.session.get(Site, site_id)
            first = add_goal(row, make_goal(name, "page", path="/thanks"))
            second = add_goal(row, make_goal(name + " 2", "event", event="Bought"))
            add_funnel(row, name + " funnel", [first.id, second.id])
            draft = Draft(
                name[:20].lower().replace(" ", "-").replace("'", ""),
                name + " test",
                [("A", 1), ("B", 1)],
                [first.id, second.id],
            )
            add_experiment(row, draft)
            add_goal(row, make_goal(name + " 3", "page", path="/other"))
            db.session.add(
                ReportSchedule(
                    site_id=site_id,
                    email=f"report-{site_id}@example.com",
                    frequency="weekly",
                    token_hash=f"{site_id:064d}",
                )
            )
            channel = AlertChannel(
                site_id=site_id, kind="email", name="Team", target=f"team-{site_id}@example.com"
            )
            db.session.add(AlertRule(site_id=site_id, kind="drop", threshold=1, channels=[channel]))
            db.session.commit()
    revoked = make_key(alice, apikeys.READ_WRITE, name="revoked")
    with app.app_context():
        key = apikeys.find_key(revoked)
        assert key is not None
        apikeys.revoke_key(key)
    return {
        "site": site,
        "other": other,
        "bobs": bobs,
        "alice_rw": make_key(alice, apikeys.READ_WRITE),
        "alice_read": make_key(alice, apikeys.READ),
        "alice_other_only": make_key(alice, apikeys.READ_WRITE, site_id=other),
        "bob_rw": make_key(bob, apikeys.READ_WRITE),
        "revoked": revoked,
    }


def assert_untouched(app: Flask, site_id: int) -> None:
    """The site is still there as it was, and nothing reached the spool."""
    with app.app_context():
        site = db.session.get(Site, site_id)
        assert site is not None
        assert (site.name, site.base_url) == (SITE_NAME, SITE_URL)
        assert db.session.query(Site).count() == 3  # nothing created either
        assert [goal.name for goal in site.goals] == [GOAL_NAME, GOAL_NAME + " 2", GOAL_NAME + " 3"]
        assert [funnel.name for funnel in site.funnels] == [GOAL_NAME + " funnel"]
        assert [step.goal.name for step in site.funnels[0].steps] == [GOAL_NAME, GOAL_NAME + " 2"]
        assert [experiment.name for experiment in site.experiments] == [GOAL_NAME + " test"]
        assert [link.goal.name for link in site.experiments[0].goals] == [
            GOAL_NAME,
            GOAL_NAME + " 2",
        ]
    spool = Path(app.config["SPOOL_DIR"])
    assert not any(path.stat().st_size for path in spool.rglob("*") if path.is_file())


def assert_refused(response: Any, status: int, code: str) -> None:
    """An error envelope with this status and code, and nothing of Alice's site in it."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.json["error"]["status"] == status
    assert response.json["error"]["code"] == code
    text = response.get_data(as_text=True)
    assert SITE_NAME not in text and "alice-secret" not in text and GOAL_NAME not in text


def test_the_matrix_covers_every_operation() -> None:
    names = {op.name for op in OPERATIONS}
    assert {"list_sites", "create_site", "get_site", "update_site", "delete_site"} <= names
    assert {"aggregate", "timeseries", "breakdown", "realtime", "send_event"} <= names
    assert {"list_events", "download"} <= names
    assert {"list_goals", "create_goal", "get_goal", "replace_goal", "delete_goal"} <= names
    assert {"list_funnels", "create_funnel", "get_funnel", "replace_funnel"} <= names
    assert {"list_experiments", "create_experiment", "experiment_results"} <= names
    assert set(QUERIES) | set(BODIES) <= names


@pytest.mark.parametrize("op", OPERATIONS, ids=op_id)
def test_examples_succeed_with_the_owners_key(
    app: Flask, client: FlaskClient, world: dict[str, Any], op: Operation
) -> None:
    """The matrix's requests are valid: with the right key they succeed."""
    response = call(client, op, world["site"], bearer(world["alice_rw"]))
    assert response.status_code == SUCCESS.get(op.name, 200), response.get_data(as_text=True)


@pytest.mark.parametrize("op", OPERATIONS, ids=op_id)
def test_no_key_is_401(
    app: Flask, client: FlaskClient, world: dict[str, Any], op: Operation
) -> None:
    response = call(client, op, world["site"], {})
    assert_refused(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_untouched(app, world["site"])


@pytest.mark.parametrize("op", OPERATIONS, ids=op_id)
@pytest.mark.parametrize(
    "header",
    [
        "Bearer ftk_" + "x" * 43,  # well-formed, unknown
        "Bearer nonsense",
        "Basic YWxpY2U6cGFzc3dvcmQ=",
        "Bearer ",
    ],
)
def test_unknown_or_malformed_key_is_401(
    app: Flask, client: FlaskClient, world: dict[str, Any], op: Operation, header: str
) -> None:
    response = call(client, op, world["site"], {"Authorization": header})
    assert response.status_code == 401
    assert response.json["error"]["code"] in ("unauthorized", "invalid_key")
    assert_untouched(app, world["site"])


@pytest.mark.parametrize("op", OPERATIONS, ids=op_id)
def test_revoked_key_is_401(
    app: Flask, client: FlaskClient, world: dict[str, Any], op: Operation
) -> None:
    response = call(client, op, world["site"], bearer(world["revoked"]))
    assert_refused(response, 401, "invalid_key")
    assert_untouched(app, world["site"])


@pytest.mark.parametrize("op", OPERATIONS, ids=op_id)
@pytest.mark.parametrize("parameter", ["api_key", "key", "token", "access_token", "q"])
def test_key_in_the_query_string_is_401_even_when_valid(
    app: Flask, client: FlaskClient, world: dict[str, Any], op: Operation, parameter: str
) -> None:
    headers = bearer(world["alice_rw"])  # even alongside a good header
    response = call(client, op, world["site"], headers, **{parameter: world["alice_rw"]})
    assert_refused(response, 401, "key_in_url")
    assert_untouched(app, world["site"])


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.scope == "read-write"], ids=op_id)
def test_read_key_on_a_write_operation_is_403(
    app: Flask, client: FlaskClient, world: dict[str, Any], op: Operation
) -> None:
    response = call(client, op, world["site"], bearer(world["alice_read"]))
    assert_refused(response, 403, "insufficient_scope")
    assert_untouched(app, world["site"])


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.scope == "read"], ids=op_id)
def test_read_key_may_read(
    app: Flask, client: FlaskClient, world: dict[str, Any], op: Operation
) -> None:
    response = call(client, op, world["site"], bearer(world["alice_read"]))
    assert response.status_code == 200


SITE_OPERATIONS = [op for op in OPERATIONS if "{site_id}" in op.path]


@pytest.mark.parametrize("op", SITE_OPERATIONS, ids=op_id)
def test_another_users_site_is_404_like_a_missing_one(
    app: Flask, client: FlaskClient, world: dict[str, Any], op: Operation
) -> None:
    theirs = call(client, op, world["site"], bearer(world["bob_rw"]))
    assert_refused(theirs, 404, "not_found")
    missing = call(client, op, 999_999, bearer(world["bob_rw"]))
    assert missing.status_code == 404
    # The same answer but for the id it names: nothing tells "exists" from "missing".
    assert theirs.json["error"]["message"].replace(str(world["site"]), "N") == missing.json[
        "error"
    ]["message"].replace("999999", "N")
    assert_untouched(app, world["site"])


@pytest.mark.parametrize("op", SITE_OPERATIONS, ids=op_id)
def test_a_key_limited_to_one_site_sees_no_other(
    app: Flask, client: FlaskClient, world: dict[str, Any], op: Operation
) -> None:
    response = call(client, op, world["site"], bearer(world["alice_other_only"]))
    assert_refused(response, 404, "not_found")
    assert_untouched(app, world["site"])


def test_listing_shows_only_the_keys_sites(client: FlaskClient, world: dict[str, Any]) -> None:
    bobs = client.get("/api/v1/sites", headers=bearer(world["bob_rw"])).json["data"]
    assert [site["id"] for site in bobs] == [world["bobs"]]
    limited = client.get("/api/v1/sites", headers=bearer(world["alice_other_only"])).json["data"]
    assert [site["id"] for site in limited] == [world["other"]]
    everything = client.get("/api/v1/sites", headers=bearer(world["alice_read"])).json["data"]
    assert [site["id"] for site in everything] == [world["site"], world["other"]]


def test_a_key_limited_to_one_site_cannot_add_sites(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    response = client.post(
        "/api/v1/sites",
        json=BODIES["create_site"],
        headers=bearer(world["alice_other_only"]),
    )
    assert_refused(response, 403, "insufficient_scope")
    assert_untouched(app, world["site"])


def test_use_is_recorded_to_the_minute(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    with app.app_context():
        key = apikeys.find_key(world["alice_read"])
        assert key is not None and key.last_used_at is None
    before = datetime.now(UTC).replace(microsecond=0)
    client.get("/api/v1/sites", headers=bearer(world["alice_read"]))
    with app.app_context():
        used = db.session.get(ApiKey, key.id)
        assert used is not None and used.last_used_at is not None
        assert used.last_used_at.replace(tzinfo=UTC) >= before


def test_rate_limit_is_per_key(app_factory: Any, site_in: Any, make_user: Any) -> None:
    app = app_factory(API_RATE_LIMIT="3 per minute")
    client = app.test_client()
    site = site_in(app)
    with app.app_context():
        owner = db.session.get(Site, site).owner  # type: ignore[union-attr]
        _key, first = apikeys.create_key(owner, "one", apikeys.READ)
        _key, second = apikeys.create_key(owner, "two", apikeys.READ)
    answers = [client.get("/api/v1/sites", headers=bearer(first)) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["X-RateLimit-Limit"] == "3"
    limited = answers[3]
    assert limited.json["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Another key of the same user has its own allowance.
    assert client.get("/api/v1/sites", headers=bearer(second)).status_code == 200


def test_the_document_and_reference_need_no_key(client: FlaskClient) -> None:
    assert client.get("/api/v1/openapi.json").status_code == 200
    assert client.get("/api/v1/docs").status_code == 200


def test_unknown_api_paths_and_methods_answer_in_the_envelope(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    missing = client.get("/api/v1/nothing-here", headers=bearer(world["alice_rw"]))
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    wrong = client.put(f"/api/v1/sites/{world['site']}", headers=bearer(world["alice_rw"]))
    assert wrong.status_code == 405 and wrong.json["error"]["status"] == 405
    assert "PATCH" in wrong.headers["Allow"]


def test_api_answers_are_not_cached(client: FlaskClient, world: dict[str, Any]) -> None:
    response = client.get("/api/v1/sites", headers=bearer(world["alice_read"]))
    assert response.headers["Cache-Control"] == "no-store"


def test_only_a_whole_key_in_the_url_is_refused(client: FlaskClient, world: dict[str, Any]) -> None:
    path = f"/api/v1/sites/{world['site']}/stats/aggregate"
    harmless = client.get(
        path,
        query_string={"filter": "page:contains:/ftk_docs"},
        headers=bearer(world["alice_read"]),
    )
    assert harmless.status_code == 200
    pasted = client.get(
        path,
        query_string={"filter": f"page:contains:{world['revoked']}"},
        headers=bearer(world["alice_read"]),
    )
    assert pasted.status_code == 401 and pasted.json["error"]["code"] == "key_in_url"


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.query is None], ids=op_id)
def test_operations_without_parameters_refuse_unknown_ones(
    app: Flask, client: FlaskClient, world: dict[str, Any], op: Operation
) -> None:
    response = call(client, op, world["site"], bearer(world["alice_rw"]), verbose="1")
    assert response.status_code == 400
    assert response.json["error"]["details"] == {"verbose": "Unknown parameter."}
    assert_untouched(app, world["site"])


@pytest.mark.parametrize("op", [op for op in OPERATIONS if "{goal_id}" in op.path], ids=op_id)
def test_a_goal_of_another_site_is_404_through_this_one(
    app: Flask, client: FlaskClient, world: dict[str, Any], op: Operation
) -> None:
    """Alice's own site in the path, Bob's goal id after it: not found, nothing changed."""
    with app.app_context():
        bobs_goal = db.session.scalar(
            select(func.max(Goal.id)).where(Goal.site_id == world["bobs"])
        )
    path = f"/api/v1/sites/{world['site']}/goals/{bobs_goal}"
    response = client.open(
        path, method=op.method, json=BODIES.get(op.name), headers=bearer(world["alice_rw"])
    )
    assert response.status_code == 404
    assert "Bob" not in response.get_data(as_text=True)
    with app.app_context():
        goal = db.session.get(Goal, bobs_goal)
        assert goal is not None and goal.name == "Bob's goal 3" and goal.path == "/other"


@pytest.mark.parametrize("op", [op for op in OPERATIONS if "{funnel_id}" in op.path], ids=op_id)
def test_a_funnel_of_another_site_is_404_through_this_one(
    app: Flask, client: FlaskClient, world: dict[str, Any], op: Operation
) -> None:
    with app.app_context():
        bobs = db.session.scalar(select(Funnel.id).where(Funnel.site_id == world["bobs"]))
        alices_goals = sorted(
            db.session.scalars(select(Goal.id).where(Goal.site_id == world["site"]))
        )
    body = BODIES.get(op.name)
    if body:
        body = {**body, "steps": alices_goals}
    response = client.open(
        f"/api/v1/sites/{world['site']}/funnels/{bobs}",
        method=op.method,
        json=body,
        headers=bearer(world["alice_rw"]),
    )
    assert response.status_code == 404
    assert "Bob" not in response.get_data(as_text=True)
    with app.app_context():
        funnel = db.session.get(Funnel, bobs)
        assert funnel is not None and funnel.name == "Bob's goal funnel"


@pytest.mark.parametrize("op", [op for op in OPERATIONS if "{experiment_id}" in op.path], ids=op_id)
def test_an_experiment_of_another_site_is_404_through_this_one(
    app: Flask, client: FlaskClient, world: dict[str, Any], op: Operation
) -> None:
    with app.app_context():
        bobs = db.session.scalar(select(Experiment.id).where(Experiment.site_id == world["bobs"]))
        alices_goal = min(db.session.scalars(select(Goal.id).where(Goal.site_id == world["site"])))
    body = BODIES.get(op.name)
    if body:
        body = {**body, "primary_goal": alices_goal}
    response = client.open(
        f"/api/v1/sites/{world['site']}/experiments/{bobs}" + op.path.split("{experiment_id}")[1],
        method=op.method,
        json=body,
        headers=bearer(world["alice_rw"]),
    )
    assert response.status_code == 404
    assert "Bob" not in response.get_data(as_text=True)
    with app.app_context():
        experiment = db.session.get(Experiment, bobs)
        assert experiment is not None and experiment.name == "Bob's goal test"
