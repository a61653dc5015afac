"""IP geolocation: get_geodata(ip) through the provider that GEOIP_PROVIDER chooses."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, TypeVar

from flask import Flask, current_app

from flask_tracking.geo.data import GeoData, GeoProvider, public_address
from flask_tracking.geo.providers import HTTPProvider, MMDBProvider, NoProvider
from flask_tracking.geo.service import checked_url_template

__all__ = [
    "GeoData",
    "GeoProvider",
    "get_geodata",
    "init_app",
    "provider_from_config",
    "public_address",
]

logger = logging.getLogger("flask_tracking.geo")

PROVIDERS = ("mmdb", "http", "none")
DEFAULT_HTTP_TIMEOUT = 0.5
DEFAULT_CACHE_SIZE = 10_000

_Number = TypeVar("_Number", int, float)


def provider_from_config(config: Mapping[str, Any]) -> GeoProvider:
    """Build the provider that the configuration names; ValueError for bad settings."""
    name = config.get("GEOIP_PROVIDER") or "mmdb"
    if not isinstance(name, str) or name.strip().lower() not in PROVIDERS:
        raise ValueError(f"GEOIP_PROVIDER must be one of {', '.join(PROVIDERS)}; got {name!r}")
    name = name.strip().lower()
    if name == "none":
        return NoProvider()
    if name == "mmdb":
        path = config.get("GEOIP_DATABASE_PATH")
        # None: DB-IP's, updated (DATA_DIR/geoip) or shipped, whichever is newer
        return MMDBProvider(str(path) if path else None, data_dir=config.get("DATA_DIR"))
    return HTTPProvider(
        checked_url_template(config.get("GEOIP_HTTP_URL")),
        timeout=_positive(config, "GEOIP_HTTP_TIMEOUT", float, DEFAULT_HTTP_TIMEOUT),
        cache_size=_positive(config, "GEOIP_CACHE_SIZE", int, DEFAULT_CACHE_SIZE),
    )


def _positive(
    config: Mapping[str, Any], key: str, kind: type[_Number], default: _Number
) -> _Number:
    value = config.get(key)
    if value is None:
        return default
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):  # int(float('inf')) overflows
        raise ValueError(f"{key} must be a positive number; got {value!r}") from None
    # NaN fails the comparison; infinity would pass it, then make every lookup fail with
    # OverflowError when the socket timeout is set, so refuse it here, at startup.
    if not (number > 0 and math.isfinite(number)):
        raise ValueError(f"{key} must be a positive number; got {value!r}")
    return number


def init_app(app: Flask) -> None:
    """Build this app's provider from its configuration and keep it in app.extensions."""
    app.extensions["geoip"] = provider_from_config(app.config)


def get_geodata(ip: str) -> GeoData | None:
    """Return where a public IP address is, or None; never raises."""
    address = public_address(ip)
    if address is None:
        return None  # private, reserved or malformed: nothing a provider could know
    try:
        provider: GeoProvider = current_app.extensions["geoip"]
        return provider.lookup(address)
    except Exception:
        # A failed lookup must never cost the visit it belongs to.
        logger.exception("GeoIP lookup failed")
        return None
