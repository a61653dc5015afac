"""Flask-Tracking: self-hosted, privacy-friendly web analytics."""

from __future__ import annotations

import copy
import os
import re
from typing import Any

import platformdirs
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.utils import import_string

from flask_tracking.config import PUBLISHED_SECRET_KEYS, configuration_from_environment

__all__ = ["create_app"]


def create_app(config: type | str | None = None) -> Flask:
    """Build the application: configure, bind extensions, register everything it serves."""
    app = Flask(__name__, instance_relative_config=True)
    configure(app, config)
    configure_logging(app)
    register_extensions(app)
    register_blueprints(app)
    register_security(app)
    register_errorhandlers(app)
    register_commands(app)
    register_middleware(app)
    return app


def configure(app: Flask, config: type | str | None) -> None:
    """Load the configuration class, then let the environment override any key."""
    if config is None:
        config = configuration_from_environment()
    app.config.from_object(import_string(config) if isinstance(config, str) else config)
    # from_object copies references: give this app its own dicts and lists, so a nested
    # environment override (FLASK_TRACKING_X__y) cannot leak into the class and later apps.
    for key, value in app.config.items():
        if isinstance(value, dict | list):
            app.config[key] = copy.deepcopy(value)
    for plain in ("DATABASE_URL", "EVENTS_DATABASE_URL", "SECRET_KEY"):
        if os.environ.get(plain):
            key = "SQLALCHEMY_DATABASE_URI" if plain == "DATABASE_URL" else plain
            app.config[key] = os.environ[plain]
    app.config.from_prefixed_env("FLASK_TRACKING")
    # from_prefixed_env parses JSON, so a numeric key would arrive as an int sessions can't use.
    app.config["SECRET_KEY"] = str(app.config["SECRET_KEY"])
    app.config["DATA_DIR"] = data_directory(app)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_uri(app)
    if app.config.get("REQUIRE_SECRET_KEY"):
        refuse_default_secret(app.config)


# What the first versions kept in Flask's instance folder (inside a checkout: instance/).
LEGACY_DATA = ("flask_tracking.db", "events.duckdb", "spool")


def data_directory(app: Flask) -> str:
    """Where the app keeps its files: DATA_DIR when set; else the instance folder if an older
    version left its data there (so an upgrade finds it); else the user's data directory
    (platformdirs: ~/.local/share/flask-tracking on Linux) — never inside the package."""
    explicit = app.config.get("DATA_DIR")
    if explicit:
        return str(explicit)
    if any(os.path.exists(os.path.join(app.instance_path, name)) for name in LEGACY_DATA):
        return app.instance_path
    return platformdirs.user_data_dir("flask-tracking", appauthor=False)


