"""A durable local spool: the request path appends a line, the writer stores it later.

Each process appends to its own segment file with one `os.write` per record (O_APPEND), so an
acknowledged record is in the kernel's page cache before the answer leaves: it survives a
`kill -9` of any process. A segment is sealed (renamed) when it grows past its size or its
age; the writer reads sealed and open segments alike, up to the last complete line, and
deletes a segment once it is sealed (or its process is gone) and fully stored.

Records hold visitors' raw addresses until the writer has hashed them, so segments must not
linger: a process's segment is sealed once it is `max_age` seconds old, by the next append or,
on a quiet site, by a small timer thread of that process — a few seconds after an event is
stored, no copy of its address is left on disk (docs/security.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

logger = logging.getLogger("flask_tracking.ingest")
OPEN = ".open"
SEALED = ".sealed"
HEARTBEAT = "writer.heartbeat"  # touched by the writer after every pass it completes (/readyz)
READ_CHUNK = 4 * 1024 * 1024


class SpoolFull(Exception):
    """The spool has reached its size cap; the event was not accepted."""


class Spool:
    """The appending side, shared by the threads of one process (fork-safe)."""

    def __init__(
        self,
        directory: str,
        max_bytes: int,
        segment_bytes: int = 16 * 1024 * 1024,
        size_check_interval: float = 0.25,
        max_age: float = 2.0,
    ) -> None:
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.size_check_interval = size_check_interval
        self.max_age = max_age
        self._lock = threading.Lock()
        self._pid = 0
        self._fd = -1
        self._path = ""
        self._opened_at = 0.0
        self._written = 0
        self._total = 0
        self._checked_at = 0.0
        self._timer: threading.Thread | None = None

    def append(self, line: bytes) -> None:
        """Write one newline-terminated record durably, or raise SpoolFull."""
        with self._lock:
            if self._pid != os.getpid():
                # First use, or a forked child: it must not share the parent's file.
                self._fd = -1
            elif self._fd >= 0 and time.monotonic() - self._opened_at >= self.max_age:
                self._seal()
            if self._fd < 0:
                self._open_segment()
            self._check_capacity(len(line))
            os.write(self._fd, line)
            self._written += len(line)
            self._total += len(line)
            if self._written >= self.segment_bytes:
                self._seal()

    def close(self) -> None:
        """Seal this process's segment (at shutdown)."""
        with self._lock:
            if self._pid == os.getpid() and self._fd >= 0:
                self._seal()
            self._pid = 0

    def _start_timer(self) -> None:
        """Seal the open segment at its age even if no record comes after it (under the lock).

        One daemon thread while a segment is open; it ends with the segment, and the next
        segment starts another, so an idle spool holds no thread.
        """
        if self._timer is not None and self._timer.is_alive():
            return
        interval = max(self.max_age / 4, 0.02)

        def tick() -> None:
            while True:
                time.sleep(interval)
                with self._lock:
                    if self._pid != os.getpid() or self._fd < 0:
                        self._timer = None  # sealed meanwhile: the next segment's timer takes over
                        return
                    if time.monotonic() - self._opened_at >= self.max_age:
                        self._timer = None
                        try:
                            self._seal()
                        except OSError:  # the next append opens a new segment all the same
                            logger.exception("could not seal spool segment %s", self._path)
                        return

        self._timer = threading.Thread(target=tick, name="flask-tracking-spool-sealer", daemon=True)
        self._timer.start()

    def _open_segment(self) -> None:
        self._pid = os.getpid()
        # Names sort by creation time, so the writer stores segments roughly in arrival order.
        name = f"{time.time_ns():020d}-{self._pid}-{uuid.uuid4().hex[:8]}{OPEN}"
        self._path = os.path.join(self.directory, name)
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._opened_at = time.monotonic()
        self._written = 0
        self._start_timer()

    def _seal(self) -> None:
        os.close(self._fd)
        self._fd = -1
        # Gone already (an operator emptied the spool): there is nothing left to seal.
        with contextlib.suppress(FileNotFoundError):
            if self._written:
                os.rename(self._path, self._path[: -len(OPEN)] + SEALED)
            else:
                os.unlink(self._path)

    def _check_capacity(self, incoming: int) -> None:
        now = time.monotonic()
        if now - self._checked_at >= self.size_check_interval:
            self._total = spool_bytes(self.directory)
            self._checked_at = now
        if self._total + incoming > self.max_bytes:
            self._checked_at = 0.0  # look again next time: the writer may have caught up
            raise SpoolFull(f"spool {self.directory} is over {self.max_bytes} bytes")


