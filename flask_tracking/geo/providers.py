"""GeoIP providers: a MaxMind-format database file, or none at all."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import maxminddb

from flask_tracking.geo.data import GeoData, clean_coordinate, clean_text, public_address
from flask_tracking.geo.service import HTTPProvider

__all__ = ["HTTPProvider", "MMDBProvider", "NoProvider", "bundled_database_path"]

logger = logging.getLogger("flask_tracking.geo")


class NoProvider:
    """Geolocation turned off."""

    def lookup(self, ip: str) -> GeoData | None:
        """Know nothing about any address."""
        return None


def bundled_database_path() -> str:
    """Return the path of the GeoLite2-City file shipped in maxminddb-geolite2."""
    # geolite2.geolite2.filename holds the same path, but importing that module also
    # builds its own reader object; the data package's helper only joins the path.
    from _maxminddb_geolite2 import geolite2_database

    return str(geolite2_database())


class MMDBProvider:
    """Offline lookups in a MaxMind-format city database (GeoLite2-City, DB-IP City Lite)."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._reader: maxminddb.Reader | None = None
        self._ipv4_only = False
        self._unusable = False
        self._lock = threading.Lock()

    def lookup(self, ip: str) -> GeoData | None:
        """Return the database's record for a public address, or None."""
        address = public_address(ip)
        if address is None:
            return None
        reader = self._reader or self._open()
        if reader is None:
            return None
        if self._ipv4_only and ":" in address:
            return None  # not an error: the reader would raise ValueError for every such visit
        try:
            record = reader.get(address)
        except maxminddb.InvalidDatabaseError as error:
            self._give_up(f"GeoIP database {self._name} is corrupt: {_redact(error, address)}")
            return None
        except ValueError as error:  # e.g. closed by another thread mid-lookup
            logger.warning("GeoIP database lookup failed: %s", _redact(error, address))
            return None
        return record_to_geodata(record)

    def close(self) -> None:
        """Release the database file; a later lookup opens it again."""
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    @property
    def _name(self) -> str:
        return self.path or "bundled GeoLite2-City"

    def describe(self) -> tuple[str, datetime | None]:
        """The database's name and when it was built (None: it cannot be opened)."""
        reader = self._reader or self._open()
        if reader is None:
            return self._name, None
        return self._name, datetime.fromtimestamp(reader.metadata().build_epoch, UTC)

    def _open(self) -> maxminddb.Reader | None:
        with self._lock:
            if self._reader is None and not self._unusable:
                try:
                    path = self.path or bundled_database_path()
                    reader = maxminddb.open_database(path, maxminddb.MODE_AUTO)
                    self._ipv4_only = reader.metadata().ip_version == 4
                    self._reader = reader
                except (ImportError, OSError, ValueError, RuntimeError) as error:
                    # Warn once and stop trying: every visit would otherwise log the same thing.
                    self._unusable = True
                    logger.warning("cannot open GeoIP database %s: %s", self._name, error)
            return self._reader

    def _give_up(self, message: str) -> None:
        with self._lock:
            if not self._unusable:
                logger.warning("%s", message)
            self._unusable = True
            if self._reader is not None:
                self._reader.close()
                self._reader = None


def _redact(error: Exception, address: str) -> str:
    """The error's message without the visitor's address, which maxminddb puts in it."""
    return str(error).replace(address, "<address>")


def _dig(value: object, *keys: str | int) -> object:
    """Follow keys and list indexes into decoded MaxMind data; None where one is missing."""
    for key in keys:
        if isinstance(key, int):
            if not isinstance(value, list) or len(value) <= key:
                return None
            value = value[key]
        elif isinstance(value, dict):
            value = value.get(key)
        else:
            return None
    return value


def record_to_geodata(record: object) -> GeoData | None:
    """Map a GeoLite2-City record to GeoData; None when the record says nothing useful."""
    data = GeoData(
        city=clean_text(_dig(record, "city", "names", "en")),
        postal_code=clean_text(_dig(record, "postal", "code")),
        region=clean_text(_dig(record, "subdivisions", 0, "names", "en")),
        country_code=clean_text(_dig(record, "country", "iso_code")),
        country_name=clean_text(_dig(record, "country", "names", "en")),
        latitude=clean_coordinate(_dig(record, "location", "latitude"), 90),
        longitude=clean_coordinate(_dig(record, "location", "longitude"), 180),
    )
    return None if data == GeoData() else data
