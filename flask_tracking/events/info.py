"""`flask-tracking events info`: where the events are, how many, and what they cost on disk."""

from __future__ import annotations

import os
from collections.abc import Iterator

from flask import current_app
from sqlalchemy import func, select

from flask_tracking.events import current_store
from flask_tracking.events.embedded import on_disk
from flask_tracking.events.tables import tables


def describe() -> Iterator[str]:
    """Yield lines describing the store."""
    store = current_store()
    url = str(current_app.config["EVENTS_DATABASE_URL"])
    yield f"engine: {store.engine} ({url.rsplit('@', maxsplit=1)[-1]})"
    t = tables("duckdb" if store.engine == "duckdb" else "clickhouse")
    counts = {}
    for name in ("recent", "events", "sessions", "rollups"):
        table = getattr(t, name)
        counts[name] = int(store.fetch(select(func.count()).select_from(table))[0][0] or 0)
        yield f"{name}: {counts[name]:,} rows"
    events = counts["recent"] + counts["events"]
    if url.startswith("duckdb:///") and events:
        path = url.removeprefix("duckdb:///")
        if os.path.isfile(path):
            size = os.path.getsize(path)
            yield f"file: {path}, {size / 1e6:,.1f} MB, {size / events:.1f} bytes per event"
            wal = on_disk(path) - size
            if wal:
                yield f"write-ahead log: {wal / 1e6:,.1f} MB (folded in at the next checkpoint)"
