"""Salted PBKDF2-HMAC-SHA512 password hashes, stored self-describing."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from functools import lru_cache

ALGORITHM = "pbkdf2_sha512"
SALT_BYTES = 16


def hash_password(password: str, rounds: int) -> str:
    """Return 'pbkdf2_sha512$rounds$salt$hash' for a new random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _derive(password, salt, rounds)
    return "$".join((ALGORITHM, str(rounds), _b64(salt), _b64(digest)))


def verify_password(password: str, stored: str) -> bool:
    """Check a password against a stored hash in constant time."""
    parsed = _parse(stored)
    if parsed is None:
        return False
    rounds, salt, expected = parsed
    return hmac.compare_digest(_derive(password, salt, rounds), expected)


def needs_rehash(stored: str, rounds: int) -> bool:
    """Tell whether a stored hash was made with fewer rounds than configured now."""
    parsed = _parse(stored)
    return parsed is None or parsed[0] < rounds


def _derive(password: str, salt: bytes, rounds: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, rounds)


def _parse(stored: str) -> tuple[int, bytes, bytes] | None:
    try:
        algorithm, rounds, salt, digest = stored.split("$")
        if algorithm != ALGORITHM:
            return None
        return int(rounds), _unb64(salt), _unb64(digest)
    except (ValueError, binascii.Error):  # malformed: wrong field count, bad integer or bad base64
        return None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    # validate=True: a stray character means a corrupt hash, not one to silently skip.
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of zxcvbn's list (from leaked-password corpora), shipped
    with the library: checked offline, never by a network call."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def weakness(password: str, minimum: int, *user_inputs: str) -> str | None:
    """Return why a new password is refused — too short, a common password, or guessable in
    under a thousand tries by zxcvbn's estimate (repeats, sequences, the account's own email
    or name) — or None when it will do."""
    if len(password) < minimum:
        return f"The password must be at least {minimum} characters long."
    if password.lower() in common_passwords():
        return "That is one of the most common passwords: choose another."
    from zxcvbn import zxcvbn

    # zxcvbn's matching is quadratic in the length; past 100 characters a password is not
    # guessable by any list it knows.
    estimate = zxcvbn(password[:100], user_inputs=[text for text in user_inputs if text])
    if estimate["score"] == 0:
        warning = estimate["feedback"]["warning"] or "It would be guessed in a few tries."
        return f"That password is too easy to guess. {warning}"
    return None
