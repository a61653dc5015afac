"""Two-factor login with TOTP (RFC 6238, pyotp): setting it up from a QR code, checking codes
without replays, ten single-use recovery codes, and "remember this browser".

A code is accepted for the time step before, at or after now (clocks drift), and only for a
step later than the last one accepted for that user: a code seen over someone's shoulder, or
replayed from a log, does not open the account a second time.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
import time
from datetime import UTC, datetime

import pyotp
import segno
from flask import current_app
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import delete, select, update

from flask_tracking.extensions import db
from flask_tracking.users.models import RecoveryCode, SecurityKey, User

STEP = 30  # seconds: what every authenticator app uses
RECOVERY_CODES = 10
ISSUER = "Flask-Tracking"


def new_secret() -> str:
    """A random base32 secret (160 bits, as RFC 4226 recommends)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, user: User) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code of the address as an SVG element, drawn on the server (no script)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(
        buffer, kind="svg", scale=4, border=2, xmldecl=False, title="QR code to scan"
    )
    return buffer.getvalue().decode()


def _normalise(code: str) -> str:
    return "".join(code.split()).replace("-", "")


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step (-1, 0 or +1 around now) whose code this is, or None."""
    code = _normalise(code)
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = int((time.time() if now is None else now) // STEP)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.at(step * STEP), code):
            return step
    return None


def check_code(user: User, code: str, now: float | None = None) -> bool:
    """Accept a code of the user's authenticator once: its step must be later than the last
    accepted (recorded atomically, so two requests with one code cannot both pass)."""
    if not user.totp_secret:
        return False
    step = matching_step(user.totp_secret, code, now)
    if step is None:
        return False
    result = db.session.execute(
        update(User)
        .where(
            User.id == user.id,
            (User.totp_last_step.is_(None)) | (User.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _hash_code(code: str) -> str:
    return hashlib.sha256(_normalise(code).lower().encode()).hexdigest()


def enable(user: User, secret: str, code: str, now: float | None = None) -> list[str] | None:
    """Turn two-factor login on with a secret the user's app shows `code` for; return the new
    recovery codes (shown once, stored hashed), or None when the code does not match."""
    step = matching_step(secret, code, now)
    if step is None:
        return None
    user.totp_secret = secret
    user.totp_last_step = step
    user.totp_enabled_at = datetime.now(UTC)
    codes = _replace_recovery_codes(user)
    db.session.commit()
    return codes


def _replace_recovery_codes(user: User) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = ["-".join(secrets.token_hex(3)[:5] for _ in range(2)) for _ in range(RECOVERY_CODES)]
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=_hash_code(c)) for c in codes)
    return codes


def use_recovery_code(user: User, code: str) -> bool:
    """Spend one of the user's recovery codes (each works once)."""
    result = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _hash_code(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=datetime.now(UTC))
    )
    db.session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def recovery_codes_left(user: User) -> int:
    """How many unused recovery codes the user has."""
    return len(
        list(
            db.session.scalars(
                select(RecoveryCode.id).where(
                    RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
                )
            )
        )
    )


def disable(user: User) -> None:
    """Turn two-factor login off (the caller checked the password and a code): the secret,
    the recovery codes and the security keys go."""
    user.totp_secret = None
    user.totp_last_step = None
    user.totp_enabled_at = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.execute(delete(SecurityKey).where(SecurityKey.user_id == user.id))
    db.session.commit()


# -- "remember this browser" ---------------------------------------------------------------

REMEMBER_COOKIE = "ft_2fa_remember"


def _remember_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="flask-tracking 2fa")


def _fingerprint(user: User) -> str:
    # Bound to the secret and the password: turning 2FA off and on, or a new password, forgets
    # every remembered browser.
    material = f"{user.totp_secret}:{user.password_hash}".encode()
    return hashlib.sha256(material).hexdigest()[:16]


def remember_token(user: User) -> str:
    """The cookie value that lets this browser skip the code for TWO_FACTOR_REMEMBER_DAYS."""
    return str(_remember_serializer().dumps({"u": user.id, "f": _fingerprint(user)}))


def remembered(user: User, token: str | None) -> bool:
    """Whether the browser's cookie still vouches for this user."""
    if not token or not user.totp_secret:
        return False
    days = float(current_app.config["TWO_FACTOR_REMEMBER_DAYS"])
    try:
        payload = _remember_serializer().loads(token, max_age=int(days * 86400))
    except BadData:
        return False
    return (
        isinstance(payload, dict)
        and payload.get("u") == user.id
        and payload.get("f") == _fingerprint(user)
    )
