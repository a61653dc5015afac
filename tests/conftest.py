"""Shared fixtures: an app on a freshly migrated database, clients, data factories (users,
sites, the visits an app stored), a free loopback port and the flask_tracking.geo log."""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from flask_tracking import create_app
from flask_tracking.config import TestConfiguration
from flask_tracking.events import current_store
from flask_tracking.events.tables import tables
from flask_tracking.extensions import db
from flask_tracking.geo import GeoData
from flask_tracking.ingest import drain
from flask_tracking.reports.export import StoredEvent, read
from flask_tracking.tracking.models import Site
from flask_tracking.users import accounts
from flask_tracking.users.models import User


def geolite2_2018() -> dict[str, str]:
    """Settings locating visitors with maxminddb-geolite2's GeoLite2-City of 2018: the hand
    counted data sets (and their cities) were written for that file. The app ships DB-IP's."""
    from flask_tracking.geo.providers import bundled_database_path

    return {"GEOIP_PROVIDER": "mmdb", "GEOIP_DATABASE_PATH": bundled_database_path()}


def _leg_database_url() -> str | None:
    """The PostgreSQL database of this leg (TEST_DATABASE_URL, set by .ci/run), or None.

    Under pytest-xdist each worker gets its own database beside the named one (``…_gw0``,
    created if missing), since tests truncate every table after themselves; the environment
    then names the worker's database, so servers a test starts use it too.
    """
    url = os.environ.get("TEST_DATABASE_URL") or None
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if url is None or worker is None:
        return url
    base = make_url(url)
    if base.database and base.database.endswith(f"_{worker}"):
        return url  # already this worker's (an environment inherited from a parent)
    name = f"{base.database}_{worker}"
    admin = create_engine(
        base.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    with admin.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        ).scalar()
        if not exists:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    worker_url = base.set(database=name).render_as_string(hide_password=False)
    os.environ["TEST_DATABASE_URL"] = worker_url
    return worker_url


# Set by .ci/run: the same suite then runs against a real PostgreSQL on loopback.
TEST_DATABASE_URL = _leg_database_url()
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True, scope="session")
def _clean_environment() -> Iterator[None]:
    """Keep a developer's own settings (and database!) out of the tests."""
    saved = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("FLASK_TRACKING_", "MAIL_")) or k in ("DATABASE_URL", "SECRET_KEY")
    }
    for key in saved:
        del os.environ[key]
    yield
    os.environ.update(saved)


def make_app(**overrides: Any) -> Flask:
    """Create a test app on a migrated database and its own spool, with config overrides."""
    settings = {
        "SQLALCHEMY_DATABASE_URI": TEST_DATABASE_URL or "sqlite://",
        "SPOOL_DIR": tempfile.mkdtemp(prefix="flask-tracking-spool-"),
        # Never a user's data directory, nor the checkout's instance/.
        "DATA_DIR": tempfile.mkdtemp(prefix="flask-tracking-data-"),
        **overrides,
    }
    config = type("Config", (TestConfiguration,), settings)
    app = create_app(config)
    with app.app_context():
        upgrade()
    return app


def _empty_database(app: Flask) -> None:
    shutil.rmtree(app.config["SPOOL_DIR"], ignore_errors=True)
    if os.path.basename(app.config["DATA_DIR"]).startswith("flask-tracking-data-"):
        shutil.rmtree(app.config["DATA_DIR"], ignore_errors=True)  # make_app's own
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            tables = ", ".join(t.name for t in db.metadata.sorted_tables)
            db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            db.session.commit()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app_factory() -> Iterator[Any]:
    """Build apps with particular settings; their databases are emptied afterwards."""
    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        apps.append(make_app(**overrides))
        return apps[-1]

    yield factory
    for app in apps:
        _empty_database(app)


@pytest.fixture
def app(app_factory: Any) -> Flask:
    """The application under the test configuration."""
    return app_factory()  # type: ignore[no-any-return]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client that does not keep the app context open."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A runner for the app's CLI commands."""
    return app.test_cli_runner()


@pytest.fixture
def make_user(app: Flask) -> Any:
    """Create users: make_user(email=..., password=..., name=...)."""

    def factory(
        email: str = "owner@example.com", password: str = PASSWORD, name: str = "Owner"
    ) -> User:
        with app.app_context():
            user = accounts.register(email, password, name, verified=True)
            db.session.refresh(user)  # load the attributes the commit expired, then detach
            db.session.expunge(user)
            return user

    return factory


def _add_site(app: Flask, owner_id: int, base_url: str, name: str = "") -> int:
    with app.app_context():
        site = Site(owner_id=owner_id, base_url=base_url, name=name)
        db.session.add(site)
        db.session.commit()
        return site.id


@pytest.fixture
def make_site(app: Flask) -> Any:
    """Create sites: make_site(owner, base_url=...) returns the site id."""

    def factory(owner: User, base_url: str = "https://example.com", name: str = "") -> int:
        return _add_site(app, owner.id, base_url, name)

    return factory


_owner_numbers = itertools.count(1)


