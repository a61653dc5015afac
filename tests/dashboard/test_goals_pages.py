"""Goals on the site's settings page (add, refuse, remove) and the dashboard's Goals panel
(numbers, previous period, the goal filter), with goal names and patterns from strangers
escaped everywhere."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any
from urllib.parse import quote

from flask import Flask
from markupsafe import escape

from flask_tracking.extensions import db
from flask_tracking.tracking.models import Funnel, Goal, SharedLink
from flask_tracking.users import accounts
from tests.conftest import PASSWORD
from tests.dashboard.test_dashboard_views import MARCH, login

HOSTILE = '<script>alert("goal")</script>'


def add(client: Any, site_id: int, **fields: str) -> Any:
    return client.post(
        f"/sites/{site_id}/goals", data={f"goal-{name}": value for name, value in fields.items()}
    )


def names(app: Flask, site_id: int) -> list[str]:
    with app.app_context():
        return [g.name for g in db.session.query(Goal).filter_by(site_id=site_id).order_by(Goal.id)]


def test_goals_are_added_and_removed_on_the_settings_page(site: Any) -> None:
    app, site_id = site
    client = login(app)
    response = add(client, site_id, name="Pricing", kind="page", path="/pricing")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/sites/{site_id}/edit#goals")
    # The event fields of a page goal are ignored: they may hold what was typed before.
    response = add(
        client, site_id, name="Pro", kind="event", event="Signup", property="plan",
        property_value="pro", path="/ignored",
    )  # fmt: skip
    assert response.status_code == 302
    page = client.get(f"/sites/{site_id}/edit").get_data(as_text=True)
    assert 'id="goals"' in page
    assert "Visit /pricing" in page and "Event Signup with plan = pro" in page
    assert names(app, site_id) == ["Pricing", "Pro"]
    with app.app_context():
        goal_id = db.session.query(Goal).filter_by(name="Pricing").one().id
    response = client.post(f"/sites/{site_id}/goals/{goal_id}/delete")
    assert response.status_code == 302
    assert names(app, site_id) == ["Pro"]


def test_bad_goals_are_refused_with_the_reason_and_nothing_added(site: Any) -> None:
    app, site_id = site
    client = login(app)
    for fields, message in [
        ({"name": "G", "kind": "page", "path": "pricing"}, "starts with /"),
        ({"name": "G", "kind": "page", "path": "/a\x01"}, "control characters"),
        ({"name": "G", "kind": "event", "event": ""}, "needs an event name"),
        ({"name": "", "kind": "page", "path": "/a"}, "This field is required."),
        ({"name": "G", "kind": "event", "event": "E", "revenue_property": "n"}, "ISO 4217"),
    ]:
        response = add(client, site_id, **fields)
        assert response.status_code == 400, fields
        assert str(escape(message)) in response.get_data(as_text=True), fields
    assert names(app, site_id) == []
    add(client, site_id, name="Twice", kind="page", path="/a")
    response = add(client, site_id, name="Twice", kind="page", path="/b")
    assert response.status_code == 400
    assert "already has a goal named" in response.get_data(as_text=True)
    assert names(app, site_id) == ["Twice"]


def test_another_users_site_and_goals_are_404(site: Any) -> None:
    app, site_id = site
    owner = login(app)
    add(owner, site_id, name="Mine", kind="page", path="/a")
    with app.app_context():
        accounts.register("other@example.com", PASSWORD)
        goal_id = db.session.query(Goal).filter_by(name="Mine").one().id
    other = login(app, "other@example.com")
    assert add(other, site_id, name="Theirs", kind="page", path="/b").status_code == 404
    assert other.post(f"/sites/{site_id}/goals/{goal_id}/delete").status_code == 404
    assert names(app, site_id) == ["Mine"]


def test_the_goals_panel_shows_conversions_and_filters_by_goal(site: Any) -> None:
    app, site_id = site
    client = login(app)
    add(client, site_id, name="Pricing", kind="page", path="/pricing")
    add(client, site_id, name=HOSTILE, kind="event", event="Signup")
    page = client.get(f"/sites/{site_id}?{MARCH}").get_data(as_text=True)
    panel = page[page.index('data-panel="Goals"') :]
    panel = panel[: panel.index("</section>")]
    # Pricing: A on 03-07 and on 03-08 of 5 visitors; the hostile goal: B's Signup.
    pricing = re.search(r'data-goal="Pricing">(.*?)</tr>', panel, re.S)
    assert pricing is not None
    cells = re.findall(r'<td class="num">\s*([^<\s]+)', pricing.group(1))
    assert cells[:3] == ["2", "2", "40.0%"]
    assert HOSTILE not in page
    assert str(escape(HOSTILE)) in panel
    assert "&amp;filter=goal:is:%3Cscript%3Ealert(%22goal%22)%3C/script%3E" in panel
    filtered = client.get(
        f"/sites/{site_id}?{MARCH}&filter=goal:is:{quote(HOSTILE, safe='')}"
    ).get_data(as_text=True)
    assert HOSTILE not in filtered
    assert f"Goal is {escape(HOSTILE)!s}" in filtered  # the chip
    assert re.search(r'data-metric="visitors">.*?<strong class="value">1</strong>', filtered, re.S)
    missing = client.get(f"/sites/{site_id}?{MARCH}&filter=goal:is:Nope")
    assert missing.status_code == 400


def test_a_site_without_goals_says_how_to_add_one(site: Any) -> None:
    app, site_id = site
    page = login(app).get(f"/sites/{site_id}?{MARCH}").get_data(as_text=True)
    assert "No goals yet." in page and f"/sites/{site_id}/edit#goals" in page


def test_the_settings_page_escapes_goal_names_and_patterns(site: Any) -> None:
    app, site_id = site
    client = login(app)
    add(client, site_id, name=HOSTILE, kind="page", path='/"><img src=x onerror=alert(1)>')
    page = client.get(f"/sites/{site_id}/edit").get_data(as_text=True)
    assert HOSTILE not in page and "<img src=x" not in page
    assert str(escape(HOSTILE)) in page


def goal_ids(app: Flask, site_id: int) -> dict[str, int]:
    with app.app_context():
        return {g.name: g.id for g in db.session.query(Goal).filter_by(site_id=site_id)}


def test_a_funnel_is_defined_shown_exported_and_removed(site: Any) -> None:
    app, site_id = site
    client = login(app)
    add(client, site_id, name="Home", kind="page", path="/")
    add(client, site_id, name="Pricing", kind="page", path="/pricing")
    ids = goal_ids(app, site_id)
    form = {
        "funnel-name": HOSTILE,
        "funnel-steps-0": str(ids["Home"]),
        "funnel-steps-1": str(ids["Pricing"]),
    }
    response = client.post(f"/sites/{site_id}/funnels", data={**form, "funnel-steps-2": "0"})
    assert response.status_code == 302, response.get_data(as_text=True)
    settings = client.get(f"/sites/{site_id}/edit").get_data(as_text=True)
    assert HOSTILE not in settings and f"{escape(HOSTILE)}" in settings
    assert "Home → Pricing" in settings
    # A: / then /pricing in S1 (03-07 local); S2 is /pricing alone; B: /blog then /.
    url = f"/sites/{site_id}?{MARCH}&funnel={quote(HOSTILE, safe='')}"
    page = client.get(url).get_data(as_text=True)
    assert HOSTILE not in page
    panel = page[page.index('data-panel="Funnel"') :]
    panel = panel[: panel.index("</section>")]
    assert f"Funnel: {escape(HOSTILE)}" in panel
    counts = re.findall(r'<span class="count">([0-9,]+) ', panel)
    assert counts == ["2", "1"]  # entered: S1 and B's S3; on to /pricing: S1
    assert "50.0% of the step before · 1 dropped off · median 10m 0s after it" in panel
    export = client.get(f"/sites/{site_id}/export.zip?{MARCH}&funnel={quote(HOSTILE, safe='')}")
    with zipfile.ZipFile(io.BytesIO(export.data)) as archive:
        funnel_csv = archive.read("funnel.csv").decode()
        goals_csv = archive.read("goals.csv").decode()
    assert funnel_csv.splitlines()[1:] == ["1,Home,2,2,100.0,,,", "2,Pricing,1,1,50.0,50.0,1,600.0"]
    assert goals_csv.splitlines()[1].startswith("Home,Visit /,")
    missing = client.get(f"/sites/{site_id}?{MARCH}&funnel=Nope")
    assert missing.status_code == 400
    # A shared link shows the funnel too, with its links kept on the shared page.
    assert client.post(f"/sites/{site_id}/shares", data={"name": "Board"}).status_code == 302
    with app.app_context():
        token = db.session.query(SharedLink).one().token
    shared = app.test_client().get(f"/share/{token}?{MARCH}&funnel={quote(HOSTILE, safe='')}")
    text = shared.get_data(as_text=True)
    assert shared.status_code == 200 and HOSTILE not in text
    panel = text[text.index('data-panel="Funnel"') :]
    assert re.findall(r'<span class="count">([0-9,]+) ', panel[: panel.index("</section>")]) == [
        "2",
        "1",
    ]
    assert f"/share/{token}?" in text and f"/sites/{site_id}?" not in text
    with app.app_context():
        funnel_id = db.session.query(Funnel).one().id
    assert client.post(f"/sites/{site_id}/funnels/{funnel_id}/delete").status_code == 302
    with app.app_context():
        assert db.session.query(Funnel).count() == 0


def test_bad_funnels_on_the_settings_page_are_refused(site: Any) -> None:
    app, site_id = site
    client = login(app)
    add(client, site_id, name="Home", kind="page", path="/")
    add(client, site_id, name="Pricing", kind="page", path="/pricing")
    ids = goal_ids(app, site_id)
    one_step = client.post(
        f"/sites/{site_id}/funnels",
        data={"funnel-name": "F", "funnel-steps-0": str(ids["Home"])},
    )
    assert one_step.status_code == 400
    assert "A funnel of one step is a goal" in one_step.get_data(as_text=True)
    too_large = client.post(
        f"/sites/{site_id}/funnels",
        data={
            "funnel-name": "F",
            "funnel-steps-0": str(ids["Home"]),
            "funnel-steps-1": "2147483648",
        },
    )
    assert too_large.status_code == 400
    assert "This site has no goal 2147483648" in too_large.get_data(as_text=True)
    with app.app_context():
        accounts.register("stranger@example.com", PASSWORD)
    stranger = login(app, "stranger@example.com")
    form = {
        "funnel-name": "F",
        "funnel-steps-0": str(ids["Home"]),
        "funnel-steps-1": str(ids["Pricing"]),
    }
    assert stranger.post(f"/sites/{site_id}/funnels", data=form).status_code == 404
    with app.app_context():
        assert db.session.query(Funnel).count() == 0
