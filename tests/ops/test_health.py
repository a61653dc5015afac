"""/healthz and /readyz: what a load balancer sees, on this leg's database."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import text

from flask_tracking.extensions import db
from flask_tracking.ingest import current_ingest
from flask_tracking.ingest.spool import HEARTBEAT, beat


def readyz(app: Flask) -> tuple[int, dict[str, Any]]:
    response = app.test_client().get("/readyz")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.is_json
    return response.status_code, response.get_json()


def spool_of(app: Flask) -> Path:
    return Path(app.config["SPOOL_DIR"])


def test_healthz_answers_while_the_process_does(app: Flask) -> None:
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "alive"}
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_not_ready_until_a_writer_has_run_then_ready_when_every_check_holds(app: Flask) -> None:
    status, body = readyz(app)
    assert status == 503
    assert body["status"] == "not ready"
    assert body["checks"]["writer"] == {
        "ok": False,
        "detail": f"no writer has run on this spool (no {HEARTBEAT})",
    }
    assert body["checks"]["database"] == {"ok": True, "detail": "reachable"}
    assert body["checks"]["migrations"]["ok"] is True

    # The real writer loop, for a moment: its first completed pass beats.
    with app.app_context():
        writer = current_ingest().writer
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not (spool_of(app) / HEARTBEAT).exists():
            assert time.monotonic() < deadline, "the writer never beat"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)

    status, body = readyz(app)
    assert status == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "migrations", "spool", "writer"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["writer"]["heartbeat_age_seconds"] < 10


def test_a_writer_silent_for_too_long_makes_the_node_not_ready(app_factory: Any) -> None:
    app = app_factory(WRITER_HEARTBEAT_MAX_AGE=30.0)
    beat(str(spool_of(app)))
    assert readyz(app)[0] == 200
    an_hour_ago = time.time() - 3600
    os.utime(spool_of(app) / HEARTBEAT, (an_hour_ago, an_hour_ago))
    status, body = readyz(app)
    assert status == 503
    assert body["checks"]["writer"]["ok"] is False
    assert body["checks"]["writer"]["detail"] == "the writer's last pass was over 30 s ago"
    assert body["checks"]["writer"]["heartbeat_age_seconds"] >= 3600


def test_a_spool_near_its_cap_makes_the_node_not_ready(app_factory: Any) -> None:
    app = app_factory(SPOOL_MAX_BYTES=10_000)
    beat(str(spool_of(app)))
    (spool_of(app) / f"segment-{os.getpid()}-1.sealed").write_bytes(b"x" * 9_500)
    status, body = readyz(app)
    assert status == 503
    assert body["checks"]["spool"] == {
        "ok": False,
        "detail": "the spool is 95% full: is the writer keeping up?",
        "bytes": 9_500,
        "share_of_cap": 0.95,
    }


def test_a_database_behind_the_code_makes_the_node_not_ready(app: Flask) -> None:
    beat(str(spool_of(app)))
    with app.app_context():
        head = db.session.scalar(text("SELECT version_num FROM alembic_version"))
        db.session.execute(text("UPDATE alembic_version SET version_num = '0009'"))
        db.session.commit()
    status, body = readyz(app)
    assert status == 503
    assert body["checks"]["migrations"]["ok"] is False
    assert "flask-tracking db upgrade" in body["checks"]["migrations"]["detail"]
    assert body["checks"]["migrations"]["current"] == ["0009"]
    with app.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
        db.session.commit()
    assert readyz(app)[0] == 200


def test_readiness_says_nothing_of_secrets_or_settings(app: Flask) -> None:
    response = app.test_client().get("/readyz")
    said = response.get_data(as_text=True)
    for secret in (app.config["SECRET_KEY"], app.config["SQLALCHEMY_DATABASE_URI"]):
        assert str(secret) not in said
    assert app.config["SPOOL_DIR"] not in said
