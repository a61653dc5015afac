"""Account rules: registration, authentication, rehashing on login."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from flask_tracking.extensions import db
from flask_tracking.tracking.sites import delete_site, sites_of
from flask_tracking.users.models import User
from flask_tracking.users.passwords import hash_password, needs_rehash, verify_password


@lru_cache(maxsize=4)
def _dummy_hash(rounds: int) -> str:
    """Return a hash to verify against when the email is unknown, so both failures cost the same."""
    return hash_password("not-a-real-password", rounds)


class EmailTaken(Exception):
    """Raised when registering an email that already has an account."""


class WrongPassword(Exception):
    """Raised when an account change asks for the password and gets another."""


def normalise_email(email: str) -> str:
    """Return the email as stored: trimmed and lower-cased."""
    return email.strip().lower()


def find_user(email: str) -> User | None:
    """Return the user with this email, if any."""
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def register(email: str, password: str, name: str = "", *, verified: bool = False) -> User:
    """Create and return a user; raise EmailTaken if the email is in use. `verified`: the
    address needs no confirmation (an operator made the account: `init`, `demo`)."""
    rounds = int(current_app.config["HASH_ROUNDS"])
    user = User(
        email=normalise_email(email),
        name=name.strip(),
        password_hash=hash_password(password, rounds),
        email_verified_at=datetime.now(UTC) if verified else None,
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        # Two requests raced past the form's uniqueness check; the unique index caught it.
        db.session.rollback()
        raise EmailTaken(email) from None
    return user


def authenticate(email: str, password: str) -> User | None:
    """Return the user when email and password match, re-hashing stale hashes."""
    rounds = int(current_app.config["HASH_ROUNDS"])
    user = find_user(email)
    if user is None:
        verify_password(password, _dummy_hash(rounds))
        return None
    if not verify_password(password, user.password_hash):
        return None
    if needs_rehash(user.password_hash, rounds):
        user.password_hash = hash_password(password, rounds)
        db.session.commit()
    return user


def change_password(user: User, current: str, new: str) -> bool:
    """Set a new password if `current` is the user's password; False (and nothing) otherwise."""
    if not verify_password(current, user.password_hash):
        return False
    user.password_hash = hash_password(new, int(current_app.config["HASH_ROUNDS"]))
    db.session.commit()
    return True


def reset_password(user: User, new: str) -> None:
    """Set a new password from a reset link, which also proves the address is the user's."""
    user.password_hash = hash_password(new, int(current_app.config["HASH_ROUNDS"]))
    if user.email_verified_at is None:
        user.email_verified_at = datetime.now(UTC)
    db.session.commit()


def update_account(user: User, name: str, email: str, password: str) -> str | None:
    """Save the account's name; return a new email address asked for, which changes only once
    confirmed from that mailbox (see users/emails.py). A new address needs the current
    `password` (WrongPassword) and must be free (EmailTaken); either way nothing changes."""
    email = normalise_email(email)
    wanted = email if email != user.email else None
    if wanted is not None:
        if not verify_password(password, user.password_hash):
            raise WrongPassword()
        if find_user(wanted) is not None:
            raise EmailTaken(wanted)
    user.name = name.strip()
    db.session.commit()
    return wanted


def change_email(user: User, email: str) -> None:
    """Move the account to a confirmed new address (EmailTaken if it was taken meanwhile)."""
    user.email = normalise_email(email)
    user.email_verified_at = datetime.now(UTC)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise EmailTaken(email) from None


def delete_account(user: User, password: str) -> int:
    """Delete the account and everything it owns — each site with its events (from the event
    store first), goals, funnels, experiments and shared links; the account's API keys and
    login sessions — if `password` is its password (WrongPassword otherwise). Return how many
    sites went."""
    if not verify_password(password, user.password_hash):
        raise WrongPassword()
    sites = list(sites_of(user))
    for site in sites:
        delete_site(site)
    db.session.delete(user)
    db.session.commit()
    return len(sites)
