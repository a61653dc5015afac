"""The GeoData record, the provider protocol, and which addresses are worth looking up."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Protocol


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
    """Anything that can tell where a public IP address is."""

    def lookup(self, ip: str) -> GeoData | None:
        """Return the address's location, or None when unknown."""
        ...


def public_address(ip: object) -> str | None:
    """Return the canonical form of a globally routable unicast address, else None."""
    if not isinstance(ip, str):
        return None
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:  # a zone only means something on the local link
            return None
        address = address.ipv4_mapped or address
    return str(address) if _is_public(address) else None


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # is_global alone lets multicast and some reserved blocks through, so rule them out too.
    excluded = (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )
    return address.is_global and not excluded


def clean_text(value: object) -> str | None:
    """Return a stripped non-empty string, or None for blanks and non-strings."""
    if not isinstance(value, str):
        return None
    return value.strip() or None


def clean_coordinate(value: object, limit: float) -> float | None:
    """Return a finite number within ±limit as a float, or None."""
    # bool is an int subclass, but true/false is never a coordinate.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float: JSON allows any number of digits
        return None
    return number if math.isfinite(number) and abs(number) <= limit else None
