"""IP geolocation: get_geodata(ip) through the provider chosen by GEOIP_PROVIDER."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app

from flask_tracking.geo.providers import (
    GeoData,
    GeoProvider,
    HTTPProvider,
    MMDBProvider,
    NoProvider,
    bundled_database_path,
)

__all__ = ["GeoData", "GeoProvider", "get_geodata", "init_app", "provider_from_config"]

logger = logging.getLogger(__name__)
PROVIDERS = ("mmdb", "http", "none")


def provider_from_config(config: Mapping[str, Any]) -> GeoProvider:
    """Build the provider that the configuration names."""
    name = str(config.get("GEOIP_PROVIDER") or "mmdb").lower()
    if name == "mmdb":
        return MMDBProvider(config.get("GEOIP_DATABASE_PATH") or bundled_database_path())
    if name == "http":
        return HTTPProvider(
            str(config.get("GEOIP_HTTP_URL") or ""),
            timeout=float(config.get("GEOIP_HTTP_TIMEOUT", 0.5)),
            cache_size=int(config.get("GEOIP_CACHE_SIZE", 10_000)),
        )
    if name == "none":
        return NoProvider()
    raise ValueError(f"GEOIP_PROVIDER={name!r} is not one of: {', '.join(PROVIDERS)}")


def init_app(app: Flask) -> None:
    """Create this app's provider from its configuration."""
    app.extensions["geoip"] = provider_from_config(app.config)


def public_address(ip: str) -> str | None:
    """Return the canonical form of a globally routable address, else None."""
    try:
        address = ipaddress.ip_address(ip.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address) if address.is_global and not address.is_multicast else None


def get_geodata(ip: str) -> GeoData | None:
    """Return where an IP address is, or None; private or malformed ones are not looked up."""
    address = public_address(ip)
    if address is None:
        return None
    provider: GeoProvider = current_app.extensions["geoip"]
    try:
        return provider.lookup(address)
    except Exception:
        # A lookup must never cost a visit: log and carry on without a location.
        logger.exception("GeoIP lookup failed")
        return None
