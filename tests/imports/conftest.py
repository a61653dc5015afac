"""The importers' tests share a site of an owner (in a GeoIP-equipped app)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_tracking.extensions import db
from flask_tracking.tracking.models import Site
from flask_tracking.users import accounts
from tests.conftest import PASSWORD, geolite2_2018


@pytest.fixture
def site(app_factory: Any) -> tuple[Flask, int]:
    app = app_factory(**geolite2_2018())
    with app.app_context():
        owner = accounts.register("owner@example.com", PASSWORD, verified=True)
        row = Site(owner_id=owner.id, base_url="https://example.com")
        db.session.add(row)
        db.session.commit()
        return app, row.id
