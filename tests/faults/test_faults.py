"""Faults with real processes: after each, every acknowledged event is stored exactly once.

A real `flask-tracking serve` (Granian workers + writer) on loopback, a load generator that
remembers exactly which events were acknowledged, and the database read directly.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
import sqlalchemy.pool

from tests.servers import (
    Load,
    Server,
    assert_exactly_once,
    children,
    postgresql_database,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]


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
    assert all("site 2 no longer exists" in str(error) for _, error in rejected)


class TCPProxy:
    """A loopback TCP proxy to a database that the test can cut, like a server going away."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = self._stable_port()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    @staticmethod
    def _stable_port() -> int:
        """A free port below the kernel's ephemeral range: while the proxy is cut, an
        outgoing connection of any process could otherwise be given its port, and the
        proxy could not listen there again."""
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
            first_ephemeral = int(ranges.read().split()[0])
        for port in random.sample(range(10_000, first_ephemeral), 200):
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        raise AssertionError("no free port below the ephemeral range")

    def restore(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def cut(self) -> None:
        """Refuse new connections and break every open one."""
        assert self._listener is not None
        # shutdown() wakes the thread blocked in accept(); close() alone would leave the
        # socket listening until then, and the port could not be listened on again.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
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
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip(
            "PostgreSQL outage: runs in the PostgreSQL leg (TEST_DATABASE_URL, see .ci/run)"
        )
    with postgresql_database() as url:
        yield url


def test_postgresql_stopped_for_several_seconds(tmp_path: Path, postgresql_url: str) -> None:
    target = sqlalchemy.engine.make_url(postgresql_url)
    proxy = TCPProxy(target.port or 5432)
    through_proxy = target.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
    server = Server(tmp_path, database_url=through_proxy)
    try:
        server.prepare()
        server.start()
        assert server.wait_for_readiness(True)["status"] == "ready"
        with Load(server.port) as load:
            time.sleep(0.5)
            proxy.cut()  # from the app's side, PostgreSQL is gone
            cut_at = len(load.acknowledged)
            down = server.wait_for_readiness(False, within=5)
            time.sleep(5)
            acknowledged_while_down = len(load.acknowledged) - cut_at
            proxy.restore()
            back = server.wait_for_readiness(True, within=15)
            time.sleep(1)
        assert acknowledged_while_down > 100, "collection must not wait on the database"
        assert down["checks"]["database"]["ok"] is False
        assert down["checks"]["spool"]["ok"] is True  # accepting all along, into the spool
        assert back["checks"]["database"] == {"ok": True, "detail": "reachable"}
        server.stop()
        assert_exactly_once(server, load)
    finally:
        server.kill_everything()
        proxy.cut()
