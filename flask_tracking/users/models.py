"""The User account, its login sessions and its API keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flask_tracking.extensions import db

if TYPE_CHECKING:
    from flask_tracking.tracking.models import Site


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class User(UserMixin, db.Model):  # type: ignore[name-defined]
    """A person who owns sites and reads their reports."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When the owner of the address confirmed it by a link sent there (None: not yet).
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Two-factor login (users/twofactor.py): the TOTP secret once confirmed, the last time step
    # accepted (no code works twice), and since when.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The operator's admin area (billing): set by `flask-tracking admin grant EMAIL`.
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The security-key challenge last handed out (users/securitykeys.py): its SHA-256 and when
    # it expires, cleared when used, so that no answer to it is accepted twice.
    key_challenge: Mapped[str | None] = mapped_column(String(80))

    @property
    def display_name(self) -> str:
        """Return the name, or the email when no name was given."""
        return self.name or self.email

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class AuditEvent(db.Model):  # type: ignore[name-defined]
    """Something that happened to an account: a login, a failed one, a new password, a key…
    shown to its user on the settings page, kept AUDIT_LOG_DAYS (users/audit.py)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(String(300), default="")
    address: Mapped[str] = mapped_column(String(45), default="")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class OidcIdentity(db.Model):  # type: ignore[name-defined]
    """An identity at an OpenID Connect provider (its issuer and subject) that logs into an
    account by single sign-on (users/sso.py)."""

    __tablename__ = "oidc_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()


class SecurityKey(db.Model):  # type: ignore[name-defined]
    """A WebAuthn credential (a hardware key, a phone, a passkey) registered as a second factor
    (users/securitykeys.py): its id and public key, never a secret."""

    __tablename__ = "security_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)  # base64url
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    transports: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RecoveryCode(db.Model):  # type: ignore[name-defined]
    """A single-use code that stands in for the authenticator app: only its SHA-256 is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginSession(db.Model):  # type: ignore[name-defined]
    """A browser logged in as a user: the cookie holds a random token, the table its SHA-256.

    Logging out, changing the password and "log out everywhere" revoke rows, so a copy of the
    cookie stops working at once (see users/logins.py).
    """

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What the user sees in their list of sessions: the browser and system, not the raw agent,
    # and roughly where it logged in from (the city or country of its address then).
    device: Mapped[str] = mapped_column(String(120), default="")
    place: Mapped[str] = mapped_column(String(120), default="", server_default="")

    user: Mapped[User] = relationship()


class ApiKey(db.Model):  # type: ignore[name-defined]
    """A secret that lets a program use the API as its user: only its SHA-256 is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # A key limited to one site dies with it; NULL means every site of the user.
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120), default="")
    scope: Mapped[str] = mapped_column(String(16))  # "read" or "read-write"
    # The first characters of the key, to recognise it in the list (not enough to guess it).
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()
    site: Mapped[Site | None] = relationship()

    @property
    def active(self) -> bool:
        """Tell whether the key still opens the API."""
        return self.revoked_at is None

    def __repr__(self) -> str:
        return f"<ApiKey {self.id} {self.prefix}… {self.scope}>"
