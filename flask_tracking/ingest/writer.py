"""The batch writer: spooled records into the event store, exactly once, whatever fails.

Each batch of spool lines becomes one append to the store: the enriched events, the drop
counts and the spool position they reach, all or nothing, so a replay after a crash finds
its position and stores nothing twice. Every ROLLUP_INTERVAL the writer also lets the store
derive sessions and markers for the open days, close the UTC days that ended, re-mark
the sites whose time zone changed, and roll up the sites' goals over the closed days.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from flask_tracking.database import reading, write_transaction
from flask_tracking.events import Batch, EventStore, owned_store
from flask_tracking.extensions import db
from flask_tracking.ingest import spool as spool_files
from flask_tracking.ingest.enrich import EnrichCaches, EnrichContext, enrich, truncate_ip
from flask_tracking.ingest.records import DropRecord, EventRecord, parse_line
from flask_tracking.ingest.salts import Salts
from flask_tracking.ingest.sitecache import SiteCache
from flask_tracking.ops.jobs import Schedule
from flask_tracking.reports import rollups
from flask_tracking.tracking.analytics import RejectedEvent

logger = logging.getLogger("flask_tracking.ingest")
# An "ip" field in a line that is not valid JSON (a truncated or corrupted spool record).
_IP_FIELD = re.compile(r'"ip"\s*:\s*"[^"]*"')
# Entries each enrichment cache (addresses, User-Agents, visitors) holds before starting over.
ENRICH_CACHE_SIZE = 100_000


@dataclass(frozen=True, slots=True)
class WriterSettings:
    """How the writer batches and retries."""

    directory: str
    batch_size: int = 5000
    interval: float = 0.5
    max_backoff: float = 5.0
    store_visitor_ip: bool = False
    allowed_query: frozenset[str] = frozenset()
    rollup_interval: float = 5.0
    node: str = ""
    nice: int = 0  # how much lower the writer thread's priority is than the workers'


class Writer:
    """Stores what the spool holds; one per spool directory at a time (see run())."""

    def __init__(self, app: Flask, settings: WriterSettings, sites: SiteCache) -> None:
        self.app = app
        self.settings = settings
        self.node = settings.node or socket.gethostname()
        self.sites = sites
        self.salts = Salts()
        self._offsets: dict[str, int] | None = None
        self._derived_at = float("-inf")
        self._caches = EnrichCaches(limit=ENRICH_CACHE_SIZE)
        self._contexts: dict[tuple[int, date], EnrichContext] = {}
        # Held for each pass over the spool: a backup taken in this process holds it (see
        # paused()) to see the store and the spool at one moment (ops/backup.py).
        self._pass_lock = threading.Lock()
        self._pausing = threading.Event()
        self.schedule = Schedule(self)  # the scheduled jobs this writer runs (ops/jobs.py)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the writer between two passes: nothing is stored, checkpointed or deleted from
        the spool meanwhile (the spool keeps growing). For a backup, in this process."""
        self._pausing.set()
        try:
            with self._pass_lock:
                yield
        finally:
            self._pausing.clear()

    @property
    def store(self) -> EventStore:
        """Return the app's event store (opened by this process: it writes)."""
        return owned_store(self.app)

    def drain(self, *, refresh: bool = False) -> int:
        """Store everything spooled so far; return how many events were stored.

        Then derive sessions, markers and rollups, when `refresh` or ROLLUP_INTERVAL has passed.
        """
        stored = 0
        with self.app.app_context(), reading():
            try:
                self.rotate_salts()
                # The sites as they are now: events of a site deleted meanwhile are set aside,
                # and local days follow the zones (one query a pass).
                self.sites.invalidate()
                while True:
                    while self._pausing.is_set():
                        time.sleep(0.01)  # a backup waits for this pass's end: let it in
                    with self._pass_lock:
                        behind, count = self._pass()
                    stored += count
                    if not behind:
                        # Every segment was read to its end: what was spooled before this pass
                        # is stored. Not looping for the lines that came meanwhile lets them
                        # gather into the next pass's batches: under a steady stream an
                        # immediate pass read a few hundred lines, and each batch's fixed cost
                        # (the transaction, the checkpoint row) then outweighed its events.
                        break
                    # A backlog: under a steady stream the loop may never run dry, and today's
                    # sessions and markers must still be refreshed every ROLLUP_INTERVAL.
                    self.derive()
            except BaseException:
                db.session.rollback()
                self._offsets = None  # re-read the committed checkpoints after any failure
                raise
            else:
                # Asked for (a test, a command): failures are the caller's to see.
                self.derive(force=refresh, quiet=not refresh)
                return stored
            finally:
                db.session.remove()

    def derive(self, *, force: bool = False, quiet: bool = True, now_ms: int | None = None) -> None:
        """Let the store re-mark sites whose zone changed, close finished days, refresh open
        ones; unless `quiet`, a failure is raised rather than logged."""
        now = time.monotonic()
        if not force and now - self._derived_at < self.settings.rollup_interval:
            return
        self._derived_at = now
        try:
            self._rezone_changed_sites()
            closed = self.store.derive(now_ms or int(time.time() * 1000), rollups.build)
        except Exception:  # stale reports for a while, but storing events must go on
            if not quiet:
                raise
            logger.exception("could not derive sessions and rollups; will try again")
            return
        metrics = self._metrics()
        if metrics is not None:
            metrics.rollups_refreshed.set(time.time())
        if closed:
            logger.info("closed %d UTC day(s) of events", closed)
        try:
            # Imported here: tracking's modules import the collector (ingest), which imports
            # this module; at module level the cycle breaks `import flask_tracking.users…`.
            from flask_tracking.tracking.goals import site_goals

            added = rollups.fill_goals(self.store, site_goals())
        except Exception:  # goals are read raw meanwhile: slower, never wrong
            if not quiet:
                raise
            logger.exception("could not roll up goals; will try again")
            return
        if added:
            logger.info("rolled up goals: %d row(s)", added)

    def _rezone_changed_sites(self) -> None:
        """Re-mark the stored rows of sites whose time zone is not the one they were marked in."""
        stored = self.store.zones()
        for site_id, zone in self.sites.zones().items():
            if stored.get(site_id) != zone:
                self.sites.invalidate()
                self.store.rezone(site_id, zone, rollups.build)

    def _pass(self) -> tuple[bool, int]:
        """Store a batch of each segment; return whether one was left unread (a backlog) and
        how many events were stored."""
        offsets = self._load_offsets()
        behind, stored = False, 0
        for segment in spool_files.segments(self.settings.directory):
            offset = offsets.get(segment.name, 0)
            finished = segment.finished  # checked before reading, so no line can be missed
            lines, end = spool_files.read_segment(segment, offset, self.settings.batch_size)
            if lines:
                stored += self._store(segment.name, lines, end)
                offsets[segment.name] = end
                behind = behind or len(lines) >= self.settings.batch_size
            if finished:
                # Its process may have sealed it (renamed it) since the listing and exited:
                # what is deleted, and whether it was read to the end, is the file as it is
                # now — deleting the name it was listed under would leave the sealed file
                # behind without its checkpoint, to be stored all over again.
                now = spool_files.as_it_is(segment)
                if now is None or end >= now.size:
                    self._forget(now or segment)  # stored to the end: its addresses go now
        return behind, stored

    def _store(self, segment: str, lines: list[bytes], end: int) -> int:
        """Store one batch: its events, drop counts and spool position, all or nothing."""
        started = time.perf_counter()
        rows, drops, usage, rejected = self._prepare(lines)
        if rejected:
            # Kept for an operator before the batch is stored: a crash in between may keep a
            # line twice here, never lose it.
            with write_transaction():
                for payload, error in rejected:
                    db.session.add(RejectedEvent(payload=payload, error=error[:2000]))
                    logger.error("set aside a spooled record: %s", error)
        self.store.append(Batch(self.node, segment, end, rows, drops, usage))
        metrics = self._metrics()
        if metrics is not None:
            metrics.stored.inc(len(rows))
            metrics.batch_events.observe(len(rows))
            metrics.batch_seconds.observe(time.perf_counter() - started)
        return len(rows)

    def _metrics(self) -> Any:
        """The app's metrics (flask_tracking/ops/metrics.py), looked up when used: the serve
        supervisor replaces them with multiprocess ones after the app is made."""
        return self.app.extensions.get("metrics")

    def _count_error(self, error: Exception) -> None:
        metrics = self._metrics()
        # DuckDB's errors, if DuckDB is loaded (a store that is not DuckDB never loads it).
        duckdb = sys.modules.get("duckdb")
        database = (SQLAlchemyError, duckdb.Error) if duckdb is not None else (SQLAlchemyError,)
        if metrics is not None and isinstance(error, database):
            metrics.database_error("writer")

    def _prepare(
        self, lines: list[bytes]
    ) -> tuple[
        list[dict[str, Any]],
        Counter[tuple[int, int, str]],
        Counter[tuple[int, int]],
        list[tuple[str, str]],
    ]:
        rows: list[dict[str, Any]] = []
        drops: Counter[tuple[int, int, str]] = Counter()
        usage: Counter[tuple[int, int]] = Counter()
        rejected: list[tuple[str, str]] = []
        today = datetime.now(UTC).date()
        self._caches.trim()
        seen: set[str] = set()
        for line in lines:
            try:
                record = parse_line(line)
                if isinstance(record, DropRecord):
                    drops[(record.site_id, record.timestamp_ms // 86_400_000, record.reason)] += 1
                    continue
                if record.event_id in seen:
                    continue  # the same line twice (a replayed write): stored once
                seen.add(record.event_id)
                site = self.sites.get(record.site_id)
                if site is None:
                    raise LookupError(f"site {record.site_id} no longer exists")
                rows.append(enrich(record, self._context(record, today)))
                usage[(site.owner_id, _month(record.timestamp_ms))] += 1
            except SQLAlchemyError:
                raise  # the database is unavailable, not the record wrong: retry the batch
            except Exception as error:  # one bad record must not block the rest
                rejected.append((_scrubbed(line), f"{type(error).__name__}: {error}"))
        return rows, drops, usage, rejected

    def _context(self, record: EventRecord, today: date) -> EnrichContext:
        """The enrichment context of a record's UTC day (one per day: its salt)."""
        key = (record.timestamp_ms // 86_400_000, today)
        context = self._contexts.get(key)
        if context is None:
            if len(self._contexts) > 8:
                self._contexts.clear()
            context = self._contexts[key] = EnrichContext(
                self.salts.for_day(_day(record.timestamp_ms), today),
                self.settings.store_visitor_ip,
                self.settings.allowed_query,
                self.sites.local_day,
                self._caches,
            )
        return context

    def _load_offsets(self) -> dict[str, int]:
        if self._offsets is None:
            self._offsets = self.store.offsets()
        return self._offsets

    def _forget(self, segment: spool_files.Segment) -> None:
        """Delete a fully stored, finished segment, then its checkpoint."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(segment.path)
        self.store.forget(segment.name)
        if self._offsets is not None:
            self._offsets.pop(segment.name, None)

    def rotate_salts(self) -> None:
        today = datetime.now(UTC).date()
        with write_transaction():
            self.salts.rotate(today)
        if self._contexts and all(key[1] != today for key in self._contexts):
            # A new day: salts older than yesterday are gone, and so must be every visitor id
            # cached under them (with the address and User-Agent it was made of).
            self._contexts.clear()
            self._caches.visitors.clear()

    def run(self, stop: threading.Event) -> None:
        """Drain every interval until `stop` is set, backing off on errors; once more at the end.

        Every pass that stores what was spooled touches the heartbeat (/readyz reads its age)."""
        backoff = self.settings.interval
        while not stop.is_set():
            try:
                self.drain()
                spool_files.beat(self.settings.directory)
                self.schedule.run_due()
                backoff = self.settings.interval
            except Exception as error:  # the writer must outlive any database trouble
                self._count_error(error)
                first = backoff == self.settings.interval
                # The traceback once per outage; then one line per retry.
                logger.warning(
                    "writer could not store the spool (%s); retrying in %.1fs",
                    type(error).__name__,
                    backoff,
                    exc_info=first,
                )
                backoff = min(backoff * 2, self.settings.max_backoff)
            stop.wait(backoff)
        try:
            self.drain()
        except Exception:  # the database is down at shutdown: the spool keeps everything
            logger.exception(
                "could not store the spool at shutdown; it will be stored at the next start"
            )


def _scrubbed(line: bytes) -> str:
    """Return a spool line as it may be kept for an operator: without the visitor's address.

    A line the writer cannot read is kept to be looked at, but the raw IP must not outlive the
    spool (docs/security.md): replace it when the line parses, or keep only a prefix of the
    line's other fields when it does not.
    """
    text = line.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return _IP_FIELD.sub('"ip":"(removed)"', text)
    if isinstance(data, dict) and data.get("ip"):
        data["ip"] = truncate_ip(str(data["ip"])) or "(removed)"
    return json.dumps(data, ensure_ascii=False)


def _day(timestamp_ms: int) -> date:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).date()


@functools.lru_cache(maxsize=64)
def _month_of_day(utc_day: int) -> int:
    day = date(1970, 1, 1) + timedelta(days=utc_day)
    return day.year * 100 + day.month


def _month(timestamp_ms: int) -> int:
    """The UTC month (yyyymm) of a moment: what billing counts an event in."""
    return _month_of_day(timestamp_ms // 86_400_000)
