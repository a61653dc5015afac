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
    """Results of the costly steps, by their input: URL fields by URL, geolocation fields by
    address, User-Agent fields by string, visitor ids by (salt, site, address, User-Agent)."""

    urls: dict[str, Row] = field(default_factory=dict)
    geo: dict[str, Row] = field(default_factory=dict)
    agents: dict[str, Row] = field(default_factory=dict)
    visitors: dict[tuple[bytes, int, str, str], int] = field(default_factory=dict)
    limit: int = 100_000

    def trim(self) -> None:
        """Forget everything once a cache is over its limit (then it fills with what recurs)."""
        for cache in (self.urls, self.geo, self.agents, self.visitors):
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
    # What the same URLs, addresses, User-Agents and visitors gave before: real traffic
    # repeats them over and over (the writer keeps these across batches and bounds them).
    caches: EnrichCaches = field(default_factory=EnrichCaches)


def enrich(event: EventRecord, context: EnrichContext) -> Row:
    """Run every step and return the row to store: every column of `recent` but its id.

    Each step returns its columns; the costly ones come from the caches as one dict each, and
    the row is built in one go (this runs for every event the writer stores).
    """
    url = url_fields(event, context)
    return {
        "site_id": event.site_id,
        "ts": event.timestamp_ms,
        "day": context.local_day(event.site_id, event.timestamp_ms),
        "name": event.name,
        "pv": event.name in PAGEVIEW_NAMES,
        "ref": event.referrer,
        "props": props_text(event.props),
        **url,
        "source": referrer_column(event, url["hostname"]),
        **user_agent_fields(event, context),
        **screen_fields(event),
        **geolocation_fields(event, context),
        **visitor_fields(event, context),
    }


def props_text(props: dict[str, Any] | None) -> str:
    """An event's properties as the store keeps them: compact JSON, "" for none."""
    return json.dumps(props, ensure_ascii=False, separators=(",", ":")) if props else ""


def url_fields(event: EventRecord, context: EnrichContext) -> Row:
    """Hostname, pathname, the URL without private query parameters, and UTM tags."""
    fields = context.caches.urls.get(event.url)
    if fields is None:
        page = parse_page_url(event.url, context.allowed_query)
        fields = context.caches.urls[event.url] = {
            "url": page.url,
            "hostname": page.hostname[:255],
            "page": page.pathname[:2048],
            "utm_source": page.utm_source,
            "utm_medium": page.utm_medium,
            "utm_campaign": page.utm_campaign,
            "utm_term": page.utm_term,
            "utm_content": page.utm_content,
        }
    return fields


def referrer_column(event: EventRecord, hostname: str | None) -> str | None:
    """The referrer's source name; self-referrals have none."""
    source = referrer_source(event.referrer, hostname)
    return source[:255] if source else None


def user_agent_fields(event: EventRecord, context: EnrichContext | None = None) -> Row:
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
    return fields


_SCREENS: dict[int, Row] = {}


def screen_fields(event: EventRecord) -> Row:
    """The screen width and its size class."""
    width = event.width if isinstance(event.width, int) and 0 < event.width < 100_000 else 0
    fields = _SCREENS.get(width)
    if fields is None:
        fields = {"width": width, "screen": screen_size(width or None)}
        if len(_SCREENS) < 10_000:
            _SCREENS[width] = fields
    return fields


def geolocation_fields(event: EventRecord, context: EnrichContext) -> Row:
    """Country, region, city, postal code and coordinates of the visitor's IP."""
    if not event.ip:
        return NO_GEO
    fields = context.caches.geo.get(event.ip)
    if fields is None:
        fields = context.caches.geo[event.ip] = geo_fields(geo.get_geodata(event.ip))
    return fields


NO_GEO: Row = dict.fromkeys(("city", "postal", "region", "country", "country_name", "coordinates"))


def geo_fields(data: GeoData | None) -> Row:
    """The row's geolocation columns for a lookup's answer (all None for no answer)."""
    if data is None:
        return NO_GEO
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


def visitor_fields(event: EventRecord, context: EnrichContext) -> Row:
    """The cookieless visitor id; the IP itself is kept only truncated, and only if asked."""
    key = (context.salt, event.site_id, event.ip or "", event.user_agent)
    visitor = context.caches.visitors.get(key)
    if visitor is None:
        visitor = context.caches.visitors[key] = visitor_id(*key)
    ip = truncate_ip(event.ip) if context.store_visitor_ip and event.ip else None
    return {"visitor": visitor, "ip": ip}


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
