"""Site rules: URL normalisation, ownership, create, update, delete."""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select

from flask_tracking.events import current_store
from flask_tracking.extensions import db
from flask_tracking.ingest.hit import storable
from flask_tracking.tracking.models import Site
from flask_tracking.urls import is_row_id
from flask_tracking.users.models import User

Row = TypeVar("Row")

MAX_BASE_URL = 2048  # the column's size
MAX_RETENTION_DAYS = 36_500  # a site keeps its events at most this many days (a century)


class Unchanged:
    """The value of an argument not given: the site keeps what it has."""


UNCHANGED = Unchanged()


class SiteError(ValueError):
    """A change the rules refuse (an Umami website id another site has), with the reason."""


class InvalidSiteURL(ValueError):
    """Raised for a base URL that cannot be a website's address."""


def normalise_base_url(raw: str) -> str:
    """Return 'scheme://host[:port][/path]' for a user-typed site address."""
    text = raw.strip()
    if not text:
        raise InvalidSiteURL("Enter the address of your site.")
    if not storable(text):
        raise InvalidSiteURL("That address contains characters no URL can hold.")
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise InvalidSiteURL("That address is not a valid URL.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidSiteURL("Only http:// and https:// sites can be tracked.")
    host = (parts.hostname or "").rstrip(".")
    if not host or any(ch.isspace() for ch in host) or parts.username or parts.password:
        raise InvalidSiteURL("That address has no valid host name.")
    try:
        netloc = host.encode("idna").decode("ascii") if not host.isascii() else host.lower()
    except UnicodeError:  # a label too long, or characters IDNA refuses
        raise InvalidSiteURL("That address has no valid host name.") from None
    if ":" in netloc:
        netloc = f"[{netloc}]"  # IPv6 literal
    if port is not None:
        netloc += f":{port}"
    normalised = urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))
    if len(normalised) > MAX_BASE_URL:  # "https://" added, or a host grown by IDNA
        raise InvalidSiteURL(f"That address is too long (at most {MAX_BASE_URL} characters).")
    return normalised


def sites_of(user: User) -> list[Site]:
    """Return the user's sites, oldest first."""
    return list(db.session.scalars(select(Site).where(Site.owner_id == user.id).order_by(Site.id)))


def owned_site(user: User, site_id: int) -> Site | None:
    """Return the site only if this user owns it (else None, like a missing one)."""
    site = db.session.get(Site, site_id)
    return site if site is not None and site.owner_id == user.id else None


def create_site(
    owner: User,
    base_url: str,
    name: str = "",
    *,
    timezone: str = "UTC",
    excluded_ips: str = "",
    excluded_paths: str = "",
    retention_days: int | None = None,
) -> Site:
    """Add a site for its owner (values already validated by the form)."""
    site = Site(
        owner=owner,
        base_url=normalise_base_url(base_url),
        name=name.strip(),
        timezone=timezone,
        excluded_ips=excluded_ips.strip(),
        excluded_paths=excluded_paths.strip(),
        retention_days=retention_days,
    )
    db.session.add(site)
    db.session.commit()
    return site


def update_site(
    site: Site,
    base_url: str,
    name: str = "",
    excluded_ips: str | None = None,
    excluded_paths: str | None = None,
    *,
    timezone: str | None = None,
    retention_days: int | Unchanged | None = UNCHANGED,
    umami_id: str | Unchanged | None = UNCHANGED,
) -> Site:
    """Change a site's address, name, exclusions, zone, retention (None: the server's
    default) and Umami website id, already validated by the form; SiteError when another
    site has that Umami id."""
    site.base_url = normalise_base_url(base_url)
    site.name = name.strip()
    if excluded_ips is not None:
        site.excluded_ips = excluded_ips.strip()
    if excluded_paths is not None:
        site.excluded_paths = excluded_paths.strip()
    if timezone is not None:
        # The writer notices the new zone and re-marks the site's stored events in it.
        site.timezone = timezone
    if not isinstance(retention_days, Unchanged):
        site.retention_days = retention_days
    if not isinstance(umami_id, Unchanged):
        taken = umami_id and db.session.scalar(
            select(Site.id).where(Site.umami_id == umami_id, Site.id != site.id)
        )
        if taken:
            db.session.rollback()
            raise SiteError("Another site has this Umami website id.")
        site.umami_id = umami_id
    db.session.commit()
    return site


def delete_site(site: Site) -> None:
    """Delete a site: its events from the store first, then the site (and, through the
    foreign key cascade, its shared links and keys). If the store cannot be reached the site
    stays, so no events are left behind for an id SQLite may give out again."""
    current_store().delete_site(site.id)
    db.session.delete(site)
    db.session.commit()


def site_row(model: type[Row], site: Site, row_id: int) -> Row | None:
    """Return the row of `model` (a goal, a funnel, an experiment) with this id if it is the
    site's: another site's is as missing as a deleted one. An id from a form past 32-bit
    INTEGER matches no row (and is never sent to the database, which would refuse it)."""
    if not is_row_id(row_id):
        return None
    row: Any = db.session.get(model, row_id)
    return row if row is not None and row.site_id == site.id else None
