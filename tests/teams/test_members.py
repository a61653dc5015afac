"""Sharing a site: invitations by email, accepting them (logged in, or registering on the way),
roles that apply at once to sessions and API keys, removal, leaving, transfer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_tracking.extensions import db
from flask_tracking.tracking.models import Invitation, Site
from flask_tracking.users import apikeys
from flask_tracking.users.models import ApiKey, User
from tests.conftest import PASSWORD
from tests.mailbox import queued


def log_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    answer = client.post("/login/", data={"email": email, "password": PASSWORD})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


def invite(client: FlaskClient, site_id: int, email: str, role: str = "viewer") -> Any:
    return client.post(f"/sites/{site_id}/members", data={"email": email, "role": role})


def key_for(app: Flask, email: str) -> str:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        assert user is not None
        return apikeys.create_key(user, "k", apikeys.READ_WRITE)[1]


def test_an_invited_person_registers_on_the_way_accepts_and_reads_but_cannot_edit(
    app: Flask, owner: User, make_site: Any
) -> None:
    site_id = make_site(owner, "https://shop.example", "Shop")
    boss = log_in(app, owner.email)
    assert invite(boss, site_id, "Teammate@Example.com").status_code == 302
    [mail] = queued(app, kind="invitation")
    assert mail.to == "teammate@example.com"
    assert "Shop" in mail.subject and "viewer" in mail.text.lower()
    link = mail.link()
    stranger = app.test_client()
    page = stranger.get(link).get_data(as_text=True)
    assert "Log in or register with teammate@example.com" in page
    assert stranger.post(link).status_code == 403  # not logged in: nothing accepted
    form = stranger.get(f"/register/?next={link}&email=teammate@example.com")
    assert 'value="teammate@example.com"' in form.get_data(as_text=True)
    made = stranger.post(
        f"/register/?next={link}",
        data={"email": "teammate@example.com", "password": PASSWORD},
    )
    assert made.status_code == 302 and made.headers["Location"] == link
    accepted = stranger.post(link)
    assert accepted.status_code == 302
    assert accepted.headers["Location"].endswith(f"/sites/{site_id}")
    assert stranger.post(link).status_code == 400  # used once
    sites = stranger.get("/sites/").get_data(as_text=True)
    assert "Shop" in sites and "viewer" in sites
    dashboard = stranger.get(f"/sites/{site_id}")
    assert dashboard.status_code == 200
    shown = dashboard.get_data(as_text=True)
    for hidden in ("/edit", "/delete", "/members", "/shares", "/reports"):  # not for a viewer
        assert f"/sites/{site_id}{hidden}" not in shown
    owners = boss.get(f"/sites/{site_id}").get_data(as_text=True)
    for link_to in ("/edit", "/delete", "/members", "/shares", "/reports"):
        assert f"/sites/{site_id}{link_to}" in owners
    assert stranger.get(f"/sites/{site_id}/edit").status_code == 403
    assert stranger.post(f"/sites/{site_id}/goals", data={"goal-name": "X"}).status_code == 403
    assert stranger.get(f"/sites/{site_id}/members").status_code == 403


def test_roles_and_removal_apply_at_once_to_open_sessions_and_api_keys(
    app: Flask, owner: User, make_user: Any, make_site: Any
) -> None:
    site_id = make_site(owner)
    mate = make_user("mate@example.com")
    boss = log_in(app, owner.email)
    invite(boss, site_id, mate.email, "viewer")
    member = log_in(app, mate.email)
    assert member.post(queued(app, kind="invitation")[0].link()).status_code == 302
    key = {"Authorization": f"Bearer {key_for(app, mate.email)}"}
    goal = {"name": "Signup", "kind": "event", "event": "Signup"}
    assert member.get(f"/api/v1/sites/{site_id}", headers=key).json["role"] == "viewer"
    refused = member.post(f"/api/v1/sites/{site_id}/goals", headers=key, json=goal)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"
    assert (
        boss.post(f"/sites/{site_id}/members/{mate.id}", data={"role": "editor"}).status_code == 302
    )
    assert member.post(f"/api/v1/sites/{site_id}/goals", headers=key, json=goal).status_code == 201
    # Editors change exclusions but not the retention, which deletes events.
    with app.app_context():
        site = db.session.get(Site, site_id)
        settings = {"base_url": site.base_url, "name": "", "timezone": "UTC"}
    assert member.post(f"/sites/{site_id}/edit", data=settings).status_code == 302
    assert (
        member.post(f"/sites/{site_id}/edit", data={**settings, "retention_days": "30"}).status_code
        == 403
    )
    patched = member.patch(f"/api/v1/sites/{site_id}", headers=key, json={"retention_days": 30})
    assert patched.status_code == 403
    assert (
        boss.post(f"/sites/{site_id}/members/{mate.id}", data={"role": "remove"}).status_code == 302
    )
    assert member.get(f"/sites/{site_id}").status_code == 404
    assert member.get(f"/api/v1/sites/{site_id}", headers=key).status_code == 404
    assert member.get("/api/v1/sites", headers=key).json["data"] == []


def test_an_invitation_is_for_its_address_only_and_can_expire_or_be_withdrawn(
    app: Flask, owner: User, make_user: Any, make_site: Any
) -> None:
    site_id = make_site(owner)
    make_user("other@example.com")
    boss = log_in(app, owner.email)
    invite(boss, site_id, "invited@example.com")
    link = queued(app, kind="invitation")[0].link()
    other = log_in(app, "other@example.com")
    assert "You are logged in as other@example.com" in other.get(link).get_data(as_text=True)
    assert other.post(link).status_code == 403
    assert other.get(f"/sites/{site_id}").status_code == 404
    with app.app_context():
        invitation = db.session.scalar(select(Invitation))
        assert invitation is not None
        invitation.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
        invitation_id = invitation.id
    assert app.test_client().get(link).status_code == 400
    invite(boss, site_id, "second@example.com")
    second = queued(app, kind="invitation")[-1].link()
    with app.app_context():
        newest = max(db.session.scalars(select(Invitation.id)))
    assert boss.post(f"/sites/{site_id}/invitations/{newest}/revoke").status_code == 302
    assert app.test_client().get(second).status_code == 400
    assert boss.post(f"/sites/{site_id}/invitations/{newest}/revoke").status_code == 404  # done
    assert boss.post(f"/sites/{site_id}/invitations/{invitation_id + 99}/revoke").status_code == 404
    # The owner's own address, or a member's, is refused with the reason.
    refused = invite(boss, site_id, owner.email)
    assert refused.status_code == 400
    assert "already has access" in refused.get_data(as_text=True)


def test_the_owner_transfers_the_site_and_stays_an_admin_and_a_member_can_leave(
    app: Flask, owner: User, make_user: Any, make_site: Any
) -> None:
    site_id = make_site(owner)
    mate = make_user("mate@example.com")
    boss = log_in(app, owner.email)
    invite(boss, site_id, mate.email, "admin")
    member = log_in(app, mate.email)
    member.post(queued(app, kind="invitation")[0].link())
    assert member.post(f"/sites/{site_id}/delete").status_code == 403  # admins do not delete
    assert member.post(f"/sites/{site_id}/transfer", data={"user_id": mate.id}).status_code == 403
    assert boss.post(f"/sites/{site_id}/transfer", data={"user_id": mate.id}).status_code == 302
    with app.app_context():
        assert db.session.get(Site, site_id).owner_id == mate.id
    assert "admin" in boss.get("/sites/").get_data(as_text=True)
    assert boss.post(f"/sites/{site_id}/delete").status_code == 403
    assert member.post(f"/sites/{site_id}/leave").status_code == 302  # an owner cannot leave
    assert member.get(f"/sites/{site_id}").status_code == 200
    assert boss.post(f"/sites/{site_id}/leave").status_code == 302
    assert boss.get(f"/sites/{site_id}").status_code == 404
    assert boss.post(f"/sites/{site_id}/leave").status_code == 404


def test_names_and_addresses_on_the_members_page_are_escaped(
    app: Flask, owner: User, make_user: Any, make_site: Any
) -> None:
    site_id = make_site(owner, "https://x.example", "<img src=x onerror=alert(1)>")
    make_user("mate@example.com", name="<script>alert(1)</script>")
    boss = log_in(app, owner.email)
    invite(boss, site_id, "mate@example.com")
    member = log_in(app, "mate@example.com")
    member.post(queued(app, kind="invitation")[0].link())
    page = boss.get(f"/sites/{site_id}/members").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "<img src=x" not in page
    [mail] = queued(app, kind="invitation")
    assert "<img src=x" not in mail.html and "&lt;img src=x" in mail.html


def test_an_admin_sees_the_keys_that_reach_the_site_and_revokes_those_limited_to_it(
    app: Flask, owner: User, make_user: Any, make_site: Any
) -> None:
    site_id = make_site(owner, "https://shop.example", "Shop")
    other_site = make_site(owner, "https://other.example", "Other")
    mate = make_user("mate@example.com")
    boss = log_in(app, owner.email)
    invite(boss, site_id, mate.email, "editor")
    member = log_in(app, mate.email)
    assert member.post(queued(app, kind="invitation")[0].link()).status_code == 302
    with app.app_context():
        site = db.session.get(Site, site_id)
        elsewhere = db.session.get(Site, other_site)
        user = db.session.get(User, mate.id)
        boss_user = db.session.get(User, owner.id)
        assert site and elsewhere and user and boss_user
        _, limited = apikeys.create_key(user, "<b>ci</b>", apikeys.READ_WRITE, site)
        everywhere, _ = apikeys.create_key(user, "laptop", apikeys.READ)
        apikeys.create_key(boss_user, "elsewhere", apikeys.READ, elsewhere)  # not this site
        revoked, _ = apikeys.create_key(boss_user, "old", apikeys.READ)
        apikeys.revoke_key(revoked)
        everywhere_id = everywhere.id
    page = boss.get(f"/sites/{site_id}/members").get_data(as_text=True)
    listed = page[page.index("API keys that reach this site") :]
    assert "&lt;b&gt;ci&lt;/b&gt;" in listed and "<b>ci" not in listed  # a name is escaped
    assert "laptop" in listed and "all their sites" in listed and "this site only" in listed
    assert "elsewhere" not in listed and ">old<" not in listed
    header = {"Authorization": f"Bearer {limited}"}
    assert member.get(f"/api/v1/sites/{site_id}", headers=header).status_code == 200
    with app.app_context():
        [limited_id] = db.session.scalars(select(ApiKey.id).where(ApiKey.site_id == site_id))
    # An editor may not; an admin (here the owner) may, for a key limited to this site.
    assert member.post(f"/sites/{site_id}/keys/{limited_id}/revoke").status_code == 403
    assert boss.post(f"/sites/{site_id}/keys/{limited_id}/revoke").status_code == 302
    assert member.get(f"/api/v1/sites/{site_id}", headers=header).status_code == 401
    refused = boss.post(f"/sites/{site_id}/keys/{everywhere_id}/revoke")
    assert refused.status_code == 400
    assert "reaches all of their sites" in refused.get_data(as_text=True)
    assert boss.post(f"/sites/{site_id}/keys/999999/revoke").status_code == 404
    log = member.get("/settings/").get_data(as_text=True)
    assert f"by {owner.email}" in log  # the key's owner reads who revoked it
