"""The write path: validate a hit, enrich it in named steps, store it."""

from __future__ import annotations

from flask_tracking.ingest import models as models  # noqa: F401 - register the tables
from flask_tracking.ingest.hit import Hit, InvalidHit, UnknownSite
from flask_tracking.ingest.pipeline import IngestSettings, Outcome, record_visit

__all__ = ["Hit", "IngestSettings", "InvalidHit", "Outcome", "UnknownSite", "record_visit"]
