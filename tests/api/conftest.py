"""API fixtures: keys for users, and the Authorization header that carries them."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_tracking.extensions import db
from flask_tracking.tracking.models import Site
from flask_tracking.users import apikeys
from flask_tracking.users.models import User


def bearer(secret: str) -> dict[str, str]:
    """Return the header that authenticates with `secret`."""
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def make_key(app: Flask) -> Any:
    """make_key(user, scope="read", site_id=None, name="test") returns a key's secret."""

    def factory(
        user: User, scope: str = apikeys.READ, site_id: int | None = None, name: str = "test"
    ) -> str:
        with app.app_context():
            owner = db.session.get(User, user.id)
            assert owner is not None
            site = db.session.get(Site, site_id) if site_id is not None else None
            _key, secret = apikeys.create_key(owner, name, scope, site)
            return secret

    return factory


@pytest.fixture
def owner(make_user: Any) -> User:
    """User A, who owns the sites the tests read."""
    return make_user("a@example.com")  # type: ignore[no-any-return]


@pytest.fixture
def site(owner: User, make_site: Any) -> int:
    """A site of user A."""
    return make_site(owner, "https://a.example", "A's site")  # type: ignore[no-any-return]


@pytest.fixture
def writer(owner: User, make_key: Any) -> dict[str, str]:
    """Headers with a read-write key of user A (all sites)."""
    return bearer(make_key(owner, apikeys.READ_WRITE))


@pytest.fixture
def reader(owner: User, make_key: Any) -> dict[str, str]:
    """Headers with a read key of user A (all sites)."""
    return bearer(make_key(owner, apikeys.READ))
