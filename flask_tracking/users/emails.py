"""What reaches a user's mailbox about their account: links to reset the password, to confirm
an address (at registration, or a new one), and the notice that the address changed.

A link carries a token signed with SECRET_KEY (itsdangerous), for one purpose each (its salt),
valid for a while (its max age), and made single-use by what it binds: a reset link names a
fingerprint of the current password hash, so it dies once the password changes; an address
link names the address it confirms and, for a change, the address it replaces.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from flask import current_app, request, url_for
from itsdangerous import BadData, URLSafeTimedSerializer

from flask_tracking import mail
from flask_tracking.extensions import db
from flask_tracking.users.models import User

RESET = "password-reset"
VERIFY = "email-verify"
CHANGE = "email-change"


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        current_app.config["SECRET_KEY"], salt=f"flask-tracking {purpose}"
    )


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def link(endpoint: str, **values: Any) -> str:
    """An absolute link to this app, on PUBLIC_URL when set (see config.py: a forged Host
    header must not choose where a reset link points), else on the request's address."""
    public = current_app.config.get("PUBLIC_URL")
    if public:
        return str(public).rstrip("/") + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


@contextmanager
def off_request() -> Iterator[None]:
    """A request context for building links off a request (the writer's jobs): on PUBLIC_URL
    (doctor warns when it is unset)."""
    base = str(current_app.config.get("PUBLIC_URL") or "http://localhost/")
    with current_app.test_request_context("/", base_url=base):
        yield


def _make(purpose: str, payload: dict[str, Any]) -> str:
    return str(_serializer(purpose).dumps(payload))


def _read(purpose: str, token: str, max_age_key: str) -> dict[str, Any] | None:
    try:
        payload = _serializer(purpose).loads(token, max_age=int(current_app.config[max_age_key]))
    except BadData:  # tampered, expired, or not a token at all
        return None
    return payload if isinstance(payload, dict) else None


def send_password_reset(user: User) -> None:
    """Queue a reset link for the user (the caller commits)."""
    token = _make(RESET, {"u": user.id, "p": _fingerprint(user)})
    mail.queue(
        user.email,
        "password_reset",
        "Reset your Flask-Tracking password",
        user=user,
        url=link("users.reset_password", token=token),
        minutes=int(current_app.config["PASSWORD_RESET_MAX_AGE"]) // 60,
        ip=request.remote_addr or "unknown",
    )


def user_of_reset(token: str) -> User | None:
    """The account a reset link is for, while it is valid and unused."""
    payload = _read(RESET, token, "PASSWORD_RESET_MAX_AGE")
    if payload is None or not isinstance(payload.get("u"), int):
        return None
    user = db.session.get(User, payload["u"])
    if user is None or payload.get("p") != _fingerprint(user):
        return None  # the password changed since: the link was used, or is stale
    return user


def send_verification(user: User) -> None:
    """Queue a link confirming the user's address (the caller commits)."""
    token = _make(VERIFY, {"u": user.id, "e": user.email})
    mail.queue(
        user.email,
        "verify_email",
        "Confirm your email address for Flask-Tracking",
        user=user,
        url=link("users.verify_email", token=token),
        days=int(current_app.config["EMAIL_TOKEN_MAX_AGE"]) // 86400,
    )


def peek_verify(token: str) -> User | None:
    """The account of a valid confirmation link (its address unchanged since), or None."""
    payload = _read(VERIFY, token, "EMAIL_TOKEN_MAX_AGE")
    if payload is None or not isinstance(payload.get("u"), int):
        return None
    user = db.session.get(User, payload["u"])
    if user is None or payload.get("e") != user.email:
        return None  # the address changed since
    return user


def verify(token: str) -> User | None:
    """Mark the address of a valid confirmation link verified; return its user (or None)."""
    user = peek_verify(token)
    if user is None:
        return None
    if user.email_verified_at is None:
        user.email_verified_at = datetime.now(UTC)
        db.session.commit()
    return user


def send_change_confirmation(user: User, new_email: str) -> None:
    """Queue, to the new address, the link that moves the account to it (caller commits)."""
    token = _make(CHANGE, {"u": user.id, "e": new_email, "o": user.email})
    mail.queue(
        new_email,
        "email_change",
        "Confirm your new email address for Flask-Tracking",
        user=user,
        new_email=new_email,
        url=link("users.confirm_email_change", token=token),
        days=int(current_app.config["EMAIL_TOKEN_MAX_AGE"]) // 86400,
    )


def read_change(token: str) -> tuple[User, str] | None:
    """The account and new address of a valid change link (the old address still current)."""
    payload = _read(CHANGE, token, "EMAIL_TOKEN_MAX_AGE")
    if payload is None or not isinstance(payload.get("u"), int):
        return None
    user = db.session.get(User, payload["u"])
    new_email = payload.get("e")
    if user is None or payload.get("o") != user.email or not isinstance(new_email, str):
        return None
    return user, new_email


def send_change_notice(user: User, old_email: str) -> None:
    """Tell the old address that the account moved to another (the caller commits)."""
    mail.queue(
        old_email,
        "email_changed",
        "Your Flask-Tracking email address was changed",
        user=user,
        old_email=old_email,
        reset_url=link("users.forgot_password"),
    )
