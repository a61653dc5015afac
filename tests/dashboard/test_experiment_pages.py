"""Experiments on the site's pages: added from the form (and refused with the reason), started,
stopped, removed; the results page's numbers on test_experiments.py's exposures; names from
the owner and variant names from strangers' events escaped."""

from __future__ import annotations

from typing import Any

from flask import Flask
from markupsafe import escape

from flask_tracking.extensions import db
from flask_tracking.ingest import drain
from flask_tracking.reports.goals import make_goal
from flask_tracking.tracking.experiments import Draft, add_experiment
from flask_tracking.tracking.goals import add_goal
from flask_tracking.tracking.models import Experiment, Site
from flask_tracking.users import accounts
from tests.api.conversions.test_experiments import EVENTS, exposure, visitor
from tests.api.helpers import spool_event, utc
from tests.conftest import PASSWORD
from tests.dashboard.test_dashboard_views import login

HOSTILE = '<img src=x onerror="alert(1)">'


def goals(app: Flask, site_id: int) -> list[int]:
    with app.app_context():
        site = db.session.get(Site, site_id)
        signup = add_goal(site, make_goal("Signup", "event", event="Signup"))
        pricing = add_goal(site, make_goal("Pricing", "page", path="/pricing"))
        return [signup.id, pricing.id]


def form(**fields: Any) -> dict[str, Any]:
    values = {"key": "pricing", "name": "New pricing", "variants": "A = 50\nB = 50", **fields}
    return {f"experiment-{name}": value for name, value in values.items()}


def test_an_experiment_is_added_started_stopped_and_removed(site: Any) -> None:
    app, site_id = site
    ids = goals(app, site_id)
    client = login(app)
    page = client.get(f"/sites/{site_id}/experiments")
    assert page.status_code == 200 and "No experiments yet." in page.get_data(as_text=True)
    added = client.post(
        f"/sites/{site_id}/experiments",
        data=form(primary=str(ids[0]), **{"secondary-0": str(ids[1])}),
    )
    assert added.status_code == 302
    with app.app_context():
        row = db.session.query(Experiment).one()
        definition = row.definition
        experiment_id = row.id
    assert added.headers["Location"].endswith(f"/sites/{site_id}/experiments/{experiment_id}")
    assert definition.status == "draft" and definition.start is None
    assert [g.name for g in definition.goals] == ["Signup", "Pricing"]
    results = client.get(f"/sites/{site_id}/experiments/{experiment_id}").get_data(as_text=True)
    assert "A draft: nothing is counted until it starts." in results
    base = f"/sites/{site_id}/experiments/{experiment_id}"
    assert client.post(base + "/start").status_code == 302
    with app.app_context():
        started = db.session.get(Experiment, experiment_id).definition
    assert started.status == "running" and started.start is not None
    assert client.post(base + "/stop").status_code == 302
    with app.app_context():
        stopped = db.session.get(Experiment, experiment_id).definition
    assert stopped.status == "stopped" and stopped.end is not None and stopped.end >= started.start
    listed = client.get(f"/sites/{site_id}/experiments").get_data(as_text=True)
    assert 'data-experiment="pricing"' in listed and "stopped" in listed
    assert client.post(base + "/delete").status_code == 302
    with app.app_context():
        assert db.session.query(Experiment).count() == 0


def test_bad_experiments_are_refused_with_the_reason(site: Any) -> None:
    app, site_id = site
    ids = goals(app, site_id)
    client = login(app)
    cases = [
        (form(primary=str(ids[0]), variants="A = 0\nB = 50"), "zero or negative"),
        (form(primary=str(ids[0]), variants="A = -3\nB"), "zero or negative"),
        (form(primary=str(ids[0]), variants="A = lots\nB"), "is a whole number"),
        (form(primary=str(ids[0]), variants="Only"), "2 to 5 variants"),
        (form(primary="0"), "needs a primary goal"),
        (form(primary="2147483648"), "no goal 2147483648"),
        (form(primary=str(ids[0]), key="Has Spaces"), "lower-case letters"),
    ]
    for data, message in cases:
        response = client.post(f"/sites/{site_id}/experiments", data=data)
        assert response.status_code == 400, message
        assert str(escape(message)) in response.get_data(as_text=True), message
    with app.app_context():
        assert db.session.query(Experiment).count() == 0
        accounts.register("stranger@example.com", PASSWORD)
    stranger = login(app, "stranger@example.com")
    response = stranger.post(f"/sites/{site_id}/experiments", data=form(primary=str(ids[0])))
    assert response.status_code == 404
    assert stranger.get(f"/sites/{site_id}/experiments").status_code == 404


def test_the_results_page_shows_the_numbers_and_escapes_names(site: Any) -> None:
    app, site_id = site
    ids = goals(app, site_id)
    for number, at, path, extra in EVENTS:
        spool_event(app, site_id, visitor(number), at, path, **extra)
    # A stranger's variant name, for a variant the experiment does not have: not shown.
    spool_event(app, site_id, visitor(20), utc(2026, 3, 10, 9), "/", **exposure("pricing", HOSTILE))
    drain(app)
    with app.app_context():
        row = add_experiment(
            db.session.get(Site, site_id),
            Draft(
                "pricing",
                f"Pricing {HOSTILE}",
                [("A", 50), (f"B {HOSTILE}", 50)],
                ids,
                utc(2026, 3, 10, 8),
                utc(2026, 3, 10, 12),
                "stopped",
            ),
        )
        experiment_id = row.id
    client = login(app)
    page = client.get(f"/sites/{site_id}/experiments/{experiment_id}").get_data(as_text=True)
    assert HOSTILE not in page
    assert str(escape(f"Pricing {HOSTILE}")) in page
    # B's exposures were sent as "B": under its new name it has none; A's are the 5.
    assert 'data-exposed="A">5<' in page
    assert f'data-exposed="{escape(f"B {HOSTILE}")}">0<' in page
    assert "(primary goal)" in page and 'data-goal="Pricing"' in page
    assert "1 visitor saw more than one variant and is left out." in page
    assert "Sample ratio mismatch" not in page  # 5 against 0: p = 0.025, not under 0.001
