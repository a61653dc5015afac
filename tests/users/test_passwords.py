"""Password hashing: PBKDF2-HMAC-SHA512, random salt, self-describing, rehash on demand."""

from __future__ import annotations

import hashlib

import pytest

from flask_tracking.users.passwords import hash_password, needs_rehash, verify_password


def test_hash_is_self_describing_and_verifies() -> None:
    stored = hash_password("s3cret-pass", 1000)
    algorithm, rounds, _salt, _digest = stored.split("$")
    assert (algorithm, rounds) == ("pbkdf2_sha512", "1000")
    assert verify_password("s3cret-pass", stored)
    assert not verify_password("s3cret-pasS", stored)


def test_hash_matches_pbkdf2_sha512_with_its_salt() -> None:
    import base64

    stored = hash_password("pw", 5)
    _, _, salt, digest = stored.split("$")
    raw_salt = base64.urlsafe_b64decode(salt + "=" * (-len(salt) % 4))
    assert len(raw_salt) == 16
    expected = hashlib.pbkdf2_hmac("sha512", b"pw", raw_salt, 5)
    assert base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4)) == expected


def test_same_password_gets_different_salts() -> None:
    assert hash_password("pw", 1) != hash_password("pw", 1)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "garbage",
        "md5$1$aa$bb",
        "pbkdf2_sha512$x$aa$bb",
        "pbkdf2_sha512$1$!!$bb",
        "pbkdf2_sha512$1$aa",
    ],
)
def test_malformed_hashes_never_verify(stored: str) -> None:
    assert not verify_password("pw", stored)
    assert needs_rehash(stored, 1)


def test_needs_rehash_when_rounds_are_raised() -> None:
    stored = hash_password("pw", 100)
    assert not needs_rehash(stored, 100)
    assert needs_rehash(stored, 200)
