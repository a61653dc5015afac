"""Readiness checks: can this node serve dashboards and store what it accepts?

Each check returns a Check; the app is ready when every one is ok. They are cheap (a `SELECT 1`,
a directory listing, a file's age) because a load balancer asks every few seconds.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from flask_tracking.database import MIGRATIONS_DIRECTORY
from flask_tracking.extensions import db
from flask_tracking.ingest import current_ingest
from flask_tracking.ingest.spool import HEARTBEAT, heartbeat_age, spool_bytes

# Past this share of SPOOL_MAX_BYTES the node stops being ready: the collector still accepts,
# but a balancer should send traffic elsewhere before it must refuse.
SPOOL_READY_SHARE = 0.9


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, **self.facts}


def check_database() -> Check:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        db.session.rollback()
        return Check(False, f"unreachable ({type(error).__name__})")
    finally:
        db.session.remove()
    return Check(True, "reachable")


@functools.cache
def migration_heads() -> frozenset[str]:
    """The revisions `flask-tracking db upgrade` leads to (read once from the package)."""
    return frozenset(ScriptDirectory(MIGRATIONS_DIRECTORY).get_heads())


def check_migrations() -> Check:
    try:
        current = frozenset(
            db.session.scalars(text("SELECT version_num FROM alembic_version")).all()
        )
    except SQLAlchemyError:
        db.session.rollback()
        return Check(False, "no migration applied: run `flask-tracking db upgrade`")
    finally:
        db.session.remove()
    if current != migration_heads():
        return Check(
            False,
            "the schema is not the one this version expects: run `flask-tracking db upgrade`",
            {"current": sorted(current), "expected": sorted(migration_heads())},
        )
    return Check(True, "current", {"current": sorted(current)})


def check_spool(app: Flask) -> Check:
    spool = current_ingest().spool
    size = spool_bytes(spool.directory)
    share = size / spool.max_bytes if spool.max_bytes else 0.0
    facts = {"bytes": size, "share_of_cap": round(share, 4)}
    if not os.access(spool.directory, os.W_OK):
        return Check(False, "the spool directory is not writable", facts)
    if share >= SPOOL_READY_SHARE:
        return Check(False, f"the spool is {share:.0%} full: is the writer keeping up?", facts)
    return Check(True, "below its cap", facts)


def check_writer(app: Flask) -> Check:
    """The writer touches a heartbeat file in the spool every pass it completes."""
    directory = current_ingest().spool.directory
    limit = float(app.config["WRITER_HEARTBEAT_MAX_AGE"])
    age = heartbeat_age(directory)
    if age is None:
        return Check(False, f"no writer has run on this spool (no {HEARTBEAT})")
    facts = {"heartbeat_age_seconds": round(age, 1)}
    if age > limit:
        return Check(False, f"the writer's last pass was over {limit:g} s ago", facts)
    return Check(True, "alive", facts)


def readiness(app: Flask) -> tuple[bool, dict[str, Any]]:
    """Run every check; return (ready, the JSON body)."""
    checks: dict[str, Callable[[], Check]] = {
        "database": check_database,
        "migrations": check_migrations,
        "spool": lambda: check_spool(app),
        "writer": lambda: check_writer(app),
    }
    started = time.perf_counter()
    results = {name: run() for name, run in checks.items()}
    ready = all(result.ok for result in results.values())
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {name: result.as_json() for name, result in results.items()},
        "took_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    return ready, body
