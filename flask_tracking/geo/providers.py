"""GeoIP providers: a MaxMind-format database, a Free-GeoIP-compatible service, or none."""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import maxminddb
from cachetools import TTLCache

logger = logging.getLogger("flask_tracking.geo")


@dataclass(frozen=True, slots=True)
class GeoData:
    """Where an address is, as far as the provider knows."""

    city: str | None = None
    postal_code: str | None = None
    region: str | None = None
    country_code: str | None = None
    country_name: str | None = None
    latitude: float | None = None
    longitude: float | None = None

    @property
    def location(self) -> str:
        """Return "City, ZIP" with missing parts left out; "" when both are unknown."""
        return ", ".join(part for part in (self.city, self.postal_code) if part)


class GeoProvider(Protocol):
    """Anything that can look up a public IP address."""

    def lookup(self, ip: str) -> GeoData | None:
        """Return the address's location, or None."""


def bundled_database_path() -> str:
    """Return the path of the GeoLite2-City database shipped in maxminddb-geolite2."""
    from _maxminddb_geolite2 import geolite2_database

    return str(geolite2_database())


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class NoProvider:
    """Geolocation turned off."""

    def lookup(self, ip: str) -> GeoData | None:
        """Know nothing."""
        return None


class MMDBProvider:
    """Offline lookups in a MaxMind-format city database (GeoLite2, DB-IP)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._reader: maxminddb.Reader | None = None
        self._failed = False
        self._lock = threading.Lock()

    def _open(self) -> maxminddb.Reader | None:
        with self._lock:
            if self._reader is None and not self._failed:
                try:
                    self._reader = maxminddb.open_database(self.path, maxminddb.MODE_AUTO)
                except (OSError, ValueError, maxminddb.InvalidDatabaseError) as error:
                    self._failed = True  # warn once, not on every visit
                    logger.warning("cannot open GeoIP database %s: %s", self.path, error)
            return self._reader

    def lookup(self, ip: str) -> GeoData | None:
        """Return the database's record for the address, if it has one."""
        reader = self._open()
        if reader is None:
            return None
        record = reader.get(ip)
        return _from_mmdb(record) if isinstance(record, dict) else None

    def close(self) -> None:
        """Release the database file."""
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None


def _name(record: Any) -> str | None:
    names = record.get("names") if isinstance(record, dict) else None
    return _text(names.get("en")) if isinstance(names, dict) else None


def _from_mmdb(record: dict[str, Any]) -> GeoData:
    subdivisions = record.get("subdivisions") or [{}]
    location = record.get("location") or {}
    country = record.get("country") or record.get("registered_country") or {}
    return GeoData(
        city=_name(record.get("city")),
        postal_code=_text((record.get("postal") or {}).get("code")),
        region=_name(subdivisions[0]),
        country_code=_text(country.get("iso_code")),
        country_name=_name(country),
        latitude=_number(location.get("latitude")),
        longitude=_number(location.get("longitude")),
    )


class HTTPProvider:
    """Lookups in a Free-GeoIP-compatible JSON web service, cached, with a short timeout."""

    def __init__(self, url_template: str, timeout: float = 0.5, cache_size: int = 10_000) -> None:
        parts = urlsplit(url_template)
        if parts.scheme not in ("http", "https") or not parts.netloc or "{ip}" not in url_template:
            raise ValueError("GEOIP_HTTP_URL must be an http(s) URL containing {ip}")
        self.url_template = url_template
        self.timeout = timeout
        self._cache: TTLCache[str, GeoData | None] = TTLCache(maxsize=cache_size, ttl=86_400)
        self._lock = threading.Lock()

    def lookup(self, ip: str) -> GeoData | None:
        """Return the service's answer for the address; failures are logged, not cached."""
        with self._lock:
            if ip in self._cache:
                return self._cache[ip]
        try:
            data = self._fetch(ip)
        except (OSError, ValueError) as error:  # URLError, timeouts, bad JSON
            logger.warning("GeoIP service failed for %s: %s", ip, error)
            return None
        with self._lock:
            self._cache[ip] = data
        return data

    def _fetch(self, ip: str) -> GeoData | None:
        url = self.url_template.replace("{ip}", quote(ip, safe=":."))
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            payload = json.loads(response.read(65_536))
        if not isinstance(payload, dict):
            raise ValueError("the service did not answer with a JSON object")
        data = GeoData(
            city=_text(payload.get("city")),
            postal_code=_text(
                payload.get("zip_code") or payload.get("zip") or payload.get("postal")
            ),
            region=_text(payload.get("region_name") or payload.get("region")),
            country_code=_text(payload.get("country_code")),
            country_name=_text(payload.get("country_name") or payload.get("country")),
            latitude=_number(payload.get("latitude", payload.get("lat"))),
            longitude=_number(payload.get("longitude", payload.get("lon"))),
        )
        return data if data != GeoData() else None
