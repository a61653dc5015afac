"""The batch writer: spooled records into the database, exactly once, whatever fails."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from flask import Flask
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import DBAPIError, OperationalError

from flask_tracking.database import reading, upsert, write_transaction, writing
from flask_tracking.extensions import db
from flask_tracking.geo import GeoData
from flask_tracking.ingest import spool as spool_files
from flask_tracking.ingest.enrich import EnrichContext, enrich, truncate_ip
from flask_tracking.ingest.records import DropRecord, EventRecord, parse_line
from flask_tracking.ingest.salts import Salts
from flask_tracking.ingest.sessions import as_utc, assign_sessions
from flask_tracking.reports import rollups
from flask_tracking.tracking.analytics import DroppedCount, RejectedEvent, SpoolCheckpoint
from flask_tracking.tracking.models import Visit

logger = logging.getLogger("flask_tracking.ingest")
# An "ip" field in a line that is not valid JSON (a truncated or corrupted spool record).
_IP_FIELD = re.compile(r'"ip"\s*:\s*"[^"]*"')
VISIT_DEFAULTS: dict[str, Any] = {
    column.name: None for column in Visit.__table__.columns if column.name != "id"
}


@dataclass(frozen=True, slots=True)
class WriterSettings:
    """How the writer batches and retries."""

    directory: str
    batch_size: int = 5000
    interval: float = 0.5
    max_backoff: float = 5.0
    store_visitor_ip: bool = False
    allowed_query: frozenset[str] = frozenset()
    rollup_interval: float = 10.0


class Writer:
    """Stores what the spool holds; one per spool directory at a time (see run())."""

    def __init__(self, app: Flask, settings: WriterSettings) -> None:
        self.app = app
        self.settings = settings
        self.salts = Salts()
        self._offsets: dict[str, int] | None = None
        self._refreshed_at = float("-inf")

    def drain(self, *, refresh: bool = False) -> int:
        """Store everything spooled so far; return how many events were stored.

        Then bring the rollups up to date, when `refresh` or when ROLLUP_INTERVAL has passed.
        """
        stored = 0
        # Reads stay plain reads; each write takes the write lock in a short transaction.
        with self.app.app_context(), reading():
            try:
                self._rotate_salts()
                while True:
                    progress, count = self._pass()
                    stored += count
                    if not progress:
                        break
            except BaseException:
                db.session.rollback()
                self._offsets = None  # re-read the committed checkpoints after any failure
                raise
            else:
                self._refresh_rollups(force=refresh)
                return stored
            finally:
                db.session.remove()

    def _refresh_rollups(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._refreshed_at < self.settings.rollup_interval:
            return
        self._refreshed_at = now
        try:
            result = rollups.refresh()
        except Exception:  # stale reports for a while, but storing events must go on
            db.session.rollback()
            logger.exception("could not refresh the report rollups; the marks are kept")
            return
        if result.days:
            logger.info(
                "rollups: %d local days recomputed, %d sites rebuilt in %.2fs",
                result.days,
                result.sites_rebuilt,
                result.seconds,
            )

    def _pass(self) -> tuple[bool, int]:
        offsets = self._load_offsets()
        progress, stored = False, 0
        for segment in spool_files.segments(self.settings.directory):
            offset = offsets.get(segment.name, 0)
            finished = segment.finished  # checked before reading, so no line can be missed
            lines, end = spool_files.read_lines(segment.path, offset, self.settings.batch_size)
            if lines:
                stored += self._store(segment.name, lines, end)
                offsets[segment.name] = end
                progress = True
            if finished and end >= segment.size:
                self._forget(segment)  # stored to the end and closed: its addresses go now
        return progress, stored

    def _store(self, segment: str, lines: list[bytes], end: int) -> int:
        """Store one batch, its sessions, drop counts and checkpoint in one transaction."""
        rows, drops, rejected = self._prepare(lines)
        # Enrichment is done: end the reads so far, and take the write lock only now, for the
        # short transaction that stores the batch (see database.py).
        db.session.commit()
        with writing():
            rows = self._without_stored(rows)
            try:
                return self._write(rows, drops, rejected, segment, end)
            except OperationalError:
                raise  # the database is unavailable, not the data wrong: retry the whole batch
            except DBAPIError:
                db.session.rollback()
            # The database refused something: set aside the rows it refuses, store the rest.
            poison = self._find_poison(rows)
            rejected += [
                (json.dumps(row, default=str), poison[row["event_id"]])
                for row in rows
                if row["event_id"] in poison
            ]
            rows = [row for row in rows if row["event_id"] not in poison]
            return self._write(rows, drops, rejected, segment, end)

    def _write(
        self,
        rows: list[dict[str, Any]],
        drops: Counter[tuple[int, date, str]],
        rejected: list[tuple[str, str]],
        segment: str,
        end: int,
    ) -> int:
        assign_sessions(rows)
        if rows:
            # Core, not the ORM: one executemany, no unit of work for rows never read back.
            db.session.execute(insert(Visit.__table__), _complete(rows))
            rollups.mark_dirty((row["site_id"], as_utc(row["date"]).date()) for row in rows)
        self._count_drops(drops)
        for payload, error in rejected:
            db.session.add(RejectedEvent(payload=payload, error=error[:2000]))
            logger.error("set aside a spooled record: %s", error)
        self._checkpoint(segment, end)
        db.session.commit()
        return len(rows)

    @staticmethod
    def _find_poison(rows: list[dict[str, Any]]) -> dict[str, str]:
        """Try each row alone (then undo them all); return the refused ones with the error."""
        poison: dict[str, str] = {}
        for row in rows:
            try:
                with db.session.begin_nested():
                    db.session.execute(
                        insert(Visit.__table__), _complete([{**row, "session_id": None}])
                    )
            except OperationalError:
                raise
            except DBAPIError as error:
                poison[row["event_id"]] = f"{type(error.orig).__name__}: {error.orig}"
        db.session.rollback()
        return poison

    def _prepare(
        self, lines: list[bytes]
    ) -> tuple[list[dict[str, Any]], Counter[tuple[int, date, str]], list[tuple[str, str]]]:
        rows: list[dict[str, Any]] = []
        drops: Counter[tuple[int, date, str]] = Counter()
        rejected: list[tuple[str, str]] = []
        today = datetime.now(UTC).date()
        geo_cache: dict[str, GeoData | None] = {}
        for line in lines:
            try:
                record = parse_line(line)
                if isinstance(record, DropRecord):
                    drops[(record.site_id, _day(record.timestamp_ms), record.reason)] += 1
                    continue
                rows.append(enrich(record, self._context(record, today, geo_cache)))
            except Exception as error:  # one bad record must not block the rest
                rejected.append((_scrubbed(line), f"{type(error).__name__}: {error}"))
        return rows, drops, rejected

    def _context(
        self, record: EventRecord, today: date, geo_cache: dict[str, GeoData | None]
    ) -> EnrichContext:
        salt = self.salts.for_day(_day(record.timestamp_ms), today)
        return EnrichContext(
            salt, self.settings.store_visitor_ip, self.settings.allowed_query, geo_cache
        )

    @staticmethod
    def _without_stored(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Drop rows already stored, so a replayed batch counts nothing twice."""
        ids = [row["event_id"] for row in rows]
        stored: set[str] = set()
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            stored.update(
                db.session.scalars(select(Visit.event_id).where(Visit.event_id.in_(chunk)))
            )
        unique: dict[str, dict[str, Any]] = {}
        for row in rows:
            if row["event_id"] not in stored:
                unique.setdefault(row["event_id"], row)
        return list(unique.values())

    def _count_drops(self, drops: Counter[tuple[int, date, str]]) -> None:
        for (site_id, day, reason), count in drops.items():
            values = {"site_id": site_id, "day": day, "reason": reason[:32], "count": count}
            statement = upsert(
                DroppedCount,
                values,
                ["site_id", "day", "reason"],
                {"count": DroppedCount.count + count},
            )
            try:
                with db.session.begin_nested():
                    db.session.execute(statement)
            except OperationalError:
                raise
            except DBAPIError as error:  # the site was deleted meanwhile
                logger.warning("dropped-event count for site %s not kept: %s", site_id, error.orig)

    def _checkpoint(self, segment: str, end: int) -> None:
        db.session.execute(
            upsert(
                SpoolCheckpoint, {"segment": segment, "offset": end}, ["segment"], {"offset": end}
            )
        )

    def _load_offsets(self) -> dict[str, int]:
        if self._offsets is None:
            rows = db.session.execute(select(SpoolCheckpoint.segment, SpoolCheckpoint.offset))
            self._offsets = {segment: offset for segment, offset in rows}
        return self._offsets

    def _forget(self, segment: spool_files.Segment) -> None:
        """Delete a fully stored, finished segment, then its checkpoint."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(segment.path)
        with write_transaction():
            db.session.execute(
                delete(SpoolCheckpoint).where(SpoolCheckpoint.segment == segment.name)
            )
        if self._offsets is not None:
            self._offsets.pop(segment.name, None)

    def _rotate_salts(self) -> None:
        with write_transaction():
            self.salts.rotate(datetime.now(UTC).date())

    def run(self, stop: threading.Event) -> None:
        """Drain every interval until `stop` is set, backing off on errors; once more at the end."""
        backoff = self.settings.interval
        while not stop.is_set():
            try:
                self.drain()
                backoff = self.settings.interval
            except Exception as error:  # the writer must outlive any database trouble
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


def _complete(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every row every column, as one executemany needs (missing ones are None)."""
    return [{**VISIT_DEFAULTS, **row} for row in rows]


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
