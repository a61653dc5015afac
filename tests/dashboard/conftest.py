"""Dashboard fixtures: the hand-counted data set (tests/reports/dataset.py) on a site whose
owner can log in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from flask_tracking.extensions import db
from flask_tracking.ingest import drain
from flask_tracking.tracking.models import Site
from flask_tracking.users import accounts
from tests.conftest import PASSWORD, geolite2_2018
from tests.reports import dataset

OWNER = "owner@example.com"


@pytest.fixture
def site(app_factory: Any) -> Iterator[tuple[Flask, int]]:
    app = app_factory(**geolite2_2018())
    with app.app_context():
        owner = accounts.register(OWNER, PASSWORD)
        site = Site(owner_id=owner.id, base_url="https://example.com", timezone=dataset.TIMEZONE)
        db.session.add(site)
        db.session.commit()
        site_id = site.id
    dataset.load(app, site_id)
    drain(app)
    yield app, site_id
