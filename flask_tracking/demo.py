"""Demo data: a user and a site with a few weeks of realistic visits."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app

from flask_tracking.database import writing
from flask_tracking.extensions import db
from flask_tracking.ingest import current_ingest, drain_unless_served
from flask_tracking.ingest.records import EventRecord
from flask_tracking.tracking.models import Site
from flask_tracking.users import accounts
from flask_tracking.users.passwords import verify_password

SITE_URL = "https://demo.flask-tracking.example"
# Public addresses of well-known networks (resolvers, universities, large hosts), so the
# bundled GeoIP database resolves them to real places.
PUBLIC_IPS = (
    "8.8.8.8",
    "1.1.1.1",
    "9.9.9.9",
    "208.67.222.222",
    "81.2.69.142",
    "81.2.69.160",
    "128.101.101.101",
    "128.32.0.10",
    "18.9.22.69",
    "171.64.0.1",
    "129.67.0.1",
    "134.58.0.1",
    "193.0.6.139",
    "194.109.6.66",
    "130.237.0.1",
    "131.111.8.46",
    "200.160.0.8",
    "202.12.27.33",
    "203.2.193.67",
    "210.171.224.1",
    "133.11.0.1",
    "80.67.169.12",
    "195.8.215.68",
    "62.40.97.1",
    "141.1.1.1",
    "145.97.0.1",
    "2001:4860:4860::8888",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "2001:67c:2e8:22::c100:68b",
)
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.7 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
)
PATHS = (
    "/",
    "/",
    "/",
    "/pricing",
    "/blog/",
    "/blog/self-hosted-analytics",
    "/docs/",
    "/docs/install",
    "/about",
    "/contact",
)
REFERRERS = (
    None,
    None,
    None,
    "https://www.google.com/",
    "https://duckduckgo.com/",
    "https://news.ycombinator.com/",
    "https://github.com/",
    "https://t.co/abc",
)
EVENTS = ("pageview",) * 12 + ("signup", "download")
WIDTHS = (390, 414, 820, 1280, 1440, 1920, 2560)


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What create_demo made."""

    site_url: str
    visits: int
    # False when the account already existed with another password, which is kept as it was.
    password_works: bool = True
    # True when a running server's writer stores the visits (within seconds), not this command.
    handed_over: bool = False


def create_demo(
    email: str, password: str, days: int = 28, visits: int = 3000, seed: int = 2013
) -> DemoResult:
    """Create (or reuse) the demo user and site, and add generated visits to it."""
    with writing():  # reads, then writes: on SQLite, take the write lock first
        user = accounts.find_user(email)
        password_works = True
        if user is None:
            user = accounts.register(email, password, "Demo")
        else:
            # Never overwrite an existing account's password; just tell whether this one works.
            password_works = verify_password(password, user.password_hash)
        site = db.session.scalar(
            db.select(Site).where(Site.owner_id == user.id, Site.base_url == SITE_URL)
        )
        if site is None:
            site = Site(owner=user, base_url=SITE_URL, name="Demo site")
            db.session.add(site)
            db.session.commit()
    rng = random.Random(seed)
    now = datetime.now(UTC)
    ingest = current_ingest()
    oldest = timedelta(days=days) - timedelta(hours=1)
    made = 0
    while made < visits:
        # One visitor's session: weighted towards recent days and daytime hours, 1-6 pages a
        # few minutes apart, never older than the `days` the command reports.
        start = now - min(
            timedelta(days=rng.expovariate(3 / days), hours=rng.triangular(0, 12, 4)), oldest
        )
        ip, agent, referrer = rng.choice(PUBLIC_IPS), rng.choice(USER_AGENTS), rng.choice(REFERRERS)
        for page in range(min(rng.randint(1, 6), visits - made)):
            moment = start + timedelta(minutes=page * rng.uniform(0.5, 6))
            ingest.spool.append(
                EventRecord(
                    event_id=uuid.uuid4().hex,
                    site_id=site.id,
                    timestamp_ms=int(min(moment, now).timestamp() * 1000),
                    name=rng.choice(EVENTS),
                    url=SITE_URL + rng.choice(PATHS),
                    referrer=referrer if page == 0 else None,
                    width=rng.choice(WIDTHS),
                    ip=ip,
                    user_agent=agent,
                ).to_line()
            )
            made += 1
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # not the proxy
    handed_over = drain_unless_served(app) is None
    return DemoResult(SITE_URL, visits, password_works, handed_over)