def database_uri(app: Flask) -> str:
    """Return the SQLAlchemy URL, defaulting to SQLite in DATA_DIR and psycopg 3 for PG."""
    uri = str(app.config.get("SQLALCHEMY_DATABASE_URI") or "")
    if not uri:
        os.makedirs(app.config["DATA_DIR"], exist_ok=True)
        return "sqlite:///" + os.path.join(app.config["DATA_DIR"], "flask_tracking.db")
    for prefix in ("postgres://", "postgresql://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri.removeprefix(prefix)
    return uri


def refuse_default_secret(config: dict[str, Any]) -> None:
    """Stop production from starting with a missing, short, guessable or published secret key."""
    secret = str(config.get("SECRET_KEY") or "")
    advice = (
        "set SECRET_KEY to at least 16 random characters, e.g. "
        "`python -c 'import secrets; print(secrets.token_hex(32))'`"
    )
    if re.sub(r"[\s_-]+", "", secret.lower()) in PUBLISHED_SECRET_KEYS:
        raise RuntimeError(
            "Refusing to start: SECRET_KEY is a value published in tutorials or templates; "
            f"{advice}."
        )
    if len(secret) < 16 or len(set(secret)) < 8:
        raise RuntimeError(f"Refusing to start: SECRET_KEY is missing or too guessable; {advice}.")


def configure_logging(app: Flask) -> None:
    """Attach contextual console logging and the optional rotating error file."""
    from flask_tracking import logs

    logs.init_app(app)


def register_extensions(app: Flask) -> None:
    """Bind the extension singletons, the event store and the GeoIP provider to this app."""
    from flask_tracking import billing, database, events, geo, ingest, mail
    from flask_tracking.extensions import csrf, db, limiter, login_manager, migrate
    from flask_tracking.ops import metrics
    from flask_tracking.users import sso

    db.init_app(app)
    database.init_app(app)
    migrate.init_app(app, db, directory=database.MIGRATIONS_DIRECTORY, render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    geo.init_app(app)
    billing.init_app(app)
    mail.init_app(app)
    sso.init_app(app)
    events.init_app(app)
    ingest.init_app(app)
    metrics.init_app(app)


def register_blueprints(app: Flask) -> None:
    """Mount users, tracking (sites), dashboard (reports, shared links), collector (events,
    tracker script) and the JSON API (/api/v1, authenticated by bearer keys, so no CSRF)."""
    from flask_tracking.api import api
    from flask_tracking.billing.views import billing, stripe_webhook
    from flask_tracking.collector.views import collector
    from flask_tracking.dashboard import dashboard
    from flask_tracking.extensions import csrf
    from flask_tracking.imports.views import imports
    from flask_tracking.notify.views import notify
    from flask_tracking.ops.views import ops
    from flask_tracking.teams.views import members
    from flask_tracking.tracking.views import tracking
    from flask_tracking.urls import IdConverter
    from flask_tracking.users.sso_views import single_sign_on
    from flask_tracking.users.twofactor_views import two_factor
    from flask_tracking.users.views import users

    app.url_map.converters["id"] = IdConverter
    app.register_blueprint(users)
    app.register_blueprint(two_factor)
    app.register_blueprint(single_sign_on)
    app.register_blueprint(tracking)
    app.register_blueprint(members)
    app.register_blueprint(notify)
    app.register_blueprint(imports)
    app.register_blueprint(dashboard)
    app.register_blueprint(collector)
    app.register_blueprint(api)
    app.register_blueprint(ops)
    app.register_blueprint(billing)
    csrf.exempt(api)
    csrf.exempt(stripe_webhook)  # signed by Stripe instead


def register_security(app: Flask) -> None:
    """Cap URL lengths; send security headers (CSP, nosniff, framing, HSTS) with every answer."""
    from flask_tracking import security

    security.init_app(app)


def register_errorhandlers(app: Flask) -> None:
    """Send every HTTP error and unhandled exception through one handler."""
    from flask_tracking import errors

    errors.init_app(app)


def register_middleware(app: Flask) -> None:
    """Answer /api/event before Flask, and trust X-Forwarded-For only from our own proxies.

    Outermost, the collector's fast path takes the ordinary event (and tallies it for the
    metrics itself); everything else is timed by the metrics' middleware and goes through
    ProxyFix, then the event endpoint (the rest of /api/event), then Flask.
    """
    from flask_tracking.collector.endpoint import EventEndpoint
    from flask_tracking.collector.fast import FastPath
    from flask_tracking.ops.metrics import Instrumented

    app.wsgi_app = EventEndpoint(app, app.wsgi_app)  # type: ignore[method-assign]
    if int(app.config["PROXY_COUNT"]) > 0:
        # Only the last PROXY_COUNT hops of X-Forwarded-For are ours to trust.
        hops = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.wsgi_app = Instrumented(app, app.wsgi_app)  # type: ignore[method-assign]
    app.wsgi_app = FastPath(app, app.wsgi_app)  # type: ignore[method-assign]


def register_commands(app: Flask) -> None:
    """Add the flask-tracking commands (serve, demo) to the CLI."""
    from flask_tracking import cli

    cli.init_app(app)
