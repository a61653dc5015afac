"""`flask-tracking backup` and `restore`: the whole node's data in one archive, taken while it
collects, with nothing acknowledged left out.

An archive (tar, gzipped when its name ends in .gz) holds:

    manifest.json     format, when, the schema revision, what is inside
    accounts.sqlite   the SQLite database (SQLite's online backup API: consistent while the
                      app writes); with PostgreSQL, absent — pg_dump it (docs/operations.md)
    events.duckdb     the event store, copied in one transaction
    spool/            the spool's segments: the events accepted but not yet stored

The store and the spool are copied at one moment: the process that owns the store (the
`serve` supervisor, asked through its socket, or this command when nothing runs) holds the
writer between passes meanwhile, so every event acknowledged before the backup began is either
in the store copy or in the spool copy past the store's checkpoint — stored once after a
restore. Collection goes on throughout (the workers only append to the spool).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import socket
import sqlite3
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import make_url

from flask_tracking.database import MIGRATIONS_DIRECTORY
from flask_tracking.events import owned_store, socket_path
from flask_tracking.events.remote import receive, send
from flask_tracking.extensions import db
from flask_tracking.ingest import spool as spool_files

FORMAT = 1
MANIFEST = "manifest.json"
ACCOUNTS = "accounts.sqlite"
EVENTS = "events.duckdb"
SPOOL = "spool"
SNAPSHOT_TIMEOUT = 3600.0  # seconds the store's owner may take to copy a large store


class BackupError(Exception):
    """The backup or restore cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Paths:
    """Where this app keeps what a backup holds."""

    data_dir: str
    sqlite: str | None  # the accounts database's file, when it is SQLite
    events: str
    spool: str
    socket: str

    @classmethod
    def of(cls, app: Flask) -> Paths:
        config = app.config
        url = make_url(str(config["SQLALCHEMY_DATABASE_URI"]))
        sqlite = url.database if url.get_backend_name() == "sqlite" else None
        events_url = str(config["EVENTS_DATABASE_URL"])
        if not events_url.startswith("duckdb:///") or events_url.endswith(":memory:"):
            raise BackupError("only an embedded event store in a file can be backed up")
        data_dir = str(config["DATA_DIR"])
        return cls(
            data_dir=data_dir,
            sqlite=sqlite if sqlite and sqlite != ":memory:" else None,
            events=events_url.removeprefix("duckdb:///"),
            spool=str(config.get("SPOOL_DIR") or os.path.join(data_dir, "spool")),
            socket=socket_path(config),
        )


# -- in the store's owner -----------------------------------------------------------------


def snapshot(app: Flask, directory: str) -> dict[str, Any]:
    """Copy the event store and the spool into `directory`, at one moment: the writer is held
    between passes meanwhile (it stores the spool's growth afterwards). Run by the process
    that owns the store."""
    writer = app.extensions["ingest"].writer
    paths = Paths.of(app)
    with writer.paused():
        owned_store(app).copy_to(os.path.join(directory, EVENTS))  # type: ignore[attr-defined]
        segments, size = copy_spool(paths.spool, os.path.join(directory, SPOOL))
    return {"segments": segments, "spool_bytes": size}


def copy_spool(source: str, target: str) -> tuple[int, int]:
    """Copy each spool segment's complete lines, as a sealed segment (its writer is not
    coming back for it); return how many segments and bytes were copied."""
    os.makedirs(target, exist_ok=True)
    count = size = 0
    for segment in spool_files.segments(source):
        now = spool_files.as_it_is(segment)
        if now is None:
            continue  # stored and deleted since it was listed
        with open(now.path, "rb") as part:
            data = part.read()
        data = data[: data.rfind(b"\n") + 1]  # a line still being written is not copied
        if not data:
            continue
        name = os.path.basename(now.path)
        if name.endswith(spool_files.OPEN):
            name = name[: -len(spool_files.OPEN)] + spool_files.SEALED
        with open(os.path.join(target, name), "wb") as copy:
            copy.write(data)
        count += 1
        size += len(data)
    return count, size


# -- the command's side -------------------------------------------------------------------