@dataclass(frozen=True, slots=True)
class Segment:
    """One spool file as the writer sees it."""

    name: str
    path: str
    size: int
    sealed: bool
    pid: int

    @property
    def finished(self) -> bool:
        """Tell whether nothing more will be appended: sealed, or its process is gone."""
        return self.sealed or not _alive(self.pid)


def spool_bytes(directory: str) -> int:
    """Return the total size of the segments waiting in a spool."""
    return sum(segment.size for segment in segments(directory))


def segments(directory: str) -> list[Segment]:
    """Return the spool's segments, oldest first."""
    found = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    for entry in entries:
        sealed = entry.name.endswith(SEALED)
        if not (sealed or entry.name.endswith(OPEN)):
            continue
        try:
            size = entry.stat().st_size
            pid = int(entry.name.split("-")[1])
        except (OSError, IndexError, ValueError):
            continue  # vanished meanwhile, or not one of ours
        found.append(Segment(entry.name.rsplit(".", 1)[0], entry.path, size, sealed, pid))
    return sorted(found, key=lambda segment: segment.name)


def as_it_is(segment: Segment) -> Segment | None:
    """Return the segment as it is now: under its sealed name if its process sealed it since
    it was listed open, with its current size (None when neither file is there)."""
    paths = (
        [segment.path] if segment.sealed else [segment.path, segment.path[: -len(OPEN)] + SEALED]
    )
    for path in paths:
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            continue
        return dataclasses.replace(segment, path=path, size=size, sealed=path.endswith(SEALED))
    return None


def read_segment(segment: Segment, offset: int, limit: int) -> tuple[list[bytes], int]:
    """Return up to `limit` complete lines of a segment from `offset`, and the offset after the
    last one.

    A segment listed open may be sealed (renamed) by its process before it is opened here: it
    is then read under its sealed name. Only the writer deletes segments, so one of the two
    names is there.
    """
    try:
        return read_lines(segment.path, offset, limit)
    except FileNotFoundError:
        if segment.sealed:
            raise
        return read_lines(segment.path[: -len(OPEN)] + SEALED, offset, limit)


def read_lines(path: str, offset: int, limit: int) -> tuple[list[bytes], int]:
    """Return up to `limit` complete lines from `offset`, and the offset after the last one."""
    lines: list[bytes] = []
    with open(path, "rb") as spool_file:
        spool_file.seek(offset)
        while len(lines) < limit:
            chunk = spool_file.read(READ_CHUNK)
            end = chunk.rfind(b"\n")
            if end < 0:
                break  # a partial line: still being written, or cut off by a crash
            for line in _split(chunk[: end + 1]):
                lines.append(line)
                offset += len(line) + 1
                if len(lines) == limit:
                    break
            else:
                spool_file.seek(offset)
                continue
            break
    return lines, offset


def _split(block: bytes) -> Iterator[bytes]:
    start = 0
    while (end := block.find(b"\n", start)) >= 0:
        yield block[start:end]
        start = end + 1


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def beat(directory: str) -> None:
    """Mark the writer of this spool alive now (the heartbeat file's modification time)."""
    path = os.path.join(directory, HEARTBEAT)
    try:
        os.utime(path)
    except FileNotFoundError:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))  # empty: only its time counts


def heartbeat_age(directory: str) -> float | None:
    """Seconds since the writer of this spool last completed a pass (None: never)."""
    try:
        return max(0.0, time.time() - os.stat(os.path.join(directory, HEARTBEAT)).st_mtime)
    except FileNotFoundError:
        return None
