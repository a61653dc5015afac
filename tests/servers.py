"""Real `flask-tracking serve` process trees on loopback, and a load generator that remembers
exactly which events were acknowledged: shared by the fault and concurrency tests."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy
import sqlalchemy.pool

from flask_tracking.events.remote import RemoteStore
from flask_tracking.events.schema import DICTIONARY_IDS

BIN = Path(sys.executable).parent
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One serve process tree, its database (SQLite unless a URL is given) and spool."""

    def __init__(self, root: Path, database_url: str | None = None, **settings: str) -> None:
        self.root = root
        self.database = root / "tracking.db"
        self.database_url = database_url or f"sqlite:///{self.database}"
        self.port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FLASK_TRACKING_")},
            "FLASK_TRACKING_CONFIG": "production",
            "SECRET_KEY": secrets.token_hex(32),
            "FLASK_TRACKING_SQLALCHEMY_DATABASE_URI": self.database_url,
            "FLASK_TRACKING_SPOOL_DIR": str(root / "spool"),
            "FLASK_TRACKING_DATA_DIR": str(root),
            "FLASK_TRACKING_GEOIP_PROVIDER": "none",
            "FLASK_TRACKING_INGEST_FLUSH_INTERVAL": "0.2",
            # The load generator is one address sending thousands of events a second.
            "FLASK_TRACKING_COLLECTOR_IP_RATE": "0",
            "FLASK_TRACKING_COLLECTOR_SITE_RATE": "0",
            **{f"FLASK_TRACKING_{k}": v for k, v in settings.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / "serve.log"

    def command(self, *args: str, timeout: float = 60) -> str:
        done = subprocess.run(
            [str(BIN / "flask-tracking"), *args],
            env=self.env,
            timeout=timeout,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def prepare(self) -> None:
        """Migrate, and create the demo user with site 1 (and one demo visit)."""
        self.command("db", "upgrade")
        self.command("demo", "--visits", "1")
        self.sql(
            "INSERT INTO sites (owner_id, base_url, name, excluded_ips, excluded_paths, "
            "created_at) VALUES (1, 'https://two.example', 'two', '', '', "
            "'2026-01-01 00:00:00')"
        )

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(BIN / "flask-tracking"),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    "2",
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                try:
                    connection.request("GET", "/")
                    if connection.getresponse().status == 200:
                        return
                finally:
                    connection.close()
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"server did not start:\n{self.log.read_text()[-3000:]}")

    def get_json(self, path: str) -> tuple[int, dict[str, Any]]:
        """GET a JSON endpoint of the server: its status and body."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    def wait_for_readiness(self, ready: bool, within: float = 15) -> dict[str, Any]:
        """Poll /readyz until it says ready (200) or not (503); return that body."""
        deadline = time.monotonic() + within
        while True:
            status, body = self.get_json("/readyz")
            if status == (200 if ready else 503):
                return body
            assert time.monotonic() < deadline, f"/readyz still answers {status}: {body}"
            time.sleep(0.2)

    def workers(self) -> list[int]:
        """PIDs of the Granian worker processes (grandchildren of the supervisor)."""
        assert self.process is not None
        granian = children(self.process.pid)
        return [pid for parent in granian for pid in children(parent)]

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM the supervisor and wait: Granian stops, then the writer drains."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout)

    def kill_everything(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def sql(self, statement: str) -> list[tuple[object, ...]]:
        if not self.database_url.startswith("sqlite"):
            url = self.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
            engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
            with engine.begin() as connection:
                result = connection.execute(sqlalchemy.text(statement))
                return [tuple(row) for row in result] if result.returns_rows else []
        with sqlite3.connect(self.database, timeout=30) as connection:
            return connection.execute(statement).fetchall()

    def store(self, statement: str) -> list[tuple[object, ...]]:
        """Query the event store: through the running server, or its file once it stopped."""
        running = self.process is not None and self.process.poll() is None
        if running:
            remote = RemoteStore(str(self.root / "events.sock"))
            try:
                rows = remote._ask({"op": "fetch", "sql": statement, "params": []})
            finally:
                remote.close()
            return [tuple(row) for row in rows]
        connection = duckdb.connect(str(self.root / "events.duckdb"), read_only=True)
        try:
            return connection.execute(statement).fetchall()
        finally:
            connection.close()

    def stored_paths(self) -> list[str]:
        """The pages of the stored load events (every stored event: open days and closed)."""
        page = DICTIONARY_IDS["page"]
        rows = self.store(
            f"SELECT d.value FROM (SELECT site_id, page FROM recent UNION ALL "  # noqa: S608
            f"SELECT site_id, page FROM events) e JOIN dict d ON d.dictionary = {page} "
            "AND d.code = e.page WHERE d.value LIKE '/load/%'"
        )
        return [str(row[0]) for row in rows]


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


class Load:
    """Threads posting distinct events; remembers exactly which ones were acknowledged."""

    def __init__(self, port: int, site: int = 1, threads: int = 4, tag: str = "") -> None:
        self.port, self.site, self.tag = port, site, tag or secrets.token_hex(3)
        self.acknowledged: list[str] = []
        # Sent, but the answer never came back: may or may not have been stored (a client
        # would retry these); never acknowledged, so never counted as lost.
        self.unanswered: list[str] = []
        self.failures = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._counter = iter(range(10**9))
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def send(self, count: int) -> None:
        """Send `count` events from this thread."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        for _ in range(count):
            connection = self._post(connection)
        connection.close()

    def _run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self._stop.is_set():
            connection = self._post(connection)
        connection.close()

    def _post(self, connection: http.client.HTTPConnection) -> http.client.HTTPConnection:
        path = f"/load/{self.tag}/{next(self._counter)}"
        body = json.dumps({"site": self.site, "url": "https://demo.flask-tracking.example" + path})
        try:
            connection.request(
                "POST",
                "/api/event",
                body,
                {"Content-Type": "application/json", "User-Agent": FIREFOX},
            )
            response = connection.getresponse()
            response.read()
            if response.status == 202 and not response.getheader("X-Tracking-Dropped"):
                with self._lock:
                    self.acknowledged.append(path)
            else:
                self.failures += 1
            return connection
        except OSError:
            # The worker died under us: this event was never acknowledged.
            self.failures += 1
            with self._lock:
                self.unanswered.append(path)
            connection.close()
            time.sleep(0.01)
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)


