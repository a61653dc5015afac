"""Helpers shared by the stats, events and export tests: events at chosen times (through the
real writer, or as rows), a frozen clock for the API, and a snapshot of everything stored."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from flask_tracking.events import current_store, schema
from flask_tracking.events.tables import tables
from flask_tracking.events.zones import local_day
from flask_tracking.extensions import db
from flask_tracking.ingest import drain
from flask_tracking.ingest.records import EventRecord
from flask_tracking.tracking.models import Site
from flask_tracking.users import accounts, apikeys
from tests.api.conftest import bearer
from tests.conftest import PASSWORD

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

# Visitors: addresses the bundled GeoLite2 database places, with a browser and a screen each.
GB = {"ip": "81.2.69.142", "user_agent": FIREFOX, "width": 1440}  # Willesden, England
US = {"ip": "24.24.24.24", "user_agent": SAFARI, "width": 390}  # Syracuse, New York
SE = {"ip": "89.160.20.112", "user_agent": CHROME, "width": 1920}  # Stockholm
FR1 = {"ip": "90.0.0.1", "user_agent": CHROME, "width": 1920}  # Saturargues, Occitanie
FR2 = {"ip": "2.2.2.2", "user_agent": FIREFOX, "width": 1440}  # France, no city


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> Any:
    """Return an aware UTC datetime."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def spool_event(
    app: Flask,
    site_id: int,
    who: dict[str, Any],
    at: datetime,
    path: str,
    *,
    host: str = "https://a.example",
    **extra: Any,
) -> None:
    """Spool one event as the collector would have, at a chosen time (the caller drains)."""
    fields = {"name": "pageview", **who, **extra}
    record = EventRecord(
        event_id=uuid.uuid4().hex,
        site_id=site_id,
        timestamp_ms=int(at.timestamp() * 1000),
        url=host + path,
        **fields,
    )
    app.extensions["ingest"].spool.append(record.to_line())


def add_visits(app: Flask, site_id: int, rows: list[dict[str, Any]]) -> list[int]:
    """Store event rows directly (no enrichment), with the old model's field names; return
    their ids in order. Sessions and markers are derived as for collected events."""
    fields = {
        "name": ("event", "pageview"),
        "page": ("pathname", "/"),
        "url": ("url", "https://a.example/"),
        "ref": ("referrer", None),
        "ip": ("ip_address", None),
        "source": ("referrer_source", None),
        "country": ("country_code", None),
        "postal": ("postal_code", None),
        "screen": ("screen_size", None),
        "hostname": ("hostname", "a.example"),
    }
    with app.app_context():
        store = current_store()
        site = db.session.get(Site, site_id)
        assert site is not None
        zone = ZoneInfo(site.timezone)
        e = tables(store.engine).recent.c
        last = store.fetch(select(func.max(e.eid)).where(e.site_id == site_id))[0][0] or 0
        events = tables(store.engine).events.c
        last = max(
            last,
            store.fetch(select(func.max(events.eid)).where(events.site_id == site_id))[0][0] or 0,
        )
        columns: dict[str, list[Any]] = {column.name: [] for column in schema.RECENT}
        ids = []
        for number, row in enumerate(rows, start=1):
            ts = int(row["date"].timestamp() * 1000)
            values: dict[str, Any] = {
                "site_id": site_id,
                "ts": ts,
                "eid": last + number,
                "visitor": row.get("visitor_id") or number,
                "day": local_day(zone, ts),
                "width": row.get("screen_width") or 0,
                "props": json.dumps(row["props"]) if row.get("props") else "",
            }
            for name, (old, default) in fields.items():
                values[name] = row.get(old, default)
            values["pv"] = values["name"] in ("pageview", "PageLoad")
            if row.get("latitude") is not None:
                values["coordinates"] = f"{row['latitude']:.4f},{row['longitude']:.4f}"
            for column in schema.RECENT:
                if column.name not in values:
                    values[column.name] = row.get(column.name)
                columns[column.name].append(values[column.name])
            ids.append(last + number)
        key = uuid.uuid4().hex
        store.stage(key, columns)  # type: ignore[attr-defined]
        store.commit_load(key)  # type: ignore[attr-defined]
    drain(app)
    return ids


def new_site(
    app: Flask, *, scope: str = apikeys.READ_WRITE, email: str | None = None, **site: Any
) -> tuple[int, dict[str, str]]:
    """Register an owner in `app` with one site (attributes `site`); return it and a key."""
    with app.app_context():
        owner = accounts.register(email or f"{uuid.uuid4().hex[:12]}@example.com", PASSWORD)
        row = Site(owner_id=owner.id, **{"base_url": "https://a.example", **site})
        db.session.add(row)
        db.session.commit()
        _key, secret = apikeys.create_key(owner, "test", scope, None)
        return row.id, bearer(secret)


def key_for(app: Flask, site_id: int, scope: str = apikeys.READ_WRITE) -> dict[str, str]:
    """Return the headers of another key of the site's owner (for all their sites)."""
    with app.app_context():
        site = db.session.get(Site, site_id)
        assert site is not None
        _key, secret = apikeys.create_key(site.owner, "another", scope, None)
        return bearer(secret)


def update_site(app: Flask, site_id: int, **changes: Any) -> None:
    """Change a site's columns directly."""
    with app.app_context():
        site = db.session.get(Site, site_id)
        assert site is not None
        for name, value in changes.items():
            setattr(site, name, value)
        db.session.commit()


def freeze(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """Make the API's stats and export views believe it is `moment`."""

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return moment.astimezone(tz) if tz is not None else moment.replace(tzinfo=None)

    monkeypatch.setattr("flask_tracking.api.stats.datetime", Frozen)


def error_of(response: TestResponse, status: int) -> dict[str, Any]:
    """Return the error of an envelope answer, checking its status and shape."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"status", "code", "message", "details"}
    assert error["status"] == status
    assert isinstance(error["message"], str) and error["message"]
    return error


def snapshot(app: Flask) -> dict[str, Any]:
    """Return every stored row of every table (but a key's last use) and the spool's size."""
    state: dict[str, Any] = {}
    with app.app_context():
        for table in db.metadata.sorted_tables:
            columns = [
                c
                for c in table.columns
                if not (table.name == "api_keys" and c.name == "last_used_at")
            ]
            rows = db.session.execute(select(*columns).order_by(*table.primary_key.columns))
            state[table.name] = [tuple(row) for row in rows]
        db.session.rollback()
        store = current_store()
        t = tables(store.engine)
        for name in ("recent", "events", "sessions", "drops"):
            table = getattr(t, name)
            state[f"store {name}"] = sorted(store.fetch(select(table)))
    spool = app.config["SPOOL_DIR"]
    state["spool bytes"] = sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _dirs, names in os.walk(spool)
        for name in names
        if not name.endswith(".lock")
    )
    return state
