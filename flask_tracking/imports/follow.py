"""Following a live access log (`flask-tracking import access-log FILE --site ID --follow`):
each new page request is appended to the spool as the collector appends a tracked event, so
the writer stores it like any other — the same durable pipeline, bots dropped, visitors
derived from the address and User-Agent.

Where it has got to is kept in DATA_DIR/imports/follow-<site>-<digest of the path>.json (the
file's device and inode, and the offset after the last line spooled), written after the lines
are in the spool: a restart resumes there, and nothing is spooled twice or skipped — unless the
log was rotated meanwhile, when the new file is read from its start. A rotated file (another
inode at the path, or the file shorter than the offset) is followed from its start too. A line
that is not a log line is counted and passed over: a live log must not stop the follower.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from flask_tracking.imports.base import Imported, Refused, Summary
from flask_tracking.imports.sources import access_log
from flask_tracking.ingest.bots import is_bot
from flask_tracking.ingest.records import EventRecord

BATCH = 500


@dataclass
class Position:
    device: int
    inode: int
    offset: int


class Follower:
    """Tails one log file into the spool for one site."""

    def __init__(
        self,
        path: str,
        site_id: int,
        *,
        host: str,
        append: Callable[[bytes], None],
        state_dir: str,
        flushed: Callable[[], object] = lambda: None,
    ) -> None:
        self.path = path
        self.site_id = site_id
        self.host = host
        self.append = append
        self.flushed = flushed  # called after each batch is spooled (to hand it on)
        digest = hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:16]
        self.state = Path(state_dir) / "imports" / f"follow-{site_id}-{digest}.json"
        self.summary = Summary()
        self.spooled = 0
        self.watching = threading.Event()  # set once the file is open and positioned

    def run(self, stop: threading.Event, poll: float = 0.5) -> Summary:
        """Follow until `stop` is set; return what was spooled and skipped."""
        handle: IO[bytes] | None = None
        try:
            while not stop.is_set():
                handle = self._reopen_if_rotated(handle)
                if handle is not None:
                    self.watching.set()
                if handle is None or not self._read_some(handle):
                    stop.wait(poll)
        finally:
            if handle is not None:
                handle.close()
        return self.summary

    def _reopen_if_rotated(self, handle: IO[bytes] | None) -> IO[bytes] | None:
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            return handle  # between a rotation's rename and the new file: keep the old one
        if handle is not None:
            mine = os.fstat(handle.fileno())
            if (mine.st_dev, mine.st_ino) == (found.st_dev, found.st_ino):
                if found.st_size < handle.tell():  # truncated in place
                    handle.seek(0)
                return handle
            if self._read_some(handle):  # the old file's last lines first
                return handle
            handle.close()
        handle = open(self.path, "rb")  # noqa: SIM115 (kept open while following)
        saved = self._load()
        same = saved and (saved.device, saved.inode) == (found.st_dev, found.st_ino)
        if same and saved and saved.offset <= found.st_size:
            handle.seek(saved.offset)
        elif saved is None and self.spooled == 0:
            handle.seek(0, os.SEEK_END)  # first start: only what is written from now on
        return handle

    def _read_some(self, handle: IO[bytes]) -> bool:
        """Spool up to a batch of complete new lines; tell whether there were any."""
        records: list[bytes] = []
        began = handle.tell()
        while len(records) < BATCH:
            start = handle.tell()
            line = handle.readline()
            if not line.endswith(b"\n"):
                handle.seek(start)  # a line still being written: next time
                break
            row = self._row(line)
            if row is not None:
                records.append(self._record(row).to_line())
        if handle.tell() == began:
            return False
        for record in records:
            self.append(record)
        self.spooled += len(records)
        self.flushed()
        stat = os.fstat(handle.fileno())
        self._save(Position(stat.st_dev, stat.st_ino, handle.tell()))
        return True

    def _row(self, line: bytes) -> Imported | None:
        text = line.decode("utf-8", errors="replace")
        try:
            rows = list(access_log([text], self.summary, self.host))
        except Refused:
            self.summary.skipped["lines that are not log lines"] += 1
            return None
        if not rows:
            return None
        row = rows[0]
        if row.user_agent and is_bot(row.user_agent):
            self.summary.skipped["bots and crawlers (the collector drops them too)"] += 1
            return None
        self.summary.add(row)
        return row

    def _record(self, row: Imported) -> EventRecord:
        return EventRecord(
            event_id=uuid.uuid4().hex,
            site_id=self.site_id,
            timestamp_ms=row.ts_ms,
            name=row.name,
            url=row.url,
            referrer=row.referrer,
            ip=row.ip,
            user_agent=row.user_agent,
        )

    def _load(self) -> Position | None:
        try:
            found = json.loads(self.state.read_text())
            return Position(int(found["device"]), int(found["inode"]), int(found["offset"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save(self, position: Position) -> None:
        self.state.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state.with_suffix(".tmp")
        temporary.write_text(json.dumps(position.__dict__))
        os.replace(temporary, self.state)
