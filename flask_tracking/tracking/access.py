"""Who may do what on a site: the one place every route and API operation takes its
permission from.

A site has one owner (sites.owner_id) and members with a role (site_members). Roles are
ranked; an action needs at least a role:

    read     viewer   the dashboard, details, exports, raw events, setup page, results
    edit     editor   goals, funnels, experiments, shared links, email reports, alerts, the site's
                      name and exclusions
    manage   admin    members, invitations and their API keys for the site, the retention,
                      sending events by API
    own      owner    deleting the site, transferring it

Each endpoint with a site in its path is listed in ENDPOINTS with its action; a route missing
from it fails loudly (and tests/tracking/test_access.py walks every route, every role).
Someone with no role on a site gets the answer a missing site gets (404); a member whose role
is too low gets 403. API keys act with their user's role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

from flask import abort, request
from flask_login import current_user
from sqlalchemy import select

from flask_tracking.extensions import db
from flask_tracking.tracking.models import Membership, Site

Role = Literal["owner", "admin", "editor", "viewer"]
VIEWER: Role = "viewer"
EDITOR: Role = "editor"
ADMIN: Role = "admin"
OWNER: Role = "owner"
RANK: dict[str, int] = {VIEWER: 1, EDITOR: 2, ADMIN: 3, OWNER: 4}
MEMBER_ROLES: tuple[str, ...] = (
    VIEWER,
    EDITOR,
    ADMIN,
)  # what an invitation or a member can be given
ROLE_LABELS: dict[str, str] = {
    VIEWER: "Viewer — reads the dashboard and exports",
    EDITOR: "Editor — also edits goals, funnels, experiments, shared links and exclusions",
    ADMIN: "Admin — also manages members, their API keys for the site, and the retention",
}

READ, EDIT, MANAGE, OWN = "read", "edit", "manage", "own"
NEEDS: dict[str, str] = {READ: VIEWER, EDIT: EDITOR, MANAGE: ADMIN, OWN: OWNER}

ENDPOINTS: dict[str, str] = {
    # the web app
    "dashboard.show": READ,
    "dashboard.details": READ,
    "dashboard.realtime": READ,
    "dashboard.suggest": READ,
    "dashboard.export_zip": READ,
    "dashboard.experiment": READ,
    "dashboard.shares": EDIT,
    "dashboard.revoke_share": EDIT,
    "tracking.setup_site": READ,
    "tracking.setup_status": READ,
    "tracking.view_site_visits": READ,
    "tracking.edit_site": EDIT,
    "tracking.add_goal": EDIT,
    "tracking.delete_goal": EDIT,
    "tracking.add_funnel": EDIT,
    "tracking.delete_funnel": EDIT,
    "tracking.experiments": EDIT,
    "tracking.experiment_status": EDIT,
    "tracking.delete_experiment": EDIT,
    "tracking.delete_site": OWN,
    "tracking.erase_visitors": MANAGE,
    "imports.imports_page": MANAGE,
    "imports.delete_import": MANAGE,
    "imports.plausible_export": READ,
    "notify.reports_page": EDIT,
    "notify.remove_schedule": EDIT,
    "notify.alerts_page": EDIT,
    "notify.add_channel": EDIT,
    "notify.test_channel": EDIT,
    "notify.remove_channel": EDIT,
    "notify.remove_rule": EDIT,
    "members.members_page": MANAGE,
    "members.change_member": MANAGE,
    "members.revoke_invitation": MANAGE,
    "members.revoke_key": MANAGE,
    "members.transfer": OWN,
    # the API
    "api.get_site": READ,
    "api.update_site": EDIT,
    "api.delete_site": OWN,
    "api.list_events": READ,
    "api.send_event": MANAGE,
    "api.send_events": MANAGE,
    "api.download": READ,
    "api.aggregate": READ,
    "api.breakdown": READ,
    "api.properties": READ,
    "api.realtime": READ,
    "api.timeseries": READ,
    "api.list_reports": EDIT,
    "api.create_report": EDIT,
    "api.get_report": EDIT,
    "api.delete_report": EDIT,
    "api.list_alerts": EDIT,
    "api.create_alert": EDIT,
    "api.get_alert": EDIT,
    "api.delete_alert": EDIT,
    "api.create_alert_channel": EDIT,
    "api.delete_alert_channel": EDIT,
    "api.test_alert_channel": EDIT,
    "api.list_goals": READ,
    "api.get_goal": READ,
    "api.create_goal": EDIT,
    "api.replace_goal": EDIT,
    "api.delete_goal": EDIT,
    "api.list_funnels": READ,
    "api.get_funnel": READ,
    "api.create_funnel": EDIT,
    "api.replace_funnel": EDIT,
    "api.delete_funnel": EDIT,
    "api.list_experiments": READ,
    "api.get_experiment": READ,
    "api.experiment_results": READ,
    "api.create_experiment": EDIT,
    "api.replace_experiment": EDIT,
    "api.delete_experiment": EDIT,
}
# With a site id in the path but open to anyone: the collector (the snippet's own requests)
# and leaving a site (a member's own membership: checked in the view).
PUBLIC = frozenset({"tracking.add_visit", "members.leave"})


def role_of(user_id: int, site: Site) -> Role | None:
    """The user's role on the site: owner, a member's role, or None."""
    if site.owner_id == user_id:
        return OWNER
    role = db.session.scalar(
        select(Membership.role).where(Membership.site_id == site.id, Membership.user_id == user_id)
    )
    return cast(Role | None, role)


def allows(role: str | None, action: str) -> bool:
    """Whether a role may do an action."""
    return role is not None and RANK[role] >= RANK[NEEDS[action]]


@dataclass(frozen=True)
class Refusal(Exception):
    """The site is not there for this user (404), or their role is too low (403)."""

    status: int
    action: str
    role: str | None


def action_of(endpoint: str | None) -> str:
    """The action of an endpoint, from ENDPOINTS (a route missing there is a bug)."""
    try:
        return ENDPOINTS[str(endpoint)]
    except KeyError:
        raise LookupError(f"{endpoint} has no action in tracking/access.py ENDPOINTS") from None


def site_for(user_id: int, site_id: int, action: str | None = None) -> tuple[Site, Role]:
    """The site and the user's role on it, if the role allows the action (by default the
    current request's endpoint's); raise Refusal otherwise."""
    action = action or action_of(request.endpoint)
    site = db.session.get(Site, site_id)
    role = None if site is None else role_of(user_id, site)
    if site is None or role is None:
        raise Refusal(404, action, None)
    if not allows(role, action):
        raise Refusal(403, action, role)
    return site, role


def site_or_abort(site_id: int) -> Site:
    """The site, if the current user's role on it allows this request's action: a 404 when
    they have none (as for a missing site), a 403 when it is too low (the views' guard)."""
    try:
        return site_for(current_user.id, site_id)[0]
    except Refusal as refusal:
        abort(refusal.status)


def visible_sites(user_id: int) -> list[tuple[Site, Role]]:
    """Every site the user owns or is a member of, with their role, oldest first."""
    owned = db.session.scalars(select(Site).where(Site.owner_id == user_id))
    shared = db.session.execute(
        select(Site, Membership.role)
        .join(Membership, Membership.site_id == Site.id)
        .where(Membership.user_id == user_id)
    ).all()
    found = [(site, OWNER) for site in owned]
    found += [(site, cast(Role, role)) for site, role in shared]
    return sorted(found, key=lambda pair: pair[0].id)


def can(site: Site, action: str) -> bool:
    """For templates: whether the logged-in user may do `action` on the site (links to pages
    they could not use are not shown)."""
    from flask_login import current_user

    return bool(current_user.is_authenticated) and allows(role_of(current_user.id, site), action)
