"""The importer framework: rows, refusals, the dry-run summary, and loading as one unit."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from flask_tracking.events import schema
from flask_tracking.events.store import EventStore
from flask_tracking.events.zones import DayCache
from flask_tracking.ingest.bots import is_bot
from flask_tracking.ingest.enrich import EnrichContext, enrich
from flask_tracking.ingest.records import EventRecord

CHUNK = 20_000
RECENT_NAMES = tuple(column.name for column in schema.RECENT)


class Refused(ValueError):
    """A file that cannot be imported: the line (1-based, 0 for the whole file) and why."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}" if line else reason)
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Imported:
    """One event of the source, in our terms."""

    ts_ms: int
    url: str
    name: str = "pageview"
    referrer: str | None = None
    ip: str | None = None
    user_agent: str = ""
    width: int | None = None
    props: dict[str, Any] = field(default_factory=dict)
    # Who the visitor is when the source has no address (GoatCounter's session id): hashed
    # with a salt of the import's own, which is not kept.
    visitor_key: str = ""
    # What the source says itself, where it has no address or User-Agent to derive it from
    # (GoatCounter's location, GA4's geo and device): country code, region, city, browser,
    # operating system, device type (desktop, mobile, tablet).
    country: str | None = None
    region: str | None = None
    city: str | None = None
    browser: str | None = None
    os: str | None = None
    device: str | None = None


@dataclass
class Summary:
    """What an import would do (a dry run) or did."""

    rows: int = 0
    first: datetime | None = None
    last: datetime | None = None
    skipped: Counter[str] = field(default_factory=Counter)
    # Once loaded: the event ids the store gave the rows (first, last), inclusive.
    eids: tuple[int, int] | None = None

    def add(self, row: Imported) -> None:
        moment = datetime.fromtimestamp(row.ts_ms / 1000, UTC)
        self.rows += 1
        self.first = moment if self.first is None else min(self.first, moment)
        self.last = moment if self.last is None else max(self.last, moment)

    def lines(self) -> list[str]:
        said = [f"{self.rows:,} event(s) to import"]
        if self.first and self.last:
            said[0] += f", {self.first:%Y-%m-%d %H:%M} to {self.last:%Y-%m-%d %H:%M} UTC"
        said += [f"skipped {count:,}: {reason}" for reason, count in sorted(self.skipped.items())]
        return said


class Source(Protocol):
    """A source's reader: the file's lines (and the host of the site's pages) to rows."""

    def __call__(
        self, lines: Iterable[str], summary: Summary, host: str = ""
    ) -> Iterator[Imported]: ...


def read(source: Source, lines: Iterable[str]) -> tuple[list[Imported], Summary]:
    """Read the whole file (or Refused): the rows to import, and the summary."""
    summary = Summary()
    rows = []
    for row in source(lines, summary):
        if row.user_agent and is_bot(row.user_agent):
            summary.skipped["bots and crawlers (the collector drops them too)"] += 1
            continue
        rows.append(row)
        summary.add(row)
    return rows, summary


def run(
    store: EventStore,
    site_id: int,
    timezone: str,
    source: Source,
    lines: Iterable[str],
    *,
    key: str,
    dry_run: bool = False,
    progress: Callable[[int, int], None] = lambda _done, _total: None,
) -> Summary:
    """Import a file into a site, all or nothing (or only read it, with `dry_run`)."""
    rows, summary = read(source, lines)
    if dry_run or not rows:
        return summary
    if store.loaded(key):  # type: ignore[attr-defined]
        raise Refused(0, "this file was imported into this site already")
    store.discard(key)  # type: ignore[attr-defined]
    days = DayCache()
    salts: dict[int, bytes] = {}
    context_of: dict[int, EnrichContext] = {}
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        columns: dict[str, list[Any]] = {}
        for row in chunk:
            utc_day = row.ts_ms // 86_400_000
            if utc_day not in context_of:
                salts[utc_day] = os.urandom(16)
                context_of[utc_day] = EnrichContext(
                    salts[utc_day],
                    store_visitor_ip=False,
                    allowed_query=frozenset(),
                    local_day=lambda _site, ts: days.day(timezone, ts),
                )
            enriched = enrich(_record(site_id, row), context_of[utc_day])
            if row.visitor_key:
                digest = hashlib.blake2b(
                    row.visitor_key.encode(), key=salts[utc_day], digest_size=8
                ).digest()
                enriched["visitor"] = int.from_bytes(digest, "big", signed=True)
            if row.country:
                enriched["country"] = row.country
                enriched["region"] = row.region
                enriched["city"] = row.city
            for name in ("browser", "os", "device"):
                if getattr(row, name):
                    enriched[name] = getattr(row, name)
            enriched["eid"] = None
            for name in RECENT_NAMES:
                columns.setdefault(name, []).append(enriched.get(name))
        store.stage(key, columns)  # type: ignore[attr-defined]
        progress(min(start + CHUNK, len(rows)), len(rows))
    # The store numbers a load's rows after the site's last event, in one run (it is their
    # only writer meanwhile): remembering where they start is remembering which they are.
    before = store.last_eid(site_id)  # type: ignore[attr-defined]
    moved = store.commit_load(key)  # type: ignore[attr-defined]
    if moved != len(rows):
        raise RuntimeError(f"imported {moved} events of {len(rows)}")
    summary.eids = (before + 1, before + moved)
    return summary


def _record(site_id: int, row: Imported) -> EventRecord:
    return EventRecord(
        event_id="",
        site_id=site_id,
        timestamp_ms=row.ts_ms,
        name=row.name,
        url=row.url,
        referrer=row.referrer,
        width=row.width,
        props=row.props,
        ip=row.ip,
        user_agent=row.user_agent,
    )


def file_key(site_id: int, data: bytes) -> str:
    """The load key of a file imported into a site: the same file twice is the same key."""
    return f"import:site:{site_id}:{hashlib.sha256(data).hexdigest()}"
