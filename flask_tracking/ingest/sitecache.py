"""The sites the collector knows, held in memory so accepting an event needs no query."""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from cachetools import TTLCache
from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from flask_tracking.database import reading
from flask_tracking.events.zones import DayCache
from flask_tracking.extensions import db
from flask_tracking.ingest.exclusions import parse_networks, parse_path_patterns
from flask_tracking.ingest.limits import TokenBucket
from flask_tracking.tracking.models import Site

logger = logging.getLogger("flask_tracking.ingest")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """What the collector needs to know about a site."""

    id: int
    host: str
    excluded_networks: tuple[Network, ...]
    excluded_paths: tuple[str, ...]
    timezone: str = "UTC"
    umami_id: str = ""  # the website id Umami's trackers name it by (collector/compat.py)
    owner_id: int = 0  # the account whose usage its events count in (billing)
    # What billing says of its account (billing/service.py): "" collect; "drop" over quota;
    # "locked" the account is locked. Always "" when billing is off.
    billing: str = ""


def site_info(site: Site, billing: str = "") -> SiteInfo:
    """Build a SiteInfo; exclusions that no longer parse are ignored (and logged)."""
    try:
        networks = parse_networks(site.excluded_ips or "")
        paths = parse_path_patterns(site.excluded_paths or "")
    except ValueError as error:
        logger.warning("site %s has invalid exclusions: %s", site.id, error)
        networks, paths = (), ()
    host = (urlsplit(site.base_url).hostname or "").lower()
    return SiteInfo(
        site.id,
        host,
        networks,
        paths,
        site.timezone or "UTC",
        site.umami_id or "",
        site.owner_id,
        billing,
    )


def _billing_flags(app: Flask) -> dict[int, str]:
    """The accounts that must not collect (billing/service.py); none while billing is off."""
    if app.config.get("BILLING_PROVIDER", "none") == "none":
        return {}
    from flask_tracking.billing.service import collector_flags

    return collector_flags()


def _bare(host: str) -> str:
    return host.removeprefix("www.")


class SiteCache:
    """All sites, reloaded every `ttl` seconds; an id it does not know is looked up at once.

    A site added a moment ago (in another worker) must collect from its first event, so a miss
    asks the database for that one id. Floods of made-up ids stay cheap: an id found missing
    is not asked about again for `miss_interval` seconds, and at most `max_lookups` misses a
    second reach the database at all (the rest are unknown until the next reload).
    """

    def __init__(
        self, app: Flask, ttl: float, miss_interval: float, max_lookups: float = 50.0
    ) -> None:
        self.app = app
        self.ttl = ttl
        self.miss_interval = miss_interval
        self._sites: dict[int, SiteInfo] = {}
        # Other trackers name a site by its domain (Plausible's) or a website id (Umami's).
        self._hosts: dict[str, int] = {}
        self._umami: dict[str, int] = {}
        self._loaded_at = -1e9
        self._lock = threading.Lock()
        self._missing: TTLCache[int, bool] = TTLCache(maxsize=10_000, ttl=max(miss_interval, 1e-9))
        self._names_missing: TTLCache[str, bool] = TTLCache(
            maxsize=10_000, ttl=max(miss_interval, 1e-9)
        )
        self._lookups = TokenBucket(rate=max_lookups, burst=max_lookups)
        self._days = DayCache()

    def get(self, site_id: int) -> SiteInfo | None:
        """Return the site, or None when it does not exist (as far as a fresh look can tell)."""
        if time.monotonic() - self._loaded_at > self.ttl:
            self._reload()
        site = self._sites.get(site_id)
        if site is None:
            site = self._look_up(site_id)
        return site

    def by_host(self, domain: str) -> SiteInfo | None:
        """Return the site whose address has this host, with or without "www." (the lowest id
        when several do), or None."""
        return self._by("_hosts", _bare(domain.strip().lower()))

    def by_umami_id(self, website: str) -> SiteInfo | None:
        """Return the site with this Umami website id (a lower-case UUID), or None."""
        return self._by("_umami", website)

    def _by(self, index: str, key: str) -> SiteInfo | None:
        if time.monotonic() - self._loaded_at > self.ttl:
            self._reload()
        site_id = getattr(self, index).get(key)
        if site_id is None and self._refresh_for_miss(key):
            site_id = getattr(self, index).get(key)  # the index reloaded is a new dict
        return None if site_id is None else self._sites.get(site_id)

    def _refresh_for_miss(self, key: str) -> bool:
        """A name not known may be a site added a moment ago: reload, at most once per
        miss_interval for the same name and within the lookup budget."""
        with self._lock:
            if key in self._names_missing or not self._lookups.take(time.monotonic()):
                return False
            self._names_missing[key] = True
        self._reload(keep_missing=True)
        return True

    def invalidate(self) -> None:
        """Forget everything, so the next lookup reloads (after a site is added or changed)."""
        self._loaded_at = -1e9

    def zones(self) -> dict[int, str]:
        """Return every site's time zone, reloading first (the writer's view of zone changes)."""
        self._reload()
        return {site_id: info.timezone for site_id, info in self._sites.items()}

    def local_day(self, site_id: int, ts_ms: int) -> int:
        """Return the site-local day of a moment (days since 1970-01-01)."""
        site = self._sites.get(site_id)
        return self._days.day(site.timezone if site else "UTC", ts_ms)

    def _look_up(self, site_id: int) -> SiteInfo | None:
        with self._lock:
            if site_id in self._missing or not self._lookups.take(time.monotonic()):
                return None
            try:
                with self.app.app_context(), reading():
                    site = db.session.get(Site, site_id)
                    flags = _billing_flags(self.app) if site is not None else {}
                    info = site_info(site, flags.get(site.owner_id, "")) if site else None
                    db.session.remove()
            except SQLAlchemyError as error:
                logger.warning("could not look up site %s: %s", site_id, error)
                return None
            if info is None:
                self._missing[site_id] = True
                return None
            self._sites = {**self._sites, site_id: info}  # a new dict: readers take no lock
            return info

    def _reload(self, *, keep_missing: bool = False) -> None:
        with self._lock:
            try:
                with self.app.app_context(), reading():
                    flags = _billing_flags(self.app)
                    sites = {
                        site.id: site_info(site, flags.get(site.owner_id, ""))
                        for site in db.session.scalars(select(Site))
                    }
                    db.session.remove()
            except SQLAlchemyError as error:
                # The database is down: keep collecting for the sites we know.
                logger.warning(
                    "could not reload sites, keeping %d known: %s", len(self._sites), error
                )
                self._loaded_at = time.monotonic()
                return
            hosts: dict[str, int] = {}
            umami: dict[str, int] = {}
            for site_id in sorted(sites, reverse=True):  # the lowest id wins a shared host
                info = sites[site_id]
                hosts[_bare(info.host)] = site_id
                if info.umami_id:
                    umami[info.umami_id] = site_id
            self._sites, self._hosts, self._umami = sites, hosts, umami
            if not keep_missing:
                self._missing.clear()
                self._names_missing.clear()
            self._loaded_at = time.monotonic()
