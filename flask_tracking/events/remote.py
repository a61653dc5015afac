"""Reaching the embedded store from other processes, through the process that owns it.

The owner (the `serve` supervisor, which also runs the writer) listens on a Unix socket in the
data directory; Granian's worker processes send it their queries. A request and its answer
are one JSON document each (orjson), prefixed by its length:

    {"op": "fetch", "sql": "...", "params": [...]}  ->  {"rows": [[...], ...]}
    {"op": "delete_site", "site_id": 3}               ->  {"rows": []}

Queries are built and compiled in the worker (SQLAlchemy, the same code as in the owner); the
owner runs them, each connection on a thread and a DuckDB cursor of its own, over one
database instance — so reports see what the writer committed the moment it did. The socket
file is made 0600: only the app's own user can reach it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

from flask_tracking.events.encoding import Codes
from flask_tracking.events.sql import DuckDBDialect, compile_for

logger = logging.getLogger("flask_tracking.events")
HEADER = struct.Struct(">I")
MAX_MESSAGE = 256 * 1024 * 1024
TIMEOUT = 120.0


class StoreUnavailable(Exception):
    """The process that owns the event store cannot be reached (or failed the request)."""


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot send {type(value).__name__}")


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    """Send one length-prefixed JSON document."""
    data = orjson.dumps(message, default=_default)
    sock.sendall(HEADER.pack(len(data)) + data)


def receive(sock: socket.socket) -> dict[str, Any] | None:
    """Receive one document, or None when the other side has closed the connection."""
    header = _exactly(sock, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > MAX_MESSAGE:
        raise StoreUnavailable(f"a message of {size} bytes is over the limit")
    data = _exactly(sock, size)
    if data is None:
        raise StoreUnavailable("the connection closed in the middle of a message")
    found: dict[str, Any] = orjson.loads(data)
    return found


def _exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class StoreServer:
    """Serves an owned store's queries on a Unix socket, a thread per connection."""

    def __init__(
        self, store: Any, path: str, backup: Callable[[str], dict[str, Any]] | None = None
    ) -> None:
        self.store = store
        self.path = path
        self.backup = backup  # copies the store and spool into a directory (ops/backup.py)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner.serve_connection(self.request)

        self.server = socketserver.ThreadingUnixStreamServer(path, Handler)
        self.server.daemon_threads = True
        os.chmod(path, 0o600)
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="flask-tracking-store", daemon=True
        )

    def start(self) -> StoreServer:
        """Start answering."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and remove the socket."""
        self.server.shutdown()
        self.server.server_close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def serve_connection(self, sock: socket.socket) -> None:
        """Answer requests until the client goes away."""
        while True:
            try:
                request = receive(sock)
            except (OSError, StoreUnavailable, orjson.JSONDecodeError):
                return
            if request is None:
                return
            try:
                answer: dict[str, Any] = {"rows": self.answer(request)}
            except Exception as error:  # the client raises it; the server goes on
                logger.warning("store request failed: %s", error)
                answer = {"error": f"{type(error).__name__}: {error}"}
            try:
                send(sock, answer)
            except OSError:
                return

    def answer(self, request: dict[str, Any]) -> list[Any]:
        """Run one request on the owned store."""
        op = request.get("op")
        if op == "fetch":
            cursor = self.store.cursor()
            return [
                list(row) for row in cursor.execute(request["sql"], request["params"]).fetchall()
            ]
        if op == "delete_site":
            self.store.delete_site(int(request["site_id"]))
            return []
        if op == "zones":
            return [[site, zone] for site, zone in self.store.zones().items()]
        if op == "backup" and self.backup is not None:
            return [self.backup(str(request["directory"]))]
        raise ValueError(f"unknown operation {op!r}")


class RemoteStore:
    """The embedded store as seen from a worker process: queries go to the owner."""

    engine = "duckdb"

    def __init__(self, path: str) -> None:
        self.path = path
        self.dialect = DuckDBDialect(paramstyle="qmark")
        self.encoding = Codes()
        self._local = threading.local()

    def _socket(self) -> socket.socket:
        sock: socket.socket | None = getattr(self._local, "socket", None)
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(TIMEOUT)
            try:
                sock.connect(self.path)
            except OSError as error:
                sock.close()
                raise StoreUnavailable(f"the event store at {self.path} is not running") from error
            self._local.socket = sock
        return sock

    def _ask(self, request: dict[str, Any]) -> list[Any]:
        for attempt in (1, 2):  # a connection the owner closed (a restart): reconnect once
            sock = self._socket()
            try:
                send(sock, request)
                answer = receive(sock)
            except OSError as error:
                self._drop()
                if attempt == 2:
                    raise StoreUnavailable(f"the event store did not answer: {error}") from error
                continue
            if answer is None:
                self._drop()
                if attempt == 2:
                    raise StoreUnavailable("the event store closed the connection")
                continue
            if "error" in answer:
                raise StoreUnavailable(str(answer["error"]))
            rows: list[Any] = answer["rows"]
            return rows
        raise StoreUnavailable("unreachable")

    def _drop(self) -> None:
        sock = getattr(self._local, "socket", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        self._local.socket = None

    def fetch(self, statement: Any) -> list[tuple[Any, ...]]:
        """Run a SELECT in the owner and return its rows."""
        sql, params = compile_for(statement, self.dialect)
        return [tuple(row) for row in self._ask({"op": "fetch", "sql": sql, "params": params})]

    def delete_site(self, site_id: int) -> None:
        """Have the owner delete a site's events."""
        self._ask({"op": "delete_site", "site_id": site_id})

    def zones(self) -> dict[int, str]:
        """Return the zone each site's stored rows are marked in."""
        return {int(site): str(zone) for site, zone in self._ask({"op": "zones"})}

    def close(self) -> None:
        """Close this thread's connection."""
        self._drop()
