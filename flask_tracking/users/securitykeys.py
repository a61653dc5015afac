"""Security keys (WebAuthn, py_webauthn) as a second factor, beside the authenticator app.

A key can be added once two-factor login is on (so the recovery codes exist for the day the
key is lost), and then stands in for a code at login. The ceremonies are py_webauthn's: it
checks the origin, the relying party, the challenge, the signature and the signature counter.
What is ours: the relying party is PUBLIC_URL's host (else the request's), and each challenge
is single-use on the server — its SHA-256 is kept on the user and cleared, atomically, by the
first answer to it — since the session cookie that carries it could be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, request, session
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from flask_tracking.extensions import db
from flask_tracking.users.models import SecurityKey, User

RP_NAME = "Flask-Tracking"
CHALLENGE = "key_challenge"  # session key: the challenge handed out, and what for
CHALLENGE_SECONDS = 300
MAX_KEYS = 10


class KeyRefused(Exception):
    """The key's answer was not accepted (the message says why)."""


def relying_party() -> tuple[str, str]:
    """The relying party id (a host name) and the origin the browser must report."""
    public = current_app.config.get("PUBLIC_URL")
    parts = urlsplit(str(public) if public else request.host_url)
    return parts.hostname or "", f"{parts.scheme}://{parts.netloc}"


def keys_of(user: User) -> list[SecurityKey]:
    return list(
        db.session.scalars(
            select(SecurityKey).where(SecurityKey.user_id == user.id).order_by(SecurityKey.id)
        )
    )


def _descriptor(key: SecurityKey) -> PublicKeyCredentialDescriptor:
    transports = []
    for name in filter(None, key.transports.split(",")):
        try:
            transports.append(AuthenticatorTransport(name))
        except ValueError:
            continue  # a transport this library does not know: the browser will find it
    return PublicKeyCredentialDescriptor(
        id=base64url_to_bytes(key.credential_id), transports=transports or None
    )


def _hand_out(user: User, challenge: bytes, purpose: str) -> None:
    """Remember a new challenge: in the session (to check the answer against) and its hash on
    the user (to accept one answer only); any earlier challenge of the user dies."""
    digest = hashlib.sha256(challenge).hexdigest()
    user.key_challenge = f"{digest}:{int(time.time()) + CHALLENGE_SECONDS}"
    db.session.commit()
    session[CHALLENGE] = {"c": bytes_to_base64url(challenge), "p": purpose, "u": user.id}


def _take(user: User, purpose: str) -> bytes:
    """The challenge this answer must sign, used up now (whatever the answer turns out to be)."""
    handed = session.pop(CHALLENGE, None)
    if not isinstance(handed, dict) or handed.get("p") != purpose or handed.get("u") != user.id:
        raise KeyRefused("No security key request is waiting: start again.")
    challenge = base64url_to_bytes(str(handed.get("c", "")))
    digest = hashlib.sha256(challenge).hexdigest()
    stored = user.key_challenge or ""
    used = db.session.execute(
        update(User)
        .where(User.id == user.id, User.key_challenge == stored)
        .values(key_challenge=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    expected, _, expires = stored.partition(":")
    if (
        not used.rowcount  # type: ignore[attr-defined]
        or not hmac.compare_digest(expected, digest)
        or not expires.isdigit()
        or int(expires) < time.time()
    ):
        raise KeyRefused("This security key request was used already or has expired: start again.")
    return challenge


def _user_handle(user: User) -> bytes:
    """The opaque user id the key stores: derived from the secret key, not the address."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret, f"webauthn-user:{user.id}".encode(), "sha256").digest()[:32]


def registration_options(user: User) -> str:
    """The options for navigator.credentials.create(), as JSON."""
    if len(keys_of(user)) >= MAX_KEYS:
        raise KeyRefused(f"An account can have {MAX_KEYS} security keys at most.")
    rp_id, _origin = relying_party()
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=RP_NAME,
        user_id=_user_handle(user),
        user_name=user.email,
        user_display_name=user.display_name,
        exclude_credentials=[_descriptor(key) for key in keys_of(user)],
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement.DISCOURAGED,
        ),
    )
    _hand_out(user, options.challenge, "register")
    return str(options_to_json(options))


def register(user: User, name: str, credential: dict[str, Any]) -> SecurityKey:
    """Check the browser's answer to the registration options and keep the new key."""
    challenge = _take(user, "register")
    rp_id, origin = relying_party()
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as error:
        raise KeyRefused(f"The security key's answer was refused: {error}") from None
    transports = credential.get("response", {}).get("transports") or []
    key = SecurityKey(
        user_id=user.id,
        name=name.strip()[:60] or "Security key",
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=",".join(str(t) for t in transports if isinstance(t, str))[:200],
    )
    db.session.add(key)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise KeyRefused("This security key is registered already.") from None
    return key


def authentication_options(user: User) -> str:
    """The options for navigator.credentials.get() at login, as JSON."""
    keys = keys_of(user)
    if not keys:
        raise KeyRefused("This account has no security key.")
    rp_id, _origin = relying_party()
    options = generate_authentication_options(
        rp_id=rp_id,
        allow_credentials=[_descriptor(key) for key in keys],
        user_verification=UserVerificationRequirement.DISCOURAGED,
    )
    _hand_out(user, options.challenge, "login")
    return str(options_to_json(options))


def authenticate(user: User, credential: dict[str, Any]) -> SecurityKey:
    """Check the browser's answer at login: one of the user's keys signed this challenge."""
    challenge = _take(user, "login")
    key: SecurityKey | None = db.session.scalar(
        select(SecurityKey).where(
            SecurityKey.user_id == user.id, SecurityKey.credential_id == str(credential.get("id"))
        )
    )
    if key is None:
        raise KeyRefused("This security key is not registered to this account.")
    rp_id, origin = relying_party()
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=key.public_key,
            credential_current_sign_count=key.sign_count,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as error:
        raise KeyRefused(f"The security key's answer was refused: {error}") from None
    key.sign_count = verified.new_sign_count
    key.last_used_at = datetime.now(UTC)
    return key


def remove(user: User, key_id: int) -> SecurityKey | None:
    key: SecurityKey | None = db.session.scalar(
        select(SecurityKey).where(SecurityKey.id == key_id, SecurityKey.user_id == user.id)
    )
    if key is not None:
        db.session.delete(key)
    return key


def parse_answer(body: bytes) -> dict[str, Any]:
    """The JSON the page posts: {"credential": {...}, ...}; KeyRefused when it is not that."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise KeyRefused("The request is not JSON.") from None
    if not isinstance(data, dict) or not isinstance(data.get("credential"), dict):
        raise KeyRefused("The request carries no credential.")
    return data