@pytest.fixture
def site_in() -> Callable[..., int]:
    """Add a site to any app (one from app_factory, say): site_in(app, base_url=..., email=...).

    Registers a fresh owner (a unique email unless one is given; the password is PASSWORD)
    in that app's database, adds the site and returns its id.
    """

    def factory(app: Flask, base_url: str = "https://example.com", email: str | None = None) -> int:
        email = email or f"site-owner-{next(_owner_numbers)}@example.com"
        with app.app_context():
            owner_id = accounts.register(email, PASSWORD).id
        return _add_site(app, owner_id, base_url)

    return factory


def stored_events(app: Flask) -> list[StoredEvent]:
    """Write what the collector spooled; return every stored event of the app, oldest first."""
    drain(app)  # enrichment (the geo lookup among it) happens in the writer
    with app.app_context():
        store = current_store()
        found = [
            event
            for site_id in db.session.scalars(select(Site.id))
            for event in read(store, site_id, 0, 2**62, limit=10**9)
        ]
    return sorted(found, key=lambda event: (event.date, event.id))


@dataclass(frozen=True)
class StoredSession:
    """A stored session, its dimension values as text ("" when not set)."""

    sid: int
    vd: int
    start: datetime
    pageviews: int
    events: int
    bounce: bool
    seconds: float
    source: str
    referrer: str
    entry: str
    exit: str
    browser: str
    device: str
    screen: str
    country: str


def stored_sessions(app: Flask) -> list[StoredSession]:
    """Write what was spooled and derive; return every stored session, oldest first."""
    drain(app)
    with app.app_context():
        store = current_store()
        s = tables(store.engine).all_sessions.c
        text = store.encoding.text
        dims = {
            "source": "source",
            "referrer": "url",
            "entry": "page",
            "exit": "page",
            "browser": "browser",
            "device": "device",
            "screen": "screen",
            "country": "country",
        }
        rows = store.fetch(
            select(
                s.sid,
                s.vd,
                s.ts,
                s.pageviews,
                s.events,
                s.bounce,
                s.ms,
                *(text(s[name], kind) for name, kind in dims.items()),
            ).order_by(s.ts, s.sid)
        )
    return [
        StoredSession(
            int(sid),
            int(vd),
            datetime.fromtimestamp(ts / 1000, UTC),
            int(pageviews),
            int(events),
            bool(bounce),
            ms / 1000,
            *map(str, texts),
        )
        for sid, vd, ts, pageviews, events, bounce, ms, *texts in rows
    ]


@pytest.fixture
def visits_in() -> Callable[[Flask], list[StoredEvent]]:
    """visits_in(app): write what the collector spooled, then the app's events, oldest first."""
    return stored_events


def count_rows(app: Flask, table: Any) -> int:
    """Write what was spooled and derive; count a model's rows (SQL), or a store table's by
    name ("events" and "sessions" count open and closed days alike)."""
    drain(app)
    with app.app_context():
        if not isinstance(table, str):
            return db.session.scalar(select(func.count()).select_from(table)) or 0
        store = current_store()
        t = tables(store.engine)
        source = {"events": t.all_events, "sessions": t.all_sessions}.get(table)
        source = source if source is not None else getattr(t, table)
        return int(store.fetch(select(func.count()).select_from(source))[0][0] or 0)


def drop_counts(app: Flask) -> dict[tuple[int, str], int]:
    """Write what was spooled; return the dropped-event counts per (site, reason)."""
    drain(app)
    with app.app_context():
        store = current_store()
        d = tables(store.engine).drops.c
        rows = store.fetch(
            select(d.site_id, d.reason, func.sum(d.count)).group_by(d.site_id, d.reason)
        )
        return {(int(site), str(reason)): int(count) for site, reason, count in rows}


@pytest.fixture
def row_count() -> Callable[[Flask, Any], int]:
    """row_count(app, Model or "events"): write what was spooled, then count rows."""
    return count_rows


@pytest.fixture
def unused_port() -> int:
    """A loopback port that nothing listens on (bound, then released, by the OS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def los_angeles() -> GeoData:
    """What the fake geo services of the tests answer, as the GeoData it should become."""
    return GeoData(
        city="Los Angeles",
        postal_code="90001",
        region="California",
        country_code="US",
        country_name="United States",
        latitude=34.05,
        longitude=-118.25,
    )


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def geo_log() -> Iterator[list[logging.LogRecord]]:
    """Records logged by flask_tracking.geo at WARNING and above."""
    # Listen on the geo logger itself: once an app is created elsewhere in the session,
    # "flask_tracking" stops propagating to the root logger that caplog listens on.
    logger = logging.getLogger("flask_tracking.geo")
    handler = _ListHandler()
    saved_level = logger.level
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(saved_level)


class AuthActions:
    """Log in and out through the real forms."""

    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def login(
        self, email: str = "owner@example.com", password: str = PASSWORD, **kwargs: Any
    ) -> Any:
        return self._client.post("/login/", data={"email": email, "password": password}, **kwargs)

    def logout(self) -> Any:
        return self._client.post("/logout/")


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    """Login/logout helpers bound to the test client."""
    return AuthActions(client)


@pytest.fixture
def owner(make_user: Any) -> User:
    """A registered user, not logged in."""
    return make_user()  # type: ignore[no-any-return]


@pytest.fixture
def logged_in(owner: User, auth: AuthActions) -> User:
    """The owner, logged in on the test client."""
    response = auth.login()
    assert response.status_code == 302
    return owner


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests marked slow first (keeping the order within each group), so that under
    pytest-xdist the two workers are not left waiting on one long test at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