def backup(app: Flask, archive: str, *, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Write the archive; return its manifest."""
    paths = Paths.of(app)
    target = Path(archive).resolve()
    if target.exists():
        raise BackupError(f"{archive} exists already: choose a new name")
    with tempfile.TemporaryDirectory(prefix=".flask-tracking-backup-", dir=target.parent) as tmp:
        os.chmod(tmp, 0o700)  # the store's owner may be another user: see docs/operations.md
        if paths.sqlite:
            say(f"accounts: SQLite {paths.sqlite}")
            copy_sqlite(paths.sqlite, os.path.join(tmp, ACCOUNTS))
        else:
            say("accounts: PostgreSQL — not in the archive: back it up with pg_dump")
        if owner_answers(paths.socket):
            say("event store and spool: through the running server")
            copied = ask_owner(paths.socket, tmp)
        else:
            say("event store and spool: no server runs, copied here")
            try:
                copied = snapshot(app, tmp)
            except Exception as error:  # DuckDB's lock: a process owns it without a socket
                raise BackupError(
                    f"could not open the event store ({error}); if `flask-tracking run` or "
                    "`writer` is running, stop it, or back up while `serve` runs"
                ) from error
        manifest = {
            "format": FORMAT,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "revision": schema_revision(),
            "accounts": "sqlite" if paths.sqlite else "postgresql",
            **copied,
        }
        Path(tmp, MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        partial = target.with_name(target.name + ".partial")
        with tarfile.open(partial, "w:gz" if target.suffix == ".gz" else "w") as tar:
            for name in sorted(os.listdir(tmp)):
                tar.add(os.path.join(tmp, name), arcname=name)
        with open(partial, "rb") as written:
            os.fsync(written.fileno())
        os.replace(partial, target)
    return manifest


def copy_sqlite(source: str, target: str) -> None:
    """SQLite's online backup: a consistent copy while the app reads and writes."""
    with (
        contextlib.closing(sqlite3.connect(source)) as live,
        contextlib.closing(sqlite3.connect(target)) as copy,
    ):
        live.backup(copy)


def owner_answers(path: str) -> bool:
    """Whether a server owns the store and answers on its socket."""
    if not os.path.exists(path):
        return False
    with contextlib.closing(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)) as sock:
        sock.settimeout(2)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def ask_owner(path: str, directory: str) -> dict[str, Any]:
    with contextlib.closing(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)) as sock:
        sock.settimeout(SNAPSHOT_TIMEOUT)
        sock.connect(path)
        send(sock, {"op": "backup", "directory": directory})
        answer = receive(sock)
    if answer is None or "error" in answer:
        reason = answer["error"] if answer else "no answer"
        raise BackupError(f"the server could not copy the event store: {reason}")
    copied: dict[str, Any] = answer["rows"][0]
    return copied


def schema_revision() -> str | None:
    row = db.session.execute(text("SELECT version_num FROM alembic_version")).first()
    db.session.remove()
    return str(row[0]) if row else None


def restore(app: Flask, archive: str, *, say: Callable[[str], None] = print) -> str:
    """Put an archive's data in place of this node's; what was there is moved aside (never
    deleted) into DATA_DIR/before-restore-<time>/, whose path is returned."""
    paths = Paths.of(app)
    with tarfile.open(archive) as tar:
        manifest = read_manifest(tar)
        check_revision(manifest.get("revision"))
        if manifest["accounts"] == "sqlite" and not paths.sqlite:
            raise BackupError(
                "the archive's accounts are a SQLite database, but DATABASE_URL is PostgreSQL: "
                f"restore with DATABASE_URL unset, or load {ACCOUNTS} yourself"
            )
        with stopped(paths):
            aside = os.path.join(
                paths.data_dir, "before-restore-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            )
            os.makedirs(aside)
            with tempfile.TemporaryDirectory(dir=paths.data_dir) as tmp:
                tar.extractall(tmp, filter="data")
                put = [(os.path.join(tmp, EVENTS), paths.events)]
                put.append((os.path.join(tmp, SPOOL), paths.spool))
                if manifest["accounts"] == "sqlite" and paths.sqlite:
                    put.append((os.path.join(tmp, ACCOUNTS), paths.sqlite))
                for source, place in put:
                    if os.path.exists(place):
                        shutil.move(place, os.path.join(aside, os.path.basename(place)))
                    for extra in (place + ".wal", place + "-wal", place + "-shm"):
                        if os.path.exists(extra):
                            shutil.move(extra, os.path.join(aside, os.path.basename(extra)))
                    os.makedirs(os.path.dirname(os.path.abspath(place)), exist_ok=True)
                    shutil.move(source, place)
    if manifest["accounts"] == "postgresql":
        say("accounts: PostgreSQL — restore them with pg_restore/psql from your pg_dump")
    say(
        f"restored the backup of {manifest['created_at']}: {manifest['segments']} spool "
        f"segment(s) wait for the writer; what was here is in {aside}"
    )
    return aside


def read_manifest(tar: tarfile.TarFile) -> dict[str, Any]:
    try:
        member = tar.extractfile(MANIFEST)
    except KeyError:
        member = None
    if member is None:
        raise BackupError("not a Flask-Tracking backup: it has no manifest.json")
    manifest: dict[str, Any] = json.loads(member.read())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')!r} is not {FORMAT}")
    names = set(tar.getnames())
    if EVENTS not in names or (manifest["accounts"] == "sqlite" and ACCOUNTS not in names):
        raise BackupError("the backup is incomplete: a file the manifest lists is missing")
    return manifest


def check_revision(revision: str | None) -> None:
    """Refuse a backup made by a newer version (its schema is unknown here)."""
    scripts = ScriptDirectory(MIGRATIONS_DIRECTORY)
    known = {script.revision for script in scripts.walk_revisions()}
    if revision is not None and revision not in known:
        raise BackupError(
            f"the backup's schema ({revision}) is newer than this version knows: "
            "upgrade Flask-Tracking first"
        )


@contextlib.contextmanager
def stopped(paths: Paths) -> Iterator[None]:
    """Hold the spool's writer lock for the restore; refuse while a server runs."""
    if owner_answers(paths.socket):
        raise BackupError("a server is running on this data: stop it before restoring")
    os.makedirs(paths.spool, exist_ok=True)
    lock_path = os.path.join(paths.spool, "writer.lock")
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(
                "a writer is running on this spool: stop the server before restoring"
            ) from None
        yield
