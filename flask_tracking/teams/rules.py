"""Inviting, accepting, changing a role, removing, leaving, transferring ownership."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select, update

from flask_tracking import mail
from flask_tracking.billing import gate
from flask_tracking.extensions import db
from flask_tracking.reports.ranges import as_utc
from flask_tracking.tracking import access
from flask_tracking.tracking.models import Invitation, Membership, Site
from flask_tracking.users import audit
from flask_tracking.users.accounts import normalise_email
from flask_tracking.users.emails import link
from flask_tracking.users.models import ApiKey, User


class TeamError(Exception):
    """A change the rules refuse, with the reason to show."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def members_of(site: Site) -> list[Membership]:
    """The site's members (not its owner), by role then email."""
    rows = db.session.scalars(
        select(Membership).join(User).where(Membership.site_id == site.id).order_by(User.email)
    )
    return sorted(rows, key=lambda row: -access.RANK[row.role])


def pending_invitations(site: Site, now: datetime | None = None) -> list[Invitation]:
    """Invitations not accepted, revoked or expired yet, newest first."""
    now = now or datetime.now(UTC)
    return list(
        db.session.scalars(
            select(Invitation)
            .where(
                Invitation.site_id == site.id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
            )
            .order_by(Invitation.id.desc())
        )
    )


