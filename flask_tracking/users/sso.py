"""Single sign-on with OpenID Connect (Authlib): who a provider's answer logs in.

The flow itself (discovery, PKCE, state and nonce, the ID token's signature, issuer, audience
and expiry) is Authlib's, in the views (users/sso_views.py). This module holds the rules that
are ours: which identities may log in, and which account each one is — an identity once
linked logs into its account; a new identity is linked to an existing account only when the
provider vouches for the address (`email_verified`), and an account is made for it only when
OIDC_CREATE_USERS allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from flask_tracking.config import as_flag, read_plainly
from flask_tracking.extensions import db
from flask_tracking.users import accounts, audit
from flask_tracking.users.models import OidcIdentity, User

# The spec's names, read plainly from the environment as well (the prefixed name wins).
PLAIN = ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET")
CLIENT = "oidc"  # the Authlib client's name in this app's registry
# An account made by single sign-on has no password: no hash can match this one, and the
# owner can set a password by the reset link (when password login is on).
NO_PASSWORD = "!sso"  # noqa: S105 - a marker, not a password


class Refused(Exception):
    """The provider's answer was sound, but this identity may not log in here (the message
    says why, for the person trying)."""


@dataclass(frozen=True)
class Identity:
    """What a verified ID token says about the person."""

    issuer: str
    subject: str
    email: str
    email_verified: bool
    name: str

    @classmethod
    def from_claims(cls, issuer: str, claims: dict[str, Any]) -> Identity:
        verified = claims.get("email_verified")
        if isinstance(verified, str):  # some providers send "true"
            verified = verified.strip().lower() == "true"
        return cls(
            issuer=issuer,
            subject=str(claims.get("sub") or ""),
            email=accounts.normalise_email(str(claims.get("email") or "")),
            email_verified=verified is True,
            name=str(claims.get("name") or "")[:120],
        )


def init_app(app: Flask) -> None:
    """Read the OIDC settings and, when an issuer is set, register the Authlib client for it."""
    read_plainly(app.config, PLAIN)
    app.config["OIDC_CREATE_USERS"] = as_flag(app.config.get("OIDC_CREATE_USERS"))
    app.config["OIDC_PASSWORD_LOGIN"] = as_flag(app.config.get("OIDC_PASSWORD_LOGIN"))
    domains = app.config.get("OIDC_ALLOWED_DOMAINS") or ()
    if isinstance(domains, str):
        domains = domains.replace(",", " ").split()
    app.config["OIDC_ALLOWED_DOMAINS"] = tuple(str(d).strip().lower().lstrip("@") for d in domains)
    issuer = str(app.config.get("OIDC_ISSUER") or "").rstrip("/")
    app.config["OIDC_ISSUER"] = issuer
    if not issuer:
        return
    if not app.config.get("OIDC_CLIENT_ID"):
        raise RuntimeError("OIDC_ISSUER is set but OIDC_CLIENT_ID is not")
    oauth = OAuth(app)  # one registry per app: its client caches this issuer's metadata
    oauth.register(
        CLIENT,
        client_id=app.config["OIDC_CLIENT_ID"],
        client_secret=app.config.get("OIDC_CLIENT_SECRET") or None,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": "openid email profile",
            "code_challenge_method": "S256",  # PKCE
            "default_timeout": float(app.config["OIDC_TIMEOUT"]),
        },
    )
    app.extensions["flask_tracking_oidc"] = oauth


def enabled() -> bool:
    """Whether single sign-on is configured."""
    return bool(current_app.config.get("OIDC_ISSUER"))


def password_login() -> bool:
    """Whether passwords log in: always without single sign-on (or nobody could log in)."""
    return not enabled() or bool(current_app.config["OIDC_PASSWORD_LOGIN"])


def client() -> Any:
    """This app's Authlib client for the provider."""
    return current_app.extensions["flask_tracking_oidc"].create_client(CLIENT)


def check_issuer(metadata: dict[str, Any]) -> None:
    """OpenID Connect Discovery: the document must name the issuer it was fetched for."""
    expected = current_app.config["OIDC_ISSUER"]
    if str(metadata.get("issuer", "")).rstrip("/") != expected:
        raise Refused(
            f"The provider's discovery document names the issuer {metadata.get('issuer')!r}, "
            f"not {expected!r} (OIDC_ISSUER)."
        )


def user_for(identity: Identity) -> User:
    """Return the account this identity logs into, linking or creating it by the rules above;
    raise Refused when it may not log in."""
    if not identity.subject:
        raise Refused("The provider did not say who you are (no subject).")
    allowed = current_app.config["OIDC_ALLOWED_DOMAINS"]
    domain = identity.email.rpartition("@")[2]
    if allowed and (not identity.email or domain not in allowed):
        raise Refused(f"Addresses at {domain or 'no domain'} cannot log in here.")
    linked = db.session.scalar(
        select(OidcIdentity).where(
            OidcIdentity.issuer == identity.issuer, OidcIdentity.subject == identity.subject
        )
    )
    if linked is not None:
        linked.last_login_at = datetime.now(UTC)
        owner: User = linked.user
        return owner
    if not identity.email:
        raise Refused("The provider did not share your email address (the `email` scope).")
    if not identity.email_verified:
        raise Refused(
            "The provider has not verified your email address, so it cannot be matched to an "
            "account here. Verify it with the provider, then try again."
        )
    user = accounts.find_user(identity.email)
    if user is None:
        if not current_app.config["OIDC_CREATE_USERS"]:
            raise Refused(
                f"There is no account for {identity.email} here, and single sign-on does not "
                "create accounts. Ask for an invitation or an account first."
            )
        user = User(
            email=identity.email,
            name=identity.name,
            password_hash=NO_PASSWORD,
            email_verified_at=datetime.now(UTC),
        )
        db.session.add(user)
        db.session.flush()
        audit.record(user.id, "sso_linked", f"new account, {identity.issuer}")
    else:
        audit.record(user.id, "sso_linked", identity.issuer)
        if user.email_verified_at is None:  # the provider vouches for the address
            user.email_verified_at = datetime.now(UTC)
    db.session.add(
        OidcIdentity(
            user_id=user.id,
            issuer=identity.issuer,
            subject=identity.subject,
            last_login_at=datetime.now(UTC),
        )
    )
    try:
        db.session.flush()
    except IntegrityError:  # the same identity, linked by a parallel request
        db.session.rollback()
        raise Refused("This sign-on was just linked by another request; log in again.") from None
    return user


def identities_of(user: User) -> list[OidcIdentity]:
    """The provider identities that log into this account."""
    return list(
        db.session.scalars(
            select(OidcIdentity).where(OidcIdentity.user_id == user.id).order_by(OidcIdentity.id)
        )
    )
