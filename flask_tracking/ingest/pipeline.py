"""Named enrichment steps from a validated hit to a stored visit."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from flask_tracking import geo
from flask_tracking.extensions import db
from flask_tracking.ingest.hit import CleanHit, Hit, UnknownSite, validate
from flask_tracking.ingest.useragent import parse_user_agent
from flask_tracking.tracking.models import Site, Visit


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """The configuration the write path needs, read once per request."""

    respect_dnt: bool = True
    store_visitor_ip: bool = False
    max_url_length: int = 2048


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a hit: stored, or dropped with a reason."""

    visit_id: int | None = None
    dropped: str | None = None


def record_visit(hit: Hit, settings: IngestSettings) -> Outcome:
    """Validate, enrich and store one hit; raise InvalidHit or UnknownSite for bad input."""
    clean = validate(hit, settings.max_url_length)
    if db.session.get(Site, clean.site_id) is None:
        raise UnknownSite(clean.site_id)
    if settings.respect_dnt and clean.do_not_track:
        return Outcome(dropped="dnt")
    visit = enrich(clean, settings)
    db.session.add(visit)
    db.session.commit()
    return Outcome(visit_id=visit.id)


def enrich(clean: CleanHit, settings: IngestSettings) -> Visit:
    """Run the enrichment steps and return the (unsaved) visit."""
    visit = Visit(
        site_id=clean.site_id,
        date=clean.received_at,
        event=clean.event,
        url=clean.url,
        referrer=clean.referrer,
    )
    put_user_agent(visit, clean)
    put_geolocation(visit, clean)
    put_ip_address(visit, clean, settings.store_visitor_ip)
    return visit


def put_user_agent(visit: Visit, hit: CleanHit) -> None:
    """Set browser, version, OS and device type from the User-Agent."""
    info = parse_user_agent(hit.user_agent)
    visit.browser = info.browser and info.browser[:64]
    visit.browser_version = info.browser_version and info.browser_version[:32]
    visit.os = info.os and info.os[:64]
    visit.device = info.device


def put_geolocation(visit: Visit, hit: CleanHit) -> None:
    """Set city, postal code, region, country and coordinates from the IP, when known."""
    if not hit.ip:
        return
    data = geo.get_geodata(hit.ip)
    if data is None:
        return
    visit.city = data.city and data.city[:128]
    visit.postal_code = data.postal_code and data.postal_code[:32]
    visit.region = data.region and data.region[:128]
    visit.country_code = data.country_code and data.country_code[:2]
    visit.country_name = data.country_name and data.country_name[:128]
    visit.latitude = data.latitude
    visit.longitude = data.longitude


def put_ip_address(visit: Visit, hit: CleanHit, store: bool) -> None:
    """Keep a truncated IP (IPv4 /24, IPv6 /48) only when the operator asked for it."""
    visit.ip_address = truncate_ip(hit.ip) if store and hit.ip else None


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
