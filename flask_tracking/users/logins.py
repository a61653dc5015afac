"""Login sessions with a server-side identity: start, check on each request, end, end all.

The signed session cookie alone cannot be taken back: a copy made before logging out would
stay valid. So logging in makes a random token, kept in the cookie, whose SHA-256 is a row
here. Each request finds its user through that row (one indexed query, the one that loaded
the user before), and ending a session revokes the row: every copy of the cookie is dead.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select, update

from flask_tracking.database import write_transaction
from flask_tracking.extensions import db
from flask_tracking.geo import get_geodata
from flask_tracking.ingest.useragent import parse_user_agent
from flask_tracking.users.models import LoginSession, User

# Recording every request would make every page view a write; five minutes is precise enough.
LAST_SEEN_PRECISION = timedelta(minutes=5)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _limits() -> tuple[timedelta, timedelta]:
    """Return (the longest a session lives, the longest it may sit unused)."""
    config = current_app.config
    return (
        timedelta(days=float(config["LOGIN_SESSION_DAYS"])),
        timedelta(days=float(config["LOGIN_SESSION_IDLE_DAYS"])),
    )


def describe(user_agent: str) -> str:
    """Return "Firefox on Linux"-like words for a User-Agent, for the list of sessions."""
    info = parse_user_agent(user_agent)
    words = " on ".join(part for part in (info.browser, info.os) if part)
    return (words or "Unknown browser")[:120]


def place_of(address: str | None) -> str:
    """Roughly where an address is (city and country), for the list of sessions; "" unknown."""
    found = get_geodata(address) if address else None  # never raises
    if found is None:
        return ""
    country = found.country_name or found.country_code
    return ", ".join(part for part in (found.city, country) if part)[:120]


def start(user: User, user_agent: str, address: str | None = None) -> str:
    """Open a session for `user` and return its token (for the cookie; never stored)."""
    token = secrets.token_urlsafe(32)
    db.session.add(
        LoginSession(
            user_id=user.id,
            token_hash=_digest(token),
            device=describe(user_agent),
            place=place_of(address),
        )
    )
    db.session.commit()
    return token


def user_for(user_id: int, token: str, now: datetime | None = None) -> User | None:
    """Return the user of a live session (the cookie's user id and token), else None."""
    now = now or datetime.now(UTC)
    lifetime, idle = _limits()
    found = db.session.execute(
        select(User, LoginSession.id, LoginSession.last_seen_at)
        .join(LoginSession, LoginSession.user_id == User.id)
        .where(
            LoginSession.token_hash == _digest(token),
            User.id == user_id,
            LoginSession.revoked_at.is_(None),
            LoginSession.created_at > now - lifetime,
            LoginSession.last_seen_at > now - idle,
        )
    ).first()
    if found is None:
        return None
    user, session_id, last_seen = found
    if now - _utc(last_seen) >= LAST_SEEN_PRECISION:
        with write_transaction():
            db.session.execute(
                update(LoginSession)
                .where(LoginSession.id == session_id)
                .values(last_seen_at=now)
                .execution_options(synchronize_session=False)
            )
    return user


def current_id(token: str | None) -> int | None:
    """Return the id of the session row a token belongs to, if any."""
    if not token:
        return None
    found: int | None = db.session.scalar(
        select(LoginSession.id).where(LoginSession.token_hash == _digest(token))
    )
    return found


def end(token: str | None) -> None:
    """Revoke the session of this token (logging out); nothing if there is none."""
    if token:
        db.session.execute(
            update(LoginSession)
            .where(LoginSession.token_hash == _digest(token), LoginSession.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        db.session.commit()


def end_one(user: User, session_id: int) -> bool:
    """Revoke one of the user's sessions by id; False when it is not theirs or already ended."""
    result = db.session.execute(
        update(LoginSession)
        .where(
            LoginSession.id == session_id,
            LoginSession.user_id == user.id,
            LoginSession.revoked_at.is_(None),
        )
        .values(revoked_at=datetime.now(UTC))
    )
    db.session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def end_all(user: User) -> int:
    """Revoke every session of the user (log out everywhere); return how many were live."""
    result = db.session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    db.session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def live_sessions(user: User, now: datetime | None = None) -> list[LoginSession]:
    """Return the user's sessions that still work, most recently used first."""
    now = now or datetime.now(UTC)
    lifetime, idle = _limits()
    query = (
        select(LoginSession)
        .where(
            LoginSession.user_id == user.id,
            LoginSession.revoked_at.is_(None),
            LoginSession.created_at > now - lifetime,
            LoginSession.last_seen_at > now - idle,
        )
        .order_by(LoginSession.last_seen_at.desc(), LoginSession.id.desc())
    )
    return list(db.session.scalars(query))


def forget_old(user: User, now: datetime | None = None) -> None:
    """Delete the user's sessions that ended (or expired) more than a lifetime ago."""
    now = now or datetime.now(UTC)
    lifetime, _idle = _limits()
    cutoff = now - lifetime
    db.session.execute(
        delete(LoginSession).where(
            LoginSession.user_id == user.id,
            (LoginSession.revoked_at < cutoff) | (LoginSession.last_seen_at < cutoff),
        )
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
