"""`flask-tracking backup` and `restore`: round trips on this leg's database — with the server
stopped (in this process), and through a real `serve` collecting under load."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_tracking.events import close_store
from flask_tracking.extensions import db
from flask_tracking.ops.backup import FORMAT, MANIFEST
from flask_tracking.tracking.models import Site
from tests.conftest import TEST_DATABASE_URL, stored_events
from tests.ingest.test_writer import spool_event
from tests.servers import Load, Server, assert_exactly_once, leg_database

NOW = datetime.now(UTC)


@pytest.fixture
def restart(app_factory: Any, tmp_path: Path) -> Any:
    """Start (again) an app with its data in files, as a real node has: SQLite (or this leg's
    PostgreSQL), the event store and the spool, all in DATA_DIR."""
    data = tmp_path / "data"

    def start() -> Flask:
        app: Flask = app_factory(
            DATA_DIR=str(data),
            SPOOL_DIR=str(data / "spool"),
            EVENTS_DATABASE_URL=f"duckdb:///{data}/events.duckdb",
            SQLALCHEMY_DATABASE_URI=TEST_DATABASE_URL or f"sqlite:///{data}/tracking.db",
        )
        return app

    return start


@pytest.fixture
def node(restart: Any) -> Flask:
    app: Flask = restart()
    return app


def paths_of(app: Flask) -> list[str]:
    return sorted(str(event.pathname) for event in stored_events(app))


def sites_of(app: Flask) -> list[str]:
    with app.app_context():
        names = sorted(db.session.scalars(select(Site.base_url)))
        db.session.remove()
    return names


def test_a_round_trip_brings_back_the_store_the_spool_and_sqlite_accounts(
    node: Flask, restart: Any, site_in: Any, tmp_path: Path
) -> None:
    site = site_in(node)
    for number in range(5):
        spool_event(node, site, NOW, f"/stored/{number}")
    assert len(paths_of(node)) == 5  # stored
    for number in range(3):
        spool_event(node, site, NOW, f"/waiting/{number}")  # accepted, not yet stored
    archive = tmp_path / "node.tar.gz"
    result = node.test_cli_runner().invoke(args=["backup", str(archive)])
    assert result.exit_code == 0, result.output
    assert "3 spool segment(s)" not in result.output  # one worker's segment holds all three
    assert "1 spool segment(s)" in result.output

    # Life goes on: more events, another site.
    spool_event(node, site, NOW, "/after")
    site_in(node, base_url="https://later.example")
    assert len(paths_of(node)) == 9
    close_store(node)

    result = node.test_cli_runner().invoke(args=["restore", "--yes", str(archive)])
    assert result.exit_code == 0, result.output
    assert "1 spool segment(s) wait for the writer" in result.output
    node = restart()  # the server started again on the restored data
    expected = sorted([f"/stored/{n}" for n in range(5)] + [f"/waiting/{n}" for n in range(3)])
    assert paths_of(node) == expected  # the waiting events stored once, after the restore
    if TEST_DATABASE_URL:
        assert "PostgreSQL" in result.output  # accounts are pg_dump's business
        assert sites_of(node) == ["https://example.com", "https://later.example"]
    else:
        assert sites_of(node) == ["https://example.com"]
    # What was there is kept aside, not deleted.
    aside = [p for p in Path(node.config["DATA_DIR"]).iterdir() if p.name.startswith("before-")]
    assert len(aside) == 1
    assert (aside[0] / "events.duckdb").is_file()


def test_an_existing_file_is_never_overwritten(node: Flask, tmp_path: Path) -> None:
    archive = tmp_path / "taken.tar"
    archive.write_bytes(b"precious")
    result = node.test_cli_runner().invoke(args=["backup", str(archive)])
    assert result.exit_code == 1
    assert "exists already" in result.output
    assert archive.read_bytes() == b"precious"


def fake_archive(path: Path, manifest: dict[str, Any] | None, files: tuple[str, ...]) -> Path:
    with tarfile.open(path, "w") as tar:
        members = {name: b"x" for name in files}
        if manifest is not None:
            members[MANIFEST] = json.dumps(manifest).encode()
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    ("manifest", "files", "said"),
    [
        (None, ("events.duckdb",), "not a Flask-Tracking backup: it has no manifest.json"),
        ({"format": 99, "accounts": "sqlite"}, ("events.duckdb",), "backup format 99 is not 1"),
        (
            {"format": FORMAT, "accounts": "sqlite", "revision": "9999"},
            ("events.duckdb", "accounts.sqlite"),
            "the backup's schema (9999) is newer than this version knows",
        ),
        (
            {"format": FORMAT, "accounts": "postgresql", "revision": None},
            ("accounts.sqlite",),
            "the backup is incomplete",
        ),
    ],
)
def test_a_wrong_archive_is_refused_and_nothing_changes(
    node: Flask,
    site_in: Any,
    tmp_path: Path,
    manifest: dict[str, Any] | None,
    files: tuple[str, ...],
    said: str,
) -> None:
    site = site_in(node)
    spool_event(node, site, NOW, "/kept")
    assert paths_of(node) == ["/kept"]
    close_store(node)
    archive = fake_archive(tmp_path / "wrong.tar", manifest, files)
    result = node.test_cli_runner().invoke(args=["restore", "--yes", str(archive)])
    assert result.exit_code == 1
    assert said in result.output
    assert paths_of(node) == ["/kept"]
    assert not [p for p in Path(node.config["DATA_DIR"]).iterdir() if p.name.startswith("before")]


# -- through a real server ----------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Server]:
    with leg_database() as url:
        server = Server(tmp_path, database_url=url)
        server.prepare()
        try:
            yield server
        finally:
            server.kill_everything()


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_backup_taken_under_load_restores_every_event_acknowledged_before_it(
    served: Server, tmp_path: Path
) -> None:
    served.start()
    archive = tmp_path / "live.tar.gz"
    with Load(served.port, threads=3) as load:
        time.sleep(1.5)
        before = list(load.acknowledged)
        said = served.command("backup", str(archive))
        time.sleep(1.0)
    assert "through the running server" in said
    assert len(before) > 100 and len(load.acknowledged) > len(before)
    served.stop()
    assert_exactly_once(served, load)  # the live node lost nothing meanwhile

    said = served.command("restore", "--yes", str(archive))
    assert "restored the backup" in said
    served.start()
    deadline = time.monotonic() + 30
    while True:
        stored = Counter(served.stored_paths())
        if all(stored[path] for path in before):
            break
        assert time.monotonic() < deadline, "the restored spool was not stored"
        time.sleep(0.2)
    time.sleep(1.0)  # whatever else the restored spool holds, stored too
    stored = Counter(served.stored_paths())
    assert [path for path in before if stored[path] != 1] == []
    assert max(stored.values()) == 1, "a restored event was stored twice"
    assert set(stored) <= set(load.acknowledged) | set(load.unanswered)
    assert served.get_json("/readyz")[0] == 200
    if not served.database_url.startswith("sqlite"):
        return
    users = served.sql("SELECT count(*) FROM users")[0][0]
    assert users == 1  # the demo user, from the restored SQLite database
    assert os.path.isdir(tmp_path / "spool")
    assert served.sql("SELECT count(*) FROM sites")[0][0] == 2