def assert_exactly_once(server: Server, load: Load) -> None:
    """Every acknowledged event stored once; nothing stored that was never sent."""
    stored = Counter(server.stored_paths())
    acknowledged = load.acknowledged
    assert acknowledged, "the load generator got nothing acknowledged"
    missing = set(acknowledged) - set(stored)
    assert not missing, f"{len(missing)} acknowledged events were lost, e.g. {sorted(missing)[:3]}"
    duplicated = [path for path, times in stored.items() if times > 1]
    assert not duplicated, f"stored more than once: {duplicated[:3]}"
    unexpected = set(stored) - set(acknowledged) - set(load.unanswered)
    assert not unexpected, f"stored but never sent: {sorted(unexpected)[:3]}"
    bookkeeping = {"writer.lock", "writer.heartbeat"}
    leftovers = [name for name in os.listdir(server.root / "spool") if name not in bookkeeping]
    assert leftovers == [], "the spool should be empty once everything is stored"


@contextlib.contextmanager
def postgresql_database() -> Iterator[str]:
    """A fresh database on the PostgreSQL of TEST_DATABASE_URL, dropped afterwards."""
    base = os.environ["TEST_DATABASE_URL"]
    name = "serve_" + secrets.token_hex(4)
    admin = sqlalchemy.create_engine(
        base.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
        poolclass=sqlalchemy.pool.NullPool,
    )
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield str(sqlalchemy.engine.make_url(base).set(database=name).render_as_string(False))
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@contextlib.contextmanager
def leg_database() -> Iterator[str | None]:
    """The database of this leg of the suite: a fresh PostgreSQL one, or None for SQLite."""
    if os.environ.get("TEST_DATABASE_URL"):
        with postgresql_database() as url:
            yield url
    else:
        yield None
