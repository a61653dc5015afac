"""The account's security log: what happened to it, when and from where, for its user to read
(the settings page). Kept AUDIT_LOG_DAYS, purged by the writer's `audit` job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import current_app, has_request_context, request
from sqlalchemy import delete, select

from flask_tracking.extensions import db
from flask_tracking.users.models import AuditEvent

# What each kind reads as in the log.
KINDS = {
    "login": "Logged in",
    "login_failed": "Failed login (wrong password)",
    "sso_linked": "Single sign-on linked to this account",
    "two_factor_failed": "Failed login (wrong code)",
    "password_changed": "Password changed",
    "password_reset": "Password reset by email",
    "email_change_requested": "New email address asked for",
    "email_changed": "Email address changed",
    "two_factor_on": "Two-factor login turned on",
    "two_factor_off": "Two-factor login turned off",
    "recovery_code_used": "Recovery code used",
    "security_key_added": "Security key added",
    "security_key_removed": "Security key removed",
    "session_ended": "A session ended",
    "sessions_ended": "Every other session ended",
    "api_key_created": "API key created",
    "api_key_revoked": "API key revoked",
    "member_invited": "Invited someone to a site",
    "member_changed": "Changed a member's role",
    "member_removed": "Removed a member",
    "member_joined": "Joined a site",
    "site_transferred": "Transferred a site",
    "visitors_erased": "Asked for visitors' data to be erased",
    "data_imported": "Imported another tool's data into a site",
    "import_deleted": "Deleted an import from a site",
    "billing_trial_started": "Started a trial",
    "billing_trial_ended": "A trial ended",
    "billing_checkout": "Went to checkout",
    "billing_plan_changed": "Plan changed by an administrator",
    "billing_trial_extended": "Trial extended by an administrator",
    "billing_locked": "Account locked by an administrator",
    "billing_unlocked": "Account unlocked by an administrator",
    "billing_data_purged": "Events deleted: the account stayed locked past its retention",
    "admin_granted": "Made an administrator",
    "admin_revoked": "No longer an administrator",
}


def record(user_id: int, kind: str, detail: str = "") -> None:
    """Add an event to the user's log, in the current transaction (the caller commits)."""
    if kind not in KINDS:
        raise ValueError(f"unknown audit event {kind!r}")
    address = (request.remote_addr or "") if has_request_context() else ""
    db.session.add(
        AuditEvent(user_id=user_id, kind=kind, detail=detail[:300], address=address[:45])
    )


def events_of(user_id: int, limit: int = 50) -> list[AuditEvent]:
    """The user's latest events, newest first."""
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.user_id == user_id)
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )


def purge(now: datetime | None = None) -> int:
    """Delete events older than AUDIT_LOG_DAYS; return how many."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=float(current_app.config["AUDIT_LOG_DAYS"]))
    result = db.session.execute(delete(AuditEvent).where(AuditEvent.created_at < cutoff))
    db.session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]
