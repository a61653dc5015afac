"""Writer-side enrichment: a spooled event becomes a row of the store, step by named step.

The row has the columns of the store's `recent` table (events/schema.py), dimension values as
text; the store encodes them its own way.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask_tracking import geo
from flask_tracking.geo import GeoData
from flask_tracking.ingest.pages import parse_page_url, screen_size
from flask_tracking.ingest.records import EventRecord
from flask_tracking.ingest.referrers import referrer_source
from flask_tracking.ingest.useragent import parse_user_agent
from flask_tracking.ingest.visitors import visitor_id

Row = dict[str, Any]
# "PageLoad" is what the original tutorial's image snippet sends for a page view.
PAGEVIEW_NAMES = frozenset({"pageview", "PageLoad"})


@dataclass
class EnrichCaches:
    """Results of the costly steps, by their input: geolocation fields by address, User-Agent
    fields by string, visitor ids by (salt, site, address, User-Agent)."""

    geo: dict[str, dict[str, Any]] = field(default_factory=dict)
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    visitors: dict[tuple[bytes, int, str, str], int] = field(default_factory=dict)
    limit: int = 100_000

    def trim(self) -> None:
        """Forget everything once a cache is over its limit (then it fills with what recurs)."""
        for cache in (self.geo, self.agents, self.visitors):
            if len(cache) > self.limit:
                cache.clear()


@dataclass(frozen=True, slots=True)
class EnrichContext:
    """What enrichment needs besides the event: the day's salt, the site's local day, and the
    operator's choices."""

    salt: bytes
    store_visitor_ip: bool
    allowed_query: frozenset[str]
    # The site-local day (days since 1970-01-01) of a moment (epoch ms) on a site.
    local_day: Callable[[int, int], int] = lambda _site, ts: ts // 86_400_000
    # What the same addresses, User-Agents and visitors gave before: real traffic repeats
    # them over and over (the writer keeps these across batches and bounds them).
    caches: EnrichCaches = field(default_factory=EnrichCaches)


def enrich(event: EventRecord, context: EnrichContext) -> Row:
    """Run every step and return the row to store."""
    row: Row = {
        "site_id": event.site_id,
        "ts": event.timestamp_ms,
        "day": context.local_day(event.site_id, event.timestamp_ms),
        "name": event.name,
        "pv": event.name in PAGEVIEW_NAMES,
        "ref": event.referrer,
        "props": props_text(event.props),
    }
    put_url(row, event, context)
    put_referrer(row, event)
    put_user_agent(row, event, context)
    put_screen(row, event)
    put_geolocation(row, event, context)
    put_visitor(row, event, context)
    return row


def props_text(props: dict[str, Any] | None) -> str:
    """An event's properties as the store keeps them: compact JSON, "" for none."""
    return json.dumps(props, ensure_ascii=False, separators=(",", ":")) if props else ""


def put_url(row: Row, event: EventRecord, context: EnrichContext) -> None:
    """Hostname, pathname, the URL without private query parameters, and UTM tags."""
    page = parse_page_url(event.url, context.allowed_query)
    row.update(
        url=page.url,
        hostname=page.hostname[:255],
        page=page.pathname[:2048],
        utm_source=page.utm_source,
        utm_medium=page.utm_medium,
        utm_campaign=page.utm_campaign,
        utm_term=page.utm_term,
        utm_content=page.utm_content,
    )


def put_referrer(row: Row, event: EventRecord) -> None:
    """The referrer's source name; self-referrals have none."""
    source = referrer_source(event.referrer, row.get("hostname"))
    row["source"] = source[:255] if source else None


def put_user_agent(row: Row, event: EventRecord, context: EnrichContext | None = None) -> None:
    """Browser, versions, OS and device type."""
    cache = context.caches.agents if context else {}
    fields = cache.get(event.user_agent)
    if fields is None:
        info = parse_user_agent(event.user_agent)
        fields = cache[event.user_agent] = {
            "browser": _cut(info.browser, 64),
            "browser_version": _cut(info.browser_version, 32),
            "os": _cut(info.os, 64),
            "os_version": _cut(info.os_version, 32),
            "device": info.device,
        }
    row.update(fields)


def put_screen(row: Row, event: EventRecord) -> None:
    """The screen width and its size class."""
    width = event.width if isinstance(event.width, int) and 0 < event.width < 100_000 else None
    row.update(width=width or 0, screen=screen_size(width))


def put_geolocation(row: Row, event: EventRecord, context: EnrichContext) -> None:
    """Country, region, city, postal code and coordinates of the visitor's IP."""
    if not event.ip:
        return
    fields = context.caches.geo.get(event.ip)
    if fields is None:
        fields = context.caches.geo[event.ip] = geo_fields(geo.get_geodata(event.ip))
    row.update(fields)


def geo_fields(data: GeoData | None) -> dict[str, Any]:
    """The row's geolocation columns for a lookup's answer (none for no answer)."""
    if data is None:
        return {}
    coordinates = None
    if data.latitude is not None and data.longitude is not None:
        coordinates = f"{data.latitude:.4f},{data.longitude:.4f}"
    return {
        "city": _cut(data.city, 128),
        "postal": _cut(data.postal_code, 32),
        "region": _cut(data.region, 128),
        "country": _cut(data.country_code, 2),
        "country_name": _cut(data.country_name, 128),
        "coordinates": coordinates,
    }


def put_visitor(row: Row, event: EventRecord, context: EnrichContext) -> None:
    """The cookieless visitor id; the IP itself is kept only truncated, and only if asked."""
    key = (context.salt, event.site_id, event.ip or "", event.user_agent)
    visitor = context.caches.visitors.get(key)
    if visitor is None:
        visitor = context.caches.visitors[key] = visitor_id(*key)
    row["visitor"] = visitor
    row["ip"] = truncate_ip(event.ip) if context.store_visitor_ip and event.ip else None


def truncate_ip(ip: str) -> str | None:
    """Return the network part of an address, or None for a malformed one."""
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def _cut(value: str | None, length: int) -> str | None:
    return value[:length] if value else None
