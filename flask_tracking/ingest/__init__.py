"""The write path: validate, decide accept or drop, spool; a batch writer enriches and stores."""

from __future__ import annotations

import os

from flask import Flask

from flask_tracking.ingest.collect import Incoming, Ingest, RateLimits, current_ingest
from flask_tracking.ingest.hit import Hit, InvalidHit, UnknownSite, validate
from flask_tracking.ingest.limits import KeyedBuckets
from flask_tracking.ingest.sitecache import SiteCache
from flask_tracking.ingest.spool import Spool, SpoolFull
from flask_tracking.ingest.writer import Writer, WriterSettings

__all__ = [
    "Hit",
    "Incoming",
    "Ingest",
    "InvalidHit",
    "SpoolFull",
    "UnknownSite",
    "current_ingest",
    "drain",
    "drain_unless_served",
    "init_app",
    "validate",
]


def init_app(app: Flask) -> None:
    """Set up this app's spool, site cache and writer from its configuration."""
    config = app.config
    directory = config.get("SPOOL_DIR") or os.path.join(config["DATA_DIR"], "spool")
    sites = SiteCache(
        app,
        float(config["INGEST_SITE_CACHE_SECONDS"]),
        float(config["INGEST_SITE_MISS_INTERVAL"]),
    )
    writer = Writer(
        app,
        WriterSettings(
            directory=directory,
            batch_size=int(config["INGEST_BATCH_SIZE"]),
            interval=float(config["INGEST_FLUSH_INTERVAL"]),
            store_visitor_ip=bool(config["STORE_VISITOR_IP"]),
            allowed_query=frozenset(config["INGEST_ALLOWED_QUERY"]),
            rollup_interval=float(config["ROLLUP_INTERVAL"]),
            node=str(config.get("NODE_NAME") or ""),
            nice=int(config["WRITER_NICE"]),
        ),
        sites,
    )
    app.extensions["ingest"] = Ingest(
        app=app,
        spool=Spool(
            directory,
            int(config["SPOOL_MAX_BYTES"]),
            int(config["SPOOL_SEGMENT_BYTES"]),
            max_age=float(config["SPOOL_SEGMENT_SECONDS"]),
        ),
        sites=sites,
        writer=writer,
        respect_dnt=bool(config["RESPECT_DNT"]),
        writer_mode=str(config["INGEST_WRITER"]),
        limits=RateLimits(
            per_ip=KeyedBuckets(
                float(config["COLLECTOR_IP_RATE"]), float(config["COLLECTOR_IP_BURST"])
            ),
            per_site=KeyedBuckets(
                float(config["COLLECTOR_SITE_RATE"]), float(config["COLLECTOR_SITE_BURST"])
            ),
        ),
    )


def drain_unless_served(app: Flask) -> int | None:
    """Store what this process spooled — unless a writer runs in another process (a server's),
    which stores it within seconds and owns the event store meanwhile.

    Return the events stored here, or None when they were left to the running writer.
    """
    import fcntl

    ingest: Ingest = app.extensions["ingest"]
    ingest.spool.close()  # sealed: any writer may take the segment
    lock_path = os.path.join(ingest.writer.settings.directory, "writer.lock")
    with open(lock_path, "w") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        try:
            return drain(app)
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def drain(app: Flask) -> int:
    """Store everything spooled so far and refresh the rollups, now, in this thread.

    Return the events stored.
    """
    ingest: Ingest = app.extensions["ingest"]
    return ingest.writer.drain(refresh=True)
