"""The event store: where events are kept and read, behind one interface (store.py).

    EVENTS_DATABASE_URL = duckdb:///path/events.duckdb   (default: DATA_DIR/events.duckdb)

Accounts, sites and settings stay in the SQL database (DATABASE_URL). The embedded DuckDB file
is owned by one process; the others reach it through that process (remote.py), which `serve`
arranges with EVENTS_SOCKET.
"""

from __future__ import annotations

import os
import threading
from typing import Any, cast

from flask import Flask, current_app

from flask_tracking.events.store import Batch, EventStore, Store

__all__ = [
    "Batch",
    "EventStore",
    "Store",
    "close_store",
    "current_store",
    "init_app",
    "open_store",
    "owned_store",
    "socket_path",
    "store_of",
]

_LOCK = threading.Lock()


def init_app(app: Flask) -> None:
    """Resolve the store's URL; the store itself opens on first use (after forks)."""
    url = str(app.config.get("EVENTS_DATABASE_URL") or "")
    if not url:
        url = "duckdb:///" + os.path.join(app.config["DATA_DIR"], "events.duckdb")
    app.config["EVENTS_DATABASE_URL"] = url
    app.extensions["events"] = {"store": None, "pid": 0}


def socket_path(config: Any) -> str:
    """Where the store's owner answers the other processes (EVENTS_SOCKET, or DATA_DIR's)."""
    return str(config.get("EVENTS_SOCKET") or os.path.join(config["DATA_DIR"], "events.sock"))


def store_of(app: Flask) -> Store:
    """Return the app's store, opening it in this process the first time."""
    holder: dict[str, Any] = app.extensions["events"]
    if holder["store"] is None or holder["pid"] != os.getpid():
        with _LOCK:
            if holder["store"] is None or holder["pid"] != os.getpid():
                holder["store"] = open_store(app.config)
                holder["pid"] = os.getpid()
    store: Store = holder["store"]
    return store


def close_store(app: Flask) -> None:
    """Close the app's store if this process opened it (it opens again on next use)."""
    holder: dict[str, Any] = app.extensions["events"]
    with _LOCK:
        store, holder["store"] = holder["store"], None
    if store is not None:
        store.close()


def owned_store(app: Flask) -> EventStore:
    """Return the app's store for writing: this process must own it (the writer, the CLI)."""
    from flask_tracking.events.remote import RemoteStore

    store = store_of(app)
    if isinstance(store, RemoteStore):
        raise RuntimeError(
            "this process reaches the event store through EVENTS_SOCKET; only its owner writes"
        )
    return cast(EventStore, store)


def current_store() -> Store:
    """Return the current app's store."""
    return store_of(current_app._get_current_object())  # type: ignore[attr-defined]


def open_store(config: Any) -> Store:
    """Open the store an app's configuration names, as its owner or through the owner."""
    url = str(config["EVENTS_DATABASE_URL"])
    if url.startswith("duckdb:///"):
        socket_path = config.get("EVENTS_SOCKET")
        if socket_path:
            from flask_tracking.events.remote import RemoteStore

            return RemoteStore(str(socket_path))
        from flask_tracking.events.embedded import EmbeddedStore

        path = url.removeprefix("duckdb:///") or ":memory:"
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return EmbeddedStore(
            path,
            memory_limit=str(config.get("EVENTS_MEMORY_LIMIT") or ""),
            threads=int(config.get("EVENTS_THREADS") or 0),
            checkpoint=str(config.get("EVENTS_CHECKPOINT_THRESHOLD") or ""),
        )
    raise RuntimeError(
        f"EVENTS_DATABASE_URL must start with duckdb:/// (a file path), not {url[:40]!r}"
    )