def invite(site: Site, inviter: User, email: str, role: str) -> Invitation:
    """Invite an address to the site with a role, by email (replacing an earlier invitation to
    the same address); refuse the owner's or a member's address."""
    if role not in access.MEMBER_ROLES:
        raise TeamError(f"{role!r} is not a role a member can have.")
    email = normalise_email(email)
    existing = db.session.scalar(select(User).where(User.email == email))
    if existing is not None and access.role_of(existing.id, site) is not None:
        raise TeamError(f"{email} already has access to this site.")
    refusal = gate.seat_refusal(site.owner_id, email)
    if refusal:
        raise TeamError(refusal)
    now = datetime.now(UTC)
    db.session.execute(
        update(Invitation)
        .where(
            Invitation.site_id == site.id,
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    token = secrets.token_urlsafe(32)
    days = int(current_app.config["INVITATION_DAYS"])
    invitation = Invitation(
        site_id=site.id,
        email=email,
        role=role,
        token_hash=_digest(token),
        invited_by_id=inviter.id,
        expires_at=now + timedelta(days=days),
    )
    db.session.add(invitation)
    audit.record(inviter.id, "member_invited", f"{email} as {role} to {site.display_name}")
    mail.queue(
        email,
        "invitation",
        f"{inviter.display_name} invites you to {site.display_name} on Flask-Tracking",
        inviter=inviter,
        site=site,
        role=role,
        role_label=access.ROLE_LABELS[role],
        url=link("members.accept", token=token),
        days=days,
    )
    db.session.commit()
    return invitation


def find_invitation(token: str, now: datetime | None = None) -> Invitation | None:
    """The invitation of a link while it can be accepted (unused, not revoked, not expired)."""
    now = now or datetime.now(UTC)
    invitation: Invitation | None = db.session.scalar(
        select(Invitation).where(Invitation.token_hash == _digest(token))
    )
    if (
        invitation is None
        or invitation.accepted_at is not None
        or invitation.revoked_at is not None
        or as_utc(invitation.expires_at) <= now
    ):
        return None
    return invitation


def accept(invitation: Invitation, user: User) -> None:
    """Join the site with the invitation's role, as the invited address only."""
    if user.email != invitation.email:
        raise TeamError(
            f"This invitation is for {invitation.email}; you are logged in as {user.email}."
        )
    now = datetime.now(UTC)
    site = invitation.site
    role = access.role_of(user.id, site)
    if role is None:
        db.session.add(Membership(site_id=site.id, user_id=user.id, role=invitation.role))
    elif role != access.OWNER:
        db.session.execute(
            update(Membership)
            .where(Membership.site_id == site.id, Membership.user_id == user.id)
            .values(role=invitation.role)
        )
    invitation.accepted_at = now
    audit.record(user.id, "member_joined", f"{site.display_name} as {invitation.role}")
    if user.email_verified_at is None:  # the link reached this address
        user.email_verified_at = now
    db.session.commit()


def revoke_invitation(site: Site, invitation_id: int) -> bool:
    """Withdraw a pending invitation; False when there is none of that id on the site."""
    result = db.session.execute(
        update(Invitation)
        .where(
            Invitation.id == invitation_id,
            Invitation.site_id == site.id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=datetime.now(UTC))
    )
    db.session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def keys_reaching(site: Site) -> list[ApiKey]:
    """The live API keys that can reach the site: those of its owner and members, limited to
    it or to none (a key acts with its user's role on each site), newest first."""
    people = select(Membership.user_id).where(Membership.site_id == site.id)
    return list(
        db.session.scalars(
            select(ApiKey)
            .join(User)
            .where(
                ApiKey.revoked_at.is_(None),
                (ApiKey.user_id == site.owner_id) | ApiKey.user_id.in_(people),
                (ApiKey.site_id == site.id) | ApiKey.site_id.is_(None),
            )
            .order_by(ApiKey.id.desc())
        )
    )


def revoke_site_key(site: Site, key_id: int, actor: User) -> ApiKey:
    """Revoke a key limited to this site, whoever made it (an admin's right). A key for all of
    its user's sites is not this site's to revoke: its user's role here is (change or remove
    the member)."""
    key = next((k for k in keys_reaching(site) if k.id == key_id), None)
    if key is None:
        raise LookupError(key_id)
    if key.site_id != site.id:
        raise TeamError(
            f"{key.user.email}'s key “{key.name}” reaches all of their sites: change their role "
            "here or remove them instead."
        )
    key.revoked_at = datetime.now(UTC)
    what = f"“{key.name}” ({key.prefix}…) of {key.user.email} on {site.display_name}"
    audit.record(actor.id, "api_key_revoked", what)
    if key.user_id != actor.id:
        audit.record(key.user_id, "api_key_revoked", f"{what}, by {actor.email}")
    db.session.commit()
    return key


def _membership(site: Site, user_id: int) -> Membership:
    row: Membership | None = db.session.scalar(
        select(Membership).where(Membership.site_id == site.id, Membership.user_id == user_id)
    )
    if row is None:
        raise TeamError("That person is not a member of this site.")
    return row


def change_role(site: Site, user_id: int, role: str, actor: User) -> Membership:
    """Give a member another role; it applies from their next request (sessions and keys)."""
    if role not in access.MEMBER_ROLES:
        raise TeamError(f"{role!r} is not a role a member can have.")
    row = _membership(site, user_id)
    row.role = role
    audit.record(actor.id, "member_changed", f"{row.user.email} on {site.display_name}: {role}")
    db.session.commit()
    return row


def remove(site: Site, user_id: int, actor: User) -> None:
    """Take a member's access away: their open sessions and API keys lose the site at once,
    since every request looks the role up."""
    row = _membership(site, user_id)
    audit.record(actor.id, "member_removed", f"{row.user.email} from {site.display_name}")
    db.session.delete(row)
    db.session.commit()


def transfer(site: Site, new_owner_id: int) -> None:
    """Make a member the owner; the previous owner stays on as an admin."""
    row = _membership(site, new_owner_id)
    previous = site.owner_id
    db.session.delete(row)
    db.session.flush()
    site.owner_id = new_owner_id
    db.session.add(Membership(site_id=site.id, user_id=previous, role=access.ADMIN))
    audit.record(previous, "site_transferred", f"{site.display_name} to {row.user.email}")
    db.session.commit()


def leave(site: Site, user: User) -> None:
    """A member gives up their own access (an owner transfers the site first)."""
    if site.owner_id == user.id:
        raise TeamError("An owner cannot leave their site: transfer it to a member first.")
    db.session.execute(
        delete(Membership).where(Membership.site_id == site.id, Membership.user_id == user.id)
    )
    db.session.commit()
