"""Keyed-hash visitor ids and deterministic session ids."""

from __future__ import annotations

import pytest

from flask_tracking.ingest.visitors import new_salt, session_id, visitor_id

SALT = bytes(range(32))
OTHER_SALT = bytes(range(1, 33))
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
BASE = (SALT, 1, "203.0.113.7", CHROME)
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


def test_same_input_and_salt_give_the_same_id() -> None:
    assert visitor_id(*BASE) == visitor_id(bytes(SALT), 1, "203.0.113.7", str(CHROME))


@pytest.mark.parametrize(
    "changed",
    [
        (OTHER_SALT, 1, "203.0.113.7", CHROME),
        (SALT, 2, "203.0.113.7", CHROME),
        (SALT, -1, "203.0.113.7", CHROME),
        (SALT, 1, "203.0.113.8", CHROME),
        (SALT, 1, "2001:db8::7", CHROME),
        (SALT, 1, "203.0.113.7", CHROME + " Edg/131.0.0.0"),
        (SALT, 1, "203.0.113.7", ""),
    ],
)
def test_any_change_gives_a_different_id(changed: tuple[bytes, int, str, str]) -> None:
    assert visitor_id(*changed) != visitor_id(*BASE)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("1.2.3.4", "5 x"), ("1.2.3.45", " x")),
        (("1.2.3.4", ""), ("", "1.2.3.4")),
        (("a\x00", "b"), ("a", "\x00b")),
    ],
)
def test_encoding_is_unambiguous(first: tuple[str, str], second: tuple[str, str]) -> None:
    assert visitor_id(SALT, 1, *first) != visitor_id(SALT, 1, *second)


@pytest.mark.parametrize("site_id", [0, 1, 2**31, 2**63 - 1, -(2**63)])
def test_visitor_id_fits_a_signed_bigint(site_id: int) -> None:
    ids = [visitor_id(SALT, site_id, f"198.51.100.{n}", CHROME) for n in range(200)]
    assert all(BIGINT_MIN <= value <= BIGINT_MAX for value in ids)


def test_ids_use_the_whole_signed_range() -> None:
    # Reading the digest as signed must give negative ids too, not only 0..2**63.
    ids = [visitor_id(SALT, 1, f"198.51.100.{n}", CHROME) for n in range(200)]
    assert min(ids) < 0 < max(ids)


@pytest.mark.parametrize("salt", [b"", b"s", bytes(64)])
def test_salts_up_to_64_bytes_are_accepted(salt: bytes) -> None:
    assert isinstance(visitor_id(salt, 1, "203.0.113.7", CHROME), int)


def test_salt_longer_than_64_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        visitor_id(bytes(65), 1, "203.0.113.7", CHROME)


def test_unencodable_user_agent_still_hashes() -> None:
    assert isinstance(visitor_id(SALT, 1, "203.0.113.7", "bad \udcff surrogate"), int)


def test_new_salt_is_32_random_bytes() -> None:
    salts = {new_salt() for _ in range(10)}
    assert len(salts) == 10
    assert all(isinstance(salt, bytes) and len(salt) == 32 for salt in salts)


def test_session_id_is_deterministic() -> None:
    assert session_id(123456789, 1_732_400_000_000) == session_id(123456789, 1_732_400_000_000)


@pytest.mark.parametrize(
    ("visitor", "started"),
    [
        (123456789, 1_732_400_000_001),
        (123456790, 1_732_400_000_000),
        (-123456789, 1_732_400_000_000),
    ],
)
def test_session_id_changes_with_either_input(visitor: int, started: int) -> None:
    assert session_id(visitor, started) != session_id(123456789, 1_732_400_000_000)


@pytest.mark.parametrize("visitor", [BIGINT_MIN, -1, 0, 1, BIGINT_MAX])
def test_session_id_fits_a_signed_bigint(visitor: int) -> None:
    assert BIGINT_MIN <= session_id(visitor, 1_732_400_000_000) <= BIGINT_MAX


def test_session_id_differs_from_the_visitor_id_it_came_from() -> None:
    visitor = visitor_id(*BASE)
    assert session_id(visitor, 0) != visitor
