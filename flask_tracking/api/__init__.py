"""The JSON API, /api/v1: API keys (users/apikeys.py) authenticate programs that manage sites,
read statistics, send server-side events and export raw events.

spec.py declares each operation once, for routing, validation and the OpenAPI document;
the modules below hold the operations, grouped as the document's tags are.
"""

from __future__ import annotations

from flask_tracking.api import (
    alerts,
    docs,
    events,
    experiments,
    export,
    funnels,
    goals,
    reports,
    sites,
    stats,
)
from flask_tracking.api.spec import api

__all__ = [
    "alerts",
    "api",
    "docs",
    "events",
    "experiments",
    "export",
    "funnels",
    "goals",
    "reports",
    "sites",
    "stats",
]
