"""Moving the first version's events (the SQL database's `visits`) into the event store.

`flask-tracking events migrate` runs it on its own; `flask-tracking db upgrade` runs it before
the migration that drops the old tables, so an upgrade never loses an event. Per site, the
rows are read in chunks, staged in the store, then moved into `recent` in one transaction and
recorded under a key, so a run that stops half-way starts that site over, and a second run
moves nothing twice. The store then derives sessions (the same 30-minute rule the old writer
applied), markers and rollups as for new events. Drop counts and spool positions come along.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, MetaData, Table, func, inspect, select

from flask_tracking.events.zones import DayCache

CHUNK = 50_000
PAGEVIEW_NAMES = frozenset({"pageview", "PageLoad"})
OLD_TABLES = ("visits", "sessions", "dropped_events", "spool_checkpoints")


@dataclass(frozen=True)
class MigrationResult:
    """What a run moved."""

    sites: int
    events: int
    skipped: int


def has_old_events(connection: Connection) -> bool:
    """Tell whether the SQL database still has the old `visits` table."""
    return inspect(connection).has_table("visits")


def migrate(
    connection: Connection,
    store: Any,
    site_ids: list[int] | None = None,
    progress: Callable[[str], None] = lambda _line: None,
) -> MigrationResult:
    """Move the old tables' events (of the given sites, or all) into the store; verify them."""
    if not has_old_events(connection):
        progress("No old events to move: the database has no `visits` table.")
        return MigrationResult(0, 0, 0)
    metadata = MetaData()
    visits = Table("visits", metadata, autoload_with=connection)
    sites = Table("sites", metadata, autoload_with=connection)
    zones = dict(connection.execute(select(sites.c.id, sites.c.timezone)).all())
    counts: dict[int, int] = dict(
        connection.execute(select(visits.c.site_id, func.count()).group_by(visits.c.site_id)).all()
    )
    wanted = sorted(counts) if site_ids is None else [s for s in site_ids if s in counts]
    moved = skipped = done = 0
    days = DayCache()
    for site_id in wanted:
        key = f"visits:site:{site_id}"
        if store.loaded(key):
            skipped += 1
            continue
        store.discard(key)
        total, zone = int(counts[site_id]), str(zones.get(site_id) or "UTC")
        if store.zones().get(site_id) != zone:
            # The zone the rows are marked in, recorded before they arrive (nothing to re-mark
            # yet), as the writer's first refresh of a new site does: else that refresh would
            # find the site unrecorded and re-mark every row moved.
            from flask_tracking.reports import rollups  # reports import the events package

            store.rezone(site_id, zone, rollups.build)
        staged = 0
        for chunk in _chunks(connection, visits, site_id):
            store.stage(key, _columns(chunk, zone, days))
            staged += len(chunk)
            progress(_bar(site_id, staged, total))
        count = store.commit_load(key)
        if count != total:
            raise RuntimeError(f"site {site_id}: moved {count} events of {total}")
        moved += count
        done += 1
    _move_drops(connection, store)
    _move_checkpoints(connection, store)
    return MigrationResult(done, moved, skipped)


def _chunks(connection: Connection, visits: Table, site_id: int) -> Iterator[list[Any]]:
    """Yield the site's rows in chunks, in id order (by keyset)."""
    last = 0
    while True:
        rows = connection.execute(
            select(visits)
            .where(visits.c.site_id == site_id, visits.c.id > last)
            .order_by(visits.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        yield list(rows)
        last = int(rows[-1].id)


def _columns(rows: list[Any], zone: str, days: DayCache) -> dict[str, list[Any]]:
    """Turn old rows into `recent` columns (dimension values as text)."""
    from flask_tracking.ingest.enrich import truncate_ip

    out: dict[str, list[Any]] = {}

    def put(name: str, value: Any) -> None:
        out.setdefault(name, []).append(value)

    for row in rows:
        moment = row.date if row.date.tzinfo else row.date.replace(tzinfo=UTC)
        ts = int(moment.timestamp() * 1000)
        visitor = row.visitor_id
        if visitor is None:  # a first-version row, from before visitors were hashed
            parts = (row.ip_address, row.browser, row.os, row.device, ts // 86_400_000)
            digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
            visitor = int.from_bytes(digest, "big", signed=True)
        put("site_id", row.site_id)
        put("ts", ts)
        put("eid", int(row.id))  # the old ids keep their order; new events come after them
        put("visitor", int(visitor))
        put("day", days.day(zone, ts))
        put("pv", row.event in PAGEVIEW_NAMES)
        put("name", row.event)
        put("page", row.pathname)
        put("url", row.url)
        put("ref", row.referrer)
        put("width", row.screen_width or 0)
        put("props", json.dumps(row.props, separators=(",", ":")) if row.props else "")
        put("ip", truncate_ip(row.ip_address) if row.ip_address else None)
        put("source", row.referrer_source)
        for name in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"):
            put(name, getattr(row, name))
        put("country", row.country_code)
        put("country_name", row.country_name)
        put("region", row.region)
        put("city", row.city)
        put("postal", row.postal_code)
        put("browser", row.browser)
        put("browser_version", row.browser_version)
        put("os", row.os)
        put("os_version", row.os_version)
        put("device", row.device)
        put("screen", row.screen_size)
        put("hostname", row.hostname)
        coordinates = None
        if row.latitude is not None and row.longitude is not None:
            coordinates = f"{row.latitude:.4f},{row.longitude:.4f}"
        put("coordinates", coordinates)
    return out


def _move_drops(connection: Connection, store: Any) -> None:
    if not inspect(connection).has_table("dropped_events"):
        return
    table = Table("dropped_events", MetaData(), autoload_with=connection)
    drops: dict[tuple[int, int, str], int] = {}
    for site_id, day, reason, count in connection.execute(
        select(table.c.site_id, table.c.day, table.c.reason, table.c.count)
    ):
        number = (_as_date(day) - datetime(1970, 1, 1).date()).days
        drops[(int(site_id), number, str(reason))] = int(count)
    store.add_drops("dropped_events", drops)


def _move_checkpoints(connection: Connection, store: Any) -> None:
    if not inspect(connection).has_table("spool_checkpoints"):
        return
    table = Table("spool_checkpoints", MetaData(), autoload_with=connection)
    rows = connection.execute(select(table.c.segment, table.c.offset)).all()
    store.add_checkpoints({str(segment): int(offset) for segment, offset in rows})


def _as_date(value: Any) -> Any:
    return value if hasattr(value, "year") else datetime.fromisoformat(str(value)).date()


def _bar(site_id: int, done: int, total: int, width: int = 30) -> str:
    filled = width * done // max(total, 1)
    return f"site {site_id}: [{'#' * filled}{'.' * (width - filled)}] {done}/{total} events"
