"""`flask-tracking doctor`: check a node's setup and say what to fix.

Each check gives a Finding: ok, warn (works, but not as it should for a real deployment) or
fail (something will not work), with the fix in one sentence. The same checks as /readyz for
the running parts, plus what only an operator's eye catches: the secret, the configuration,
where the data is, how old the GeoIP database is, whether the proxy setting matches the
requests the server has seen.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from flask import Flask

from flask_tracking.events import socket_path
from flask_tracking.ops import health
from flask_tracking.ops.backup import owner_answers

Level = Literal["ok", "warn", "fail"]
GEOIP_MAX_AGE = timedelta(days=92)  # about three months: address blocks move


@dataclass(frozen=True)
class Finding:
    level: Level
    what: str
    detail: str


def examine(app: Flask) -> Iterator[Finding]:
    """Every check, in the order a person would fix things."""
    config = app.config
    yield from _configuration(app)
    data = str(config["DATA_DIR"])
    if os.path.isdir(data) and os.access(data, os.W_OK):
        yield Finding("ok", "data directory", data)
    else:
        yield Finding("fail", "data directory", f"{data} is not a writable directory")
    with app.app_context():
        yield _from_check("database", health.check_database())
        yield _from_check("migrations", health.check_migrations())
        yield _from_check("spool", health.check_spool(app))
        writer = health.check_writer(app)
        if writer.ok:
            yield _from_check("writer", writer)
        else:
            yield Finding(
                "warn",
                "writer",
                f"{writer.detail}: events are stored only while `flask-tracking serve` runs",
            )
    yield _event_store(app)
    yield _geoip(app)
    yield from _proxy(app)
    yield from _mail(app)
    yield _single_sign_on(app)
    yield from _billing(app)


def _billing(app: Flask) -> Iterator[Finding]:
    """With billing on: the provider and its plans (the app would not start with a bad plans
    file), where Stripe must send its webhooks, and whether emails can reach customers."""
    provider = app.config.get("BILLING_PROVIDER", "none")
    if provider == "none":
        yield Finding("ok", "billing", "off (BILLING_PROVIDER=none)")
        return
    from flask_tracking.billing import plans_of

    plans = plans_of(app)
    names = ", ".join(f"{p.name} (v{p.version})" for p in plans)
    yield Finding("ok", "billing", f"{provider}: plans {names}; default {plans.default}")
    if provider == "local":
        yield Finding(
            "warn", "billing", "the local provider charges nothing: for development and demos"
        )
    elif app.config.get("PUBLIC_URL"):
        url = str(app.config["PUBLIC_URL"]).rstrip("/") + "/billing/webhooks/stripe"
        yield Finding("ok", "billing", f"Stripe's webhook endpoint must be {url}")
    else:
        yield Finding(
            "warn", "billing", "set PUBLIC_URL: Stripe's webhooks and return links are built on it"
        )


def _from_check(what: str, check: health.Check) -> Finding:
    facts = ", ".join(f"{k} {v}" for k, v in check.facts.items())
    return Finding(
        "ok" if check.ok else "fail", what, check.detail + (f" ({facts})" if facts else "")
    )


def _configuration(app: Flask) -> Iterator[Finding]:
    from flask_tracking import refuse_default_secret

    config = app.config
    name = os.environ.get("FLASK_TRACKING_CONFIG", "development")
    if config.get("REQUIRE_SECRET_KEY"):
        yield Finding("ok", "configuration", f"{name}")
    else:
        yield Finding(
            "warn",
            "configuration",
            f"{name}: set FLASK_TRACKING_CONFIG=production for a real deployment "
            "(secure cookies, a required secret)",
        )
    try:
        refuse_default_secret({**config, "SECRET_KEY": config.get("SECRET_KEY")})
    except RuntimeError as error:
        yield Finding("fail", "secret key", str(error).removeprefix("Refusing to start: "))
    else:
        yield Finding("ok", "secret key", "set, long and not a published one")


def _event_store(app: Flask) -> Finding:
    url = str(app.config["EVENTS_DATABASE_URL"])
    path = url.removeprefix("duckdb:///")
    socket = socket_path(app.config)
    size = f"{os.path.getsize(path) / 1e6:,.1f} MB" if os.path.isfile(path) else "not created yet"
    if owner_answers(socket):
        return Finding("ok", "event store", f"{path} ({size}), served by the running server")
    return Finding("ok", "event store", f"{path} ({size}); no server runs on it now")


def _geoip(app: Flask) -> Finding:
    provider: Any = app.extensions["geoip"]
    kind = str(app.config.get("GEOIP_PROVIDER") or "mmdb")
    if kind != "mmdb":
        return Finding("ok", "GeoIP", f"provider {kind}")
    name, built = provider.describe()
    if built is None:
        return Finding("fail", "GeoIP", f"{name} cannot be opened: visitors get no location")
    age = datetime.now(UTC) - built
    when = f"{name}, built {built:%Y-%m-%d}"
    if age > GEOIP_MAX_AGE:
        return Finding(
            "warn",
            "GeoIP",
            f"{when} ({age.days} days ago): locations drift as address blocks move; run "
            "`flask-tracking geoip update` (monthly), or set GEOIP_DATABASE_PATH to a current "
            "city database",
        )
    return Finding("ok", "GeoIP", when)


def _proxy(app: Flask) -> Iterator[Finding]:
    """Compare PROXY_COUNT with the requests the server counted (its metrics files)."""
    from flask_tracking.ops.metrics import directory_of, forwarded_counts

    count = int(app.config["PROXY_COUNT"])
    seen = forwarded_counts(directory_of(app.config))
    if not seen:
        yield Finding(
            "ok",
            "proxy",
            f"PROXY_COUNT={count}; no requests counted yet to compare it with",
        )
        return
    with_header, without = seen.get("yes", 0), seen.get("no", 0)
    if count == 0 and with_header > without:
        yield Finding(
            "warn",
            "proxy",
            f"{with_header:.0f} of {with_header + without:.0f} requests came through a proxy "
            "(X-Forwarded-For) but PROXY_COUNT=0: visitors' addresses are the proxy's; set "
            "FLASK_TRACKING_PROXY_COUNT to the number of proxies in front",
        )
    elif count > 0 and without > with_header:
        yield Finding(
            "warn",
            "proxy",
            f"PROXY_COUNT={count} but {without:.0f} of {with_header + without:.0f} requests "
            "came without X-Forwarded-For: is the app reachable around the proxy?",
        )
    else:
        yield Finding("ok", "proxy", f"PROXY_COUNT={count} matches the requests seen")


def _mail(app: Flask) -> Iterator[Finding]:
    """Where email goes, what is stuck in the outbox, and where its links point."""
    from sqlalchemy import func, select

    from flask_tracking.extensions import db
    from flask_tracking.mail.models import OutgoingMail

    config = app.config
    server = str(config.get("MAIL_SERVER") or "")
    if not server:
        yield Finding(
            "warn",
            "mail",
            "MAIL_SERVER is not set: email (password resets, address confirmations) is written "
            "to the log instead of sent",
        )
    else:
        security = "STARTTLS" if config["MAIL_USE_TLS"] else "TLS" if config["MAIL_USE_SSL"] else ""
        yield Finding(
            "ok" if security else "warn",
            "mail",
            f"{server}:{config['MAIL_PORT']} "
            + (f"with {security}" if security else "without TLS: set MAIL_USE_TLS or _SSL"),
        )
    with app.app_context():
        try:
            waiting, given_up = db.session.execute(
                select(
                    func.count().filter(
                        OutgoingMail.sent_at.is_(None), OutgoingMail.failed_at.is_(None)
                    ),
                    func.count().filter(OutgoingMail.failed_at.is_not(None)),
                )
            ).one()
        except Exception:  # the database check above already says why
            db.session.rollback()
            return
    if given_up:
        yield Finding(
            "warn", "outbox", f"{waiting} waiting, {given_up} given up (see the log's errors)"
        )
    else:
        yield Finding("ok", "outbox", f"{waiting} waiting")
    if not config.get("PUBLIC_URL"):
        yield Finding(
            "warn",
            "public URL",
            "PUBLIC_URL is not set: links in email are built on each request's Host header",
        )
    else:
        yield Finding("ok", "public URL", str(config["PUBLIC_URL"]))


def _single_sign_on(app: Flask) -> Finding:
    """Whether the OpenID Connect provider answers its discovery document, naming itself, and
    the redirect URI to register there."""
    from flask_tracking.users import sso

    issuer = app.config.get("OIDC_ISSUER")
    if not issuer:
        return Finding("ok", "single sign-on", "off (OIDC_ISSUER is not set)")
    public = app.config.get("PUBLIC_URL")
    redirect_uri = f"{str(public).rstrip('/')}/login/sso/callback" if public else None
    with app.app_context():
        try:
            sso.check_issuer(sso.client().load_server_metadata())
        except sso.Refused as refused:
            return Finding("fail", "single sign-on", str(refused))
        except Exception as error:  # unreachable, not JSON, an HTTP error: all say the same
            return Finding(
                "fail",
                "single sign-on",
                f"{issuer}/.well-known/openid-configuration could not be read ({error})",
            )
    if redirect_uri is None:
        return Finding(
            "warn",
            "single sign-on",
            f"{issuer} answers; set PUBLIC_URL so that the redirect URI registered at the "
            "provider (PUBLIC_URL/login/sso/callback) is the one this app sends",
        )
    return Finding(
        "ok", "single sign-on", f"{issuer} answers; redirect URI to register: {redirect_uri}"
    )
