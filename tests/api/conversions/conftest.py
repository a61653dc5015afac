"""Goals and funnels through the API, on test_stats.py's hand-counted data set."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_tracking.ingest import drain
from tests.api import test_stats as hand
from tests.api.helpers import freeze, spool_event
from tests.conftest import geolite2_2018


@pytest.fixture
def app(app_factory: Any) -> Flask:
    """The app, with the bundled GeoLite2 database for locations (as test_stats.py's)."""
    return app_factory(**geolite2_2018())  # type: ignore[no-any-return]


@pytest.fixture
def data(app: Flask, site: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """test_stats.py's data set on user A's site, the API's clock frozen at its NOW."""
    for who, at, path, extra in hand.EVENTS:
        spool_event(app, site, who, at, path, **extra)
    drain(app)
    freeze(monkeypatch, hand.NOW)
    return site
