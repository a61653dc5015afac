"""API keys: make one (shown once), find one from what a client sends, record use, revoke.

A key is 32 random bytes behind a recognisable prefix. Only its SHA-256 is stored: the key is
random enough that a slow, salted hash (as for passwords) would add nothing but latency to
every API request, and a leaked table cannot be turned back into keys.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from flask_tracking.database import write_transaction
from flask_tracking.extensions import db
from flask_tracking.reports.ranges import as_utc
from flask_tracking.tracking import access
from flask_tracking.tracking.models import Site
from flask_tracking.users.models import ApiKey, User

PREFIX = "ftk_"
READ = "read"
READ_WRITE = "read-write"
SCOPES = (READ, READ_WRITE)
SCOPE_LABELS = {READ: "Read", READ_WRITE: "Read and write"}
SHOWN_PREFIX = len(PREFIX) + 8
# What a well-formed key looks like: the prefix, then 43 characters of URL-safe base64.
KEY_PATTERN = re.compile(re.escape(PREFIX) + r"[A-Za-z0-9_-]{43}")
# Recording every use would make every API read a database write; a minute is precise enough.
LAST_USE_PRECISION = timedelta(minutes=1)


def digest(key: str) -> str:
    """Return the stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(user: User, name: str, scope: str, site: Site | None = None) -> tuple[ApiKey, str]:
    """Make a key for `user` and return it with its secret, which is never available again."""
    if scope not in SCOPES:
        raise ValueError(f"Unknown scope {scope!r}.")
    if site is not None and access.role_of(user.id, site) is None:
        raise ValueError("A key can only be limited to a site its user can see.")
    secret = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        user=user,
        site_id=site.id if site else None,
        name=name.strip(),
        scope=scope,
        prefix=secret[:SHOWN_PREFIX],
        key_hash=digest(secret),
    )
    db.session.add(key)
    db.session.commit()
    return key, secret


def keys_of(user: User) -> list[ApiKey]:
    """Return the user's keys, newest first, revoked ones included (they show as revoked)."""
    query = select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.id.desc())
    return list(db.session.scalars(query))


def active_count(user: User) -> int:
    """Return how many of the user's keys are not revoked."""
    query = (
        select(func.count())
        .select_from(ApiKey)
        .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
    )
    return int(db.session.scalar(query) or 0)


def key_of(user: User, key_id: int) -> ApiKey | None:
    """Return the user's key with this id (another user's is as missing as none)."""
    key = db.session.get(ApiKey, key_id)
    return key if key is not None and key.user_id == user.id else None


def find_key(secret: str) -> ApiKey | None:
    """Return the key whose secret this is (revoked or not), or None."""
    if not KEY_PATTERN.fullmatch(secret):
        return None  # not one of ours: no need to look
    found: ApiKey | None = db.session.scalar(
        select(ApiKey).where(ApiKey.key_hash == digest(secret))
    )
    return found


def looks_like_key(text: str) -> bool:
    """Tell whether some text carries a key (to refuse keys sent where they leak, like URLs)."""
    return PREFIX in text and KEY_PATTERN.search(text) is not None


def record_use(key: ApiKey, now: datetime | None = None) -> None:
    """Remember when the key was last used, to the minute (so at most one write a minute).

    In a short write transaction of its own, so that a read request can record it.
    """
    now = now or datetime.now(UTC)
    if key.last_used_at is None or now - as_utc(key.last_used_at) >= LAST_USE_PRECISION:
        key_id = key.id
        with write_transaction():
            db.session.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id)
                .values(last_used_at=now)
                .execution_options(synchronize_session=False)
            )


def revoke_key(key: ApiKey) -> None:
    """Stop a key from working, at once; it stays listed as revoked."""
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        db.session.commit()
