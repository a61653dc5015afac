"""Sites and the visits recorded for them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flask_tracking.extensions import db
from flask_tracking.users.models import User, utcnow


class Site(db.Model):  # type: ignore[name-defined]
    """A website whose visits an owner tracks."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    base_url: Mapped[str] = mapped_column(String(2048))
    name: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # One CIDR or address per line; one path glob per line (see ingest/exclusions.py).
    excluded_ips: Mapped[str] = mapped_column(Text, default="", server_default="")
    excluded_paths: Mapped[str] = mapped_column(Text, default="", server_default="")
    # An IANA zone name: where a report's days, weeks and months begin (see reports/ranges.py).
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")

    owner: Mapped[User] = relationship()
    # The database deletes visits with their site (ON DELETE CASCADE); no ORM round trip.
    visits: Mapped[list[Visit]] = relationship(
        back_populates="site", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def display_name(self) -> str:
        """Return the name, or the base URL when no name was given."""
        return self.name or self.base_url

    def __repr__(self) -> str:
        return f"<Site {self.id} {self.base_url}>"


class EventContext:
    """Where an event came from and on what: shared by a visit and the session it starts."""

    # The names a session copies from its first event (see ingest/sessions.py).
    CONTEXT_FIELDS = (
        "hostname",
        "referrer",
        "referrer_source",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
        "country_code",
        "region",
        "city",
        "browser",
        "os",
        "device",
        "screen_size",
    )

    hostname: Mapped[str | None] = mapped_column(String(255))
    referrer: Mapped[str | None] = mapped_column(Text)
    referrer_source: Mapped[str | None] = mapped_column(String(255))
    utm_source: Mapped[str | None] = mapped_column(String(256))
    utm_medium: Mapped[str | None] = mapped_column(String(256))
    utm_campaign: Mapped[str | None] = mapped_column(String(256))
    utm_term: Mapped[str | None] = mapped_column(String(256))
    utm_content: Mapped[str | None] = mapped_column(String(256))
    country_code: Mapped[str | None] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(128))
    city: Mapped[str | None] = mapped_column(String(128))
    browser: Mapped[str | None] = mapped_column(String(64))
    os: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(16))
    screen_size: Mapped[str | None] = mapped_column(String(16))


class Visit(EventContext, db.Model):  # type: ignore[name-defined]
    """One tracked event: a pageview or a custom event, enriched."""

    __tablename__ = "visits"
    __table_args__ = (
        Index("ix_visits_site_date", "site_id", "date"),
        Index("ux_visits_event_id", "event_id", unique=True),
        # A filtered report finds its sessions' events through this (reports/raw.py).
        Index("ix_visits_session_id", "session_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # Assigned when the event is accepted, so a replay after a crash is stored once.
    event_id: Mapped[str | None] = mapped_column(String(32))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    date: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    event: Mapped[str] = mapped_column(String(120), default="pageview")
    url: Mapped[str] = mapped_column(Text)
    browser_version: Mapped[str | None] = mapped_column(String(32))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    postal_code: Mapped[str | None] = mapped_column(String(32))
    country_name: Mapped[str | None] = mapped_column(String(128))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    pathname: Mapped[str | None] = mapped_column(String(2048))
    os_version: Mapped[str | None] = mapped_column(String(32))
    screen_width: Mapped[int | None] = mapped_column(Integer)
    visitor_id: Mapped[int | None] = mapped_column(BigInteger)
    session_id: Mapped[int | None] = mapped_column(BigInteger)
    props: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    site: Mapped[Site] = relationship(back_populates="visits")

    @property
    def location(self) -> str:
        """Return "City, ZIP" with missing parts left out; never "None"."""
        return ", ".join(part for part in (self.city, self.postal_code) if part)


class SharedLink(db.Model):  # type: ignore[name-defined]
    """A secret, revocable, read-only link to a site's dashboard, optionally with a password."""

    __tablename__ = "shared_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    # The link's secret part: 32 random bytes, URL-safe. Revoking deletes the row.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Origins (scheme://host[:port]) allowed to show the dashboard in a frame, one per line;
    # empty: no site may frame it (clickjacking). See security.py.
    embed_origins: Mapped[str] = mapped_column(Text, default="", server_default="")

    site: Mapped[Site] = relationship()

    @property
    def origins(self) -> list[str]:
        """Return the origins allowed to embed this dashboard."""
        return [line for line in self.embed_origins.splitlines() if line]
