"""Every route and API operation with a site in its path, for every role and a stranger.

The walk reads the app's own URL map, so a new route cannot be forgotten: it must be listed in
tracking/access.py with its action, and each principal must get what that action says —
allowed (neither 403 nor 404, never a 5xx), 403 for a member whose role is too low, 404 for
someone with no role (as for a site that does not exist). Each request meets a fresh site with
a goal, a funnel, an experiment, a shared link, a member and an invitation, so what one
allowed request deletes cannot change the next answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from flask_tracking.extensions import db
from flask_tracking.imports.models import Import
from flask_tracking.notify.models import AlertChannel, AlertRule, ReportSchedule
from flask_tracking.reports.goals import make_goal
from flask_tracking.tracking import access
from flask_tracking.tracking.experiments import Draft, add_experiment
from flask_tracking.tracking.funnels import add_funnel
from flask_tracking.tracking.goals import add_goal
from flask_tracking.tracking.models import Invitation, Membership, SharedLink, Site
from flask_tracking.users import accounts, apikeys
from flask_tracking.users.models import ApiKey, User
from tests.conftest import PASSWORD

PRINCIPALS = ("owner", "admin", "editor", "viewer", "stranger")


@dataclass
class World:
    """One site with one of everything a path can name."""

    site_id: int
    ids: dict[str, int]


def build_world(app: Flask, users: dict[str, int]) -> World:
    with app.app_context():
        site = Site(owner_id=users["owner"], base_url="https://walk.example", name="Walk")
        db.session.add(site)
        db.session.flush()
        for role in ("admin", "editor", "viewer"):
            db.session.add(Membership(site_id=site.id, user_id=users[role], role=role))
        # Someone to change or remove, who is none of the principals.
        db.session.add(Membership(site_id=site.id, user_id=users["extra"], role="viewer"))
        db.session.commit()
        one = add_goal(site, make_goal("One", "page", path="/one"))
        two = add_goal(site, make_goal("Two", "page", path="/two"))
        funnel = add_funnel(site, "Path", [one.id, two.id])
        experiment = add_experiment(site, Draft("exp", "Exp", [("A", 1), ("B", 1)], [two.id]))
        link = SharedLink(site_id=site.id, token=f"t{site.id:031d}")
        invitation = Invitation(
            site_id=site.id,
            email="invited@example.com",
            role="viewer",
            token_hash=f"{site.id:064d}",
            expires_at=site.created_at.replace(year=2100),
        )
        extra = db.session.get(User, users["extra"])
        key = ApiKey(
            user=extra,
            site_id=site.id,
            name="theirs",
            scope="read",
            prefix="ft_walk",
            key_hash=f"{site.id:064x}",
        )
        report = ReportSchedule(
            site_id=site.id,
            email="boss@example.com",
            frequency="weekly",
            token_hash=f"{site.id:064d}",
            confirmed_at=site.created_at,
        )
        channel = AlertChannel(
            site_id=site.id, kind="email", name="Team", target="alerts@example.com"
        )
        rule = AlertRule(site_id=site.id, kind="spike", threshold=10, channels=[channel])
        imported = Import(
            site_id=site.id, source="plausible", kind="aggregates", digest="0" * 64, status="done"
        )
        db.session.add_all([link, invitation, key, report, channel, rule, imported])
        db.session.commit()
        return World(
            site.id,
            {
                "goal_id": one.id,
                "funnel_id": funnel.id,
                "experiment_id": experiment.id,
                "link_id": link.id,
                "invitation_id": invitation.id,
                "user_id": users["extra"],
                "key_id": key.id,
                "schedule_id": report.id,
                "report_id": report.id,
                "channel_id": channel.id,
                "rule_id": rule.id,
                "alert_id": rule.id,
                "import_id": imported.id,
            },
        )


VALUES = {"name": "pages", "action": "start"}


def path_for(rule: Any, world: World) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(2)
        if name == "site_id":
            return str(world.site_id)
        return str(world.ids.get(name) or VALUES[name])

    return re.sub(r"<(?:[^:<>]+:)?(?:[^<>]*?:)?([^<>:]*?)?(\w+)>", value, rule.rule)


def test_every_site_route_answers_each_role_as_its_action_says(app_factory: Any) -> None:
    app = app_factory(API_RATE_LIMIT="1000000 per minute", RATELIMIT_ENABLED=False)
    users: dict[str, int] = {}
    keys: dict[str, str] = {}
    clients: dict[str, FlaskClient] = {}
    with app.app_context():
        for name in (*PRINCIPALS, "extra"):
            user = accounts.register(f"{name}@example.com", PASSWORD, verified=True)
            users[name] = user.id
            keys[name] = apikeys.create_key(user, "walk", apikeys.READ_WRITE)[1]
    for name in PRINCIPALS:
        clients[name] = app.test_client()
        answer = clients[name].post(
            "/login/", data={"email": f"{name}@example.com", "password": PASSWORD}
        )
        assert answer.status_code == 302
    rules = [r for r in app.url_map.iter_rules() if "site_id" in r.arguments]
    unlisted = [
        r.endpoint
        for r in rules
        if r.endpoint not in access.ENDPOINTS and r.endpoint not in access.PUBLIC
    ]
    assert unlisted == [], "routes with a site but no action in tracking/access.py"
    wrong: list[str] = []
    walked = 0
    for rule in sorted(rules, key=lambda r: r.rule):
        if rule.endpoint in access.PUBLIC:
            continue
        action = access.ENDPOINTS[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for principal in PRINCIPALS:
                world = build_world(app, users)
                path = path_for(rule, world)
                answer = request(clients[principal], keys[principal], method, path)
                walked += 1
                role = None if principal == "stranger" else principal
                if access.allows(role, action):
                    ok = answer.status_code not in (403, 404) and answer.status_code < 500
                else:
                    ok = answer.status_code == (404 if role is None else 403)
                if not ok:
                    wrong.append(f"{method} {path} as {principal}: {answer.status_code}")
    assert wrong == []
    assert walked > 250  # 56 route-method pairs, 5 principals each, when written


def request(client: FlaskClient, key: str, method: str, path: str) -> Any:
    if path.startswith("/api/"):
        headers = {"Authorization": f"Bearer {key}"}
        body = {} if method in ("POST", "PUT", "PATCH") else None
        return client.open(path, method=method, headers=headers, json=body)
    return client.open(path, method=method, data={})
