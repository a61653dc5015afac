"""Cookie-free visitor and session ids from keyed hashes."""

from __future__ import annotations

import hashlib
import secrets

SALT_BYTES = 32
_MAX_KEY_BYTES = 64  # BLAKE2b's limit for a key
# Distinct personalisation strings keep the two kinds of id apart even on equal input bytes.
_VISITOR_PERSON = b"ft-visitor-v1"
_SESSION_PERSON = b"ft-session-v1"


def new_salt() -> bytes:
    """Return a fresh random salt; rotating it makes yesterday's visitors unlinkable."""
    return secrets.token_bytes(SALT_BYTES)


def _field(value: str) -> bytes:
    """Encode a string with a 4-byte length prefix, so field boundaries are never ambiguous."""
    # surrogatepass: a header decoded with errors="surrogateescape" must hash, not crash.
    data = value.encode("utf-8", "surrogatepass")
    return len(data).to_bytes(4, "big") + data


def _signed_digest(data: bytes, *, key: bytes, person: bytes) -> int:
    """Hash to 8 bytes and read them as a signed 64-bit int, the range of a PostgreSQL BIGINT."""
    digest = hashlib.blake2b(data, digest_size=8, key=key, person=person).digest()
    return int.from_bytes(digest, "big", signed=True)


def visitor_id(salt: bytes, site_id: int, ip: str, user_agent: str) -> int:
    """Return the visitor id of an (IP, User-Agent) pair on a site under the current salt."""
    if len(salt) > _MAX_KEY_BYTES:
        raise ValueError(f"salt must be at most {_MAX_KEY_BYTES} bytes, got {len(salt)}")
    # The site id is part of the input so one person gets unrelated ids on different sites.
    data = site_id.to_bytes(8, "big", signed=True) + _field(ip) + _field(user_agent)
    return _signed_digest(data, key=salt, person=_VISITOR_PERSON)


def session_id(visitor_id: int, started_at_epoch_ms: int) -> int:
    """Return a deterministic session id, so replaying the same hits yields the same id."""
    # No key needed: the visitor id is already a salted hash, and this only has to be stable.
    data = visitor_id.to_bytes(8, "big", signed=True) + started_at_epoch_ms.to_bytes(
        8, "big", signed=True
    )
    return _signed_digest(data, key=b"", person=_SESSION_PERSON)
