"""Faults with real processes: after each, every acknowledged event is stored exactly once.

A real `flask-tracking serve` (Granian workers + writer) on loopback, a load generator that
remembers exactly which events were acknowledged, and the database read directly.
"""

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

import pytest
import sqlalchemy
import sqlalchemy.pool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


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
            "FLASK_TRACKING_GEOIP_PROVIDER": "none",
            "FLASK_TRACKING_INGEST_FLUSH_INTERVAL": "0.2",
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

    def stored_paths(self) -> list[str]:
        return [
            str(row[0])
            for row in self.sql("SELECT pathname FROM visits WHERE pathname LIKE '/load/%'")
        ]


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
            if response.status == 202:
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


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A prepared (not yet started) server; killed, whatever happens, at the end."""
    instance = Server(tmp_path)
    instance.prepare()
    try:
        yield instance
    finally:
        instance.kill_everything()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[object]:
    """Build a server with particular settings."""
    made: list[Server] = []

    def factory(**settings: str) -> Server:
        made.append(Server(tmp_path, **settings))
        made[-1].prepare()
        return made[-1]

    yield factory
    for instance in made:
        instance.kill_everything()


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
    leftovers = [name for name in os.listdir(server.root / "spool") if name != "writer.lock"]
    assert leftovers == [], "the spool should be empty once everything is stored"


def test_kill_9_of_a_worker_under_load(server: Server) -> None:
    server.start()
    with Load(server.port) as load:
        time.sleep(1.0)
        [victim, *_] = server.workers()
        os.kill(victim, signal.SIGKILL)
        time.sleep(1.5)  # Granian respawns the worker; the load goes on
    assert victim not in server.workers()
    server.stop()
    assert_exactly_once(server, load)


def test_kill_9_of_the_writer_then_a_restart(server: Server) -> None:
    server.start()
    assert server.process is not None
    [granian] = children(server.process.pid)
    with Load(server.port) as load:
        time.sleep(0.8)
        os.kill(server.process.pid, signal.SIGKILL)  # the supervisor, which runs the writer
        time.sleep(0.3)
    server.process.wait(10)
    # Granian is told its parent died (PR_SET_PDEATHSIG) and stops; what it accepted is spooled.
    deadline = time.monotonic() + 30
    while os.path.exists(f"/proc/{granian}"):
        assert time.monotonic() < deadline, "granian outlived its supervisor"
        time.sleep(0.1)
    assert len(os.listdir(server.root / "spool")) > 1, "events should be waiting in the spool"
    server.start()  # a new writer finds the spool and its checkpoints
    server.stop()
    assert_exactly_once(server, load)


def test_sigterm_with_events_pending(make_server: Any) -> None:
    server: Server = make_server(INGEST_FLUSH_INTERVAL="3600")  # the writer would wait an hour
    server.start()
    time.sleep(0.5)  # let the writer make its first (empty) pass
    load = Load(server.port)
    load.send(300)
    assert server.stored_paths() == []  # nothing written yet: all of it is pending
    server.stop()
    assert_exactly_once(server, load)


def test_a_database_locked_for_several_seconds(server: Server) -> None:
    server.start()
    locker = sqlite3.connect(server.database, timeout=30, isolation_level=None)
    with Load(server.port) as load:
        time.sleep(0.5)
        locker.execute("BEGIN EXCLUSIVE")  # longer than the writer's 5 s busy timeout
        locked_at = len(load.acknowledged)
        time.sleep(6)
        acknowledged_while_locked = len(load.acknowledged) - locked_at
        locker.execute("COMMIT")
        time.sleep(1)
    locker.close()
    assert acknowledged_while_locked > 100, "collection must not wait on the database"
    server.stop()
    assert_exactly_once(server, load)


def test_a_poison_row_is_set_aside_and_the_rest_stored(make_server: Any) -> None:
    server: Server = make_server(INGEST_FLUSH_INTERVAL="3600", INGEST_SITE_CACHE_SECONDS="3600")
    server.start()
    good, poisoned = Load(server.port, site=1), Load(server.port, site=2)
    threads = [
        threading.Thread(target=good.send, args=(100,)),
        threading.Thread(target=poisoned.send, args=(20,)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Site 2 disappears after its events were accepted but before they were written.
    server.sql("PRAGMA foreign_keys=ON")
    with sqlite3.connect(server.database, timeout=30) as connection:
        connection.execute("DELETE FROM sites WHERE id = 2")
    server.stop()
    assert_exactly_once(server, good)
    rejected = server.sql("SELECT payload, error FROM rejected_events")
    assert len(rejected) == len(poisoned.acknowledged) == 20
    assert all("FOREIGN KEY" in str(error) for _, error in rejected)


class TCPProxy:
    """A loopback TCP proxy to a database that the test can cut, like a server going away."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def cut(self) -> None:
        """Refuse new connections and break every open one."""
        assert self._listener is not None
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL of the PostgreSQL leg, dropped afterwards."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip(
            "PostgreSQL outage: runs in the PostgreSQL leg (TEST_DATABASE_URL, see .ci/run)"
        )
    name = "fault_" + secrets.token_hex(4)
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


def test_postgresql_stopped_for_several_seconds(tmp_path: Path, postgresql_url: str) -> None:
    target = sqlalchemy.engine.make_url(postgresql_url)
    proxy = TCPProxy(target.port or 5432)
    through_proxy = target.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
    server = Server(tmp_path, database_url=through_proxy)
    try:
        server.prepare()
        server.start()
        with Load(server.port) as load:
            time.sleep(0.5)
            proxy.cut()  # from the app's side, PostgreSQL is gone
            cut_at = len(load.acknowledged)
            time.sleep(5)
            acknowledged_while_down = len(load.acknowledged) - cut_at
            proxy.restore()
            time.sleep(1)
        assert acknowledged_while_down > 100, "collection must not wait on the database"
        server.stop()
        assert_exactly_once(server, load)
    finally:
        server.kill_everything()
        proxy.cut()
