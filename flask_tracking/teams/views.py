"""A site's members page (admins), invitations, leaving a site, transferring it (the owner)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from flask_tracking.extensions import db
from flask_tracking.teams import rules
from flask_tracking.teams.forms import InviteForm, MemberForm, TransferForm
from flask_tracking.tracking import access
from flask_tracking.tracking.models import Site
from flask_tracking.users.forms import ConfirmForm

members = Blueprint("members", __name__)


def _site(site_id: int) -> tuple[Site, str]:
    try:
        return access.site_for(current_user.id, site_id)
    except access.Refusal as refusal:
        abort(refusal.status)


def _page(site: Site, role: str, invite_form: InviteForm | None = None, status: int = 200) -> Any:
    member_rows = rules.members_of(site)
    transfer_form = TransferForm(formdata=None)
    transfer_form.user_id.choices = {str(row.user_id): row.user.email for row in member_rows}
    return (
        render_template(
            "tracking/members.html",
            site=site,
            role=role,
            members=member_rows,
            invitations=rules.pending_invitations(site),
            keys=rules.keys_reaching(site),
            invite_form=invite_form or InviteForm(formdata=None),
            member_form=MemberForm(formdata=None),
            transfer_form=transfer_form,
            confirm=ConfirmForm(),
            role_labels=access.ROLE_LABELS,
        ),
        status,
    )


@members.route("/sites/<id:site_id>/members", methods=["GET", "POST"])
@login_required
def members_page(site_id: int) -> Any:
    """List the owner, members and pending invitations; invite someone (POST)."""
    site, role = _site(site_id)
    form = InviteForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return _page(site, role, form, 400)
        try:
            rules.invite(site, current_user, form.email.data or "", form.role.data or "")
        except rules.TeamError as error:
            form.email.errors = [str(error)]
            return _page(site, role, form, 400)
        flash(f"Invited {form.email.data}: the link in their email works for a week.", "success")
        return redirect(url_for(".members_page", site_id=site.id))
    return _page(site, role)


@members.route("/sites/<id:site_id>/members/<id:user_id>", methods=["POST"])
@login_required
def change_member(site_id: int, user_id: int) -> Any:
    """Give a member another role, or remove them (role "remove")."""
    site, role = _site(site_id)
    form = MemberForm()
    if not form.validate_on_submit():
        return _page(site, role, status=400)
    try:
        if form.role.data == "remove":
            rules.remove(site, user_id, current_user)
            flash("Removed: they no longer see this site.", "info")
        else:
            rules.change_role(site, user_id, form.role.data or "", current_user)
            flash("Role changed.", "success")
    except rules.TeamError as error:
        flash(str(error), "error")
        return _page(site, role, status=400)
    return redirect(url_for(".members_page", site_id=site.id))


@members.route("/sites/<id:site_id>/invitations/<id:invitation_id>/revoke", methods=["POST"])
@login_required
def revoke_invitation(site_id: int, invitation_id: int) -> Response:
    """Withdraw an invitation: its link stops working."""
    site, _role = _site(site_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if not rules.revoke_invitation(site, invitation_id):
        abort(404)
    flash("Invitation withdrawn.", "info")
    return redirect(url_for(".members_page", site_id=site.id))


@members.route("/sites/<id:site_id>/keys/<id:key_id>/revoke", methods=["POST"])
@login_required
def revoke_key(site_id: int, key_id: int) -> Any:
    """Revoke a member's API key limited to this site (admins)."""
    site, role = _site(site_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        key = rules.revoke_site_key(site, key_id, current_user._get_current_object())
    except LookupError:
        abort(404)
    except rules.TeamError as error:
        flash(str(error), "error")
        return _page(site, role, status=400)
    flash(f"API key “{key.name}” of {key.user.email} revoked.", "info")
    return redirect(url_for(".members_page", site_id=site.id))


@members.route("/sites/<id:site_id>/transfer", methods=["POST"])
@login_required
def transfer(site_id: int) -> Any:
    """Hand the site to a member (the owner only); the owner stays on as an admin."""
    site, role = _site(site_id)
    form = TransferForm()
    form.user_id.choices = {str(row.user_id): row.user.email for row in rules.members_of(site)}
    if not form.validate_on_submit():
        return _page(site, role, status=400)
    rules.transfer(site, int(form.user_id.data))
    flash("The site is transferred; you remain an admin of it.", "success")
    return redirect(url_for(".members_page", site_id=site.id))


@members.route("/sites/<id:site_id>/leave", methods=["POST"])
@login_required
def leave(site_id: int) -> Response:
    """Give up one's own access to a shared site."""
    site = db.session.get(Site, site_id)
    if site is None or access.role_of(current_user.id, site) is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        rules.leave(site, current_user)
    except rules.TeamError as error:
        flash(str(error), "error")
        return redirect(url_for("dashboard.show", site_id=site.id))
    flash(f"You left {site.display_name}.", "info")
    return redirect(url_for("tracking.view_sites"))


@members.route("/invitations/<token>", methods=["GET", "POST"])
def accept(token: str) -> Any:
    """Accept an invitation: logged out, log in or register with the invited address first."""
    invitation = rules.find_invitation(token)
    if invitation is None:
        return render_template("users/link_invalid.html", what="invitation"), 400
    here = url_for(".accept", token=token)
    form = ConfirmForm()
    if current_user.is_authenticated and current_user.email == invitation.email:
        if request.method == "POST" and form.validate_on_submit():
            rules.accept(invitation, current_user._get_current_object())
            flash(f"Welcome to {invitation.site.display_name}.", "success")
            return redirect(url_for("dashboard.show", site_id=invitation.site_id))
    elif request.method == "POST":
        abort(403)
    return render_template(
        "tracking/invitation.html",
        invitation=invitation,
        form=form,
        here=here,
        role_label=access.ROLE_LABELS[invitation.role],
    )
