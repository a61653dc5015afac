"""The request path: decide accept or drop, append to the spool, never touch the database."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from flask_tracking.ingest.bots import is_bot, is_prefetch
from flask_tracking.ingest.exclusions import ip_excluded, path_excluded
from flask_tracking.ingest.hit import UnknownSite
from flask_tracking.ingest.limits import KeyedBuckets
from flask_tracking.ingest.pages import parse_page_url
from flask_tracking.ingest.records import DropRecord, EventRecord
from flask_tracking.ingest.referrers import is_referrer_spam
from flask_tracking.ingest.sitecache import SiteCache, SiteInfo
from flask_tracking.ingest.spool import Spool
from flask_tracking.ingest.writer import Writer

_START_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Incoming:
    """A validated event with the request facts the pipeline needs (no Flask objects)."""

    site_id: int
    name: str
    url: str
    referrer: str | None
    width: int | None
    props: dict[str, Any]
    ip: str | None
    user_agent: str
    do_not_track: bool
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RateLimits:
    """The collector's abuse limits: a token bucket per (site, visitor address) and per site.

    An address is limited per site, so that many people behind one address (an office, a
    carrier's NAT) visiting different sites never add up against each other.
    """

    per_ip: KeyedBuckets
    per_site: KeyedBuckets

    def allow(self, event: Incoming) -> bool:
        """Take a token from the event's address and site; False when either has none."""
        now = time.monotonic()
        if event.ip and not self.per_ip.take((event.site_id, event.ip), now):
            return False
        return self.per_site.take(event.site_id, now)


@dataclass
class Ingest:
    """The collector's per-app state: its spool, site cache, limits, and (maybe) writer thread."""

    app: Flask
    spool: Spool
    sites: SiteCache
    writer: Writer
    respect_dnt: bool
    writer_mode: str
    limits: RateLimits
    # Told every accepted event (None) and drop (its reason): the metrics' tally (ops/metrics.py).
    counted: Callable[[str | None], None] | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def accept(self, event: Incoming, site: SiteInfo | None = None) -> str | None:
        """Spool the event, or count it as dropped; return the drop reason, if any.

        `site` is for callers that have just read the site themselves (the API); others get
        it from the cache, which asks the database about an id it does not know.
        """
        site = site or self.sites.get(event.site_id)
        if site is None:
            raise UnknownSite(event.site_id)
        # Over a limit is a drop like any other: counted, answered 202 (never a 429 that
        # browsers would retry), and checked first, so a flood costs as little as possible.
        reason = (
            "rate_limited"
            if not self.limits.allow(event)
            else drop_reason(event, site, self.respect_dnt)
        )
        now_ms = int(time.time() * 1000)
        if reason:
            self.spool.append(DropRecord(site.id, now_ms, reason).to_line())
        else:
            self.spool.append(
                EventRecord(
                    event_id=os.urandom(16).hex(),  # 128 random bits, like uuid4, cheaper
                    site_id=site.id,
                    timestamp_ms=now_ms,
                    name=event.name,
                    url=event.url,
                    referrer=event.referrer,
                    width=event.width,
                    props=event.props,
                    ip=event.ip,
                    user_agent=event.user_agent,
                ).to_line()
            )
        self._ensure_writer()
        if self.counted is not None:
            self.counted(reason)
        return reason

    def drop(self, site: SiteInfo, reason: str) -> str:
        """Count an event that is acknowledged but not stored, for a reason the caller knows
        (what another tracker sends that this one does not keep); return the reason."""
        self.spool.append(DropRecord(site.id, int(time.time() * 1000), reason).to_line())
        self._ensure_writer()
        if self.counted is not None:
            self.counted(reason)
        return reason

    def _ensure_writer(self) -> None:
        """Start the in-process writer thread on first use when configured to (development)."""
        if self.writer_mode != "thread" or (self._thread and self._thread.is_alive()):
            return
        with _START_LOCK:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=run_exclusive,
                    args=(self.writer, self._stop),
                    name="flask-tracking-writer",
                    daemon=True,
                )
                self._thread.start()


# Why an event is not counted, cheapest checks first: (reason, check(event, site, respect_dnt)).
# A site without exclusions (most) costs neither an address nor a URL parse.
_DROP_CHECKS: tuple[tuple[str, Callable[[Incoming, SiteInfo, bool], bool]], ...] = (
    ("dnt", lambda event, _site, respect_dnt: respect_dnt and event.do_not_track),
    ("prefetch", lambda event, _site, _dnt: bool(event.headers) and is_prefetch(event.headers)),
    ("bot", lambda event, _site, _dnt: is_bot(event.user_agent)),
    (
        "referrer_spam",
        lambda event, _site, _dnt: bool(event.referrer) and is_referrer_spam(event.referrer),
    ),
    (
        "excluded_ip",
        lambda event, site, _dnt: (
            bool(site.excluded_networks) and ip_excluded(event.ip, site.excluded_networks)
        ),
    ),
    (
        "excluded_path",
        lambda event, site, _dnt: (
            bool(site.excluded_paths)
            and path_excluded(parse_page_url(event.url).pathname, site.excluded_paths)
        ),
    ),
)


# An account's billing standing (billing/service.py), checked first: an account over its quota
# (on a plan that drops) or locked stores nothing, whatever else the event is.
BILLING_DROPS = {"drop": "over_quota", "locked": "account_locked"}


def drop_reason(event: Incoming, site: SiteInfo, respect_dnt: bool) -> str | None:
    """Return why an event is not counted, or None to count it."""
    if site.billing:  # always "" while billing is off: one test of an empty string
        return BILLING_DROPS[site.billing]
    for reason, dropped in _DROP_CHECKS:
        if dropped(event, site, respect_dnt):
            return reason
    return None


def run_exclusive(writer: Writer, stop: threading.Event) -> None:
    """Run the writer while holding the spool's lock, so one process writes at a time.

    The writer's thread runs at a lower priority (WRITER_NICE): on a busy machine the workers
    answering visitors come first, and the writer catches up in the gaps (the spool holds
    what it has not stored yet, durably).
    """
    import fcntl

    lower_priority(writer.settings.nice)

    lock_path = writer.settings.directory + "/writer.lock"
    with open(lock_path, "w") as lock_file:
        while not stop.is_set():
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                stop.wait(1.0)  # another process writes; take over if it dies
                continue
            try:
                writer.run(stop)
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


def lower_priority(nice: int) -> None:
    """Raise the calling thread's nice value by `nice` (Linux sets it per thread; elsewhere,
    or when refused, it stays as it is)."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + nice)


def current_ingest() -> Ingest:
    """Return the current app's collector state."""
    ingest: Ingest = current_app.extensions["ingest"]
    return ingest
