"""Fixtures for the geo unit tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def geo_log() -> Iterator[list[logging.LogRecord]]:
    """Records logged by flask_tracking.geo at WARNING and above."""
    # Listen on the geo logger itself: once an app is created elsewhere in the session,
    # "flask_tracking" stops propagating to the root logger that caplog listens on.
    logger = logging.getLogger("flask_tracking.geo")
    handler = _ListHandler()
    saved_level = logger.level
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(saved_level)
