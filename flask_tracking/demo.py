"""Demo data: a user and a site with two months of realistic visits, goals and a funnel."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from flask import current_app

from flask_tracking.database import writing
from flask_tracking.extensions import db
from flask_tracking.ingest import current_ingest, drain_unless_served
from flask_tracking.ingest.records import EventRecord
from flask_tracking.reports.goals import Goal
from flask_tracking.tracking.funnels import add_funnel
from flask_tracking.tracking.goals import add_goal
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
WIDTHS = (390, 414, 820, 1280, 1440, 1920, 2560)
# Where visits come from (None: typed in, or a bookmark), and how often.
REFERRERS = (
    (None, 30),
    ("https://www.google.com/", 30),
    ("https://duckduckgo.com/", 8),
    ("https://www.bing.com/", 4),
    ("https://news.ycombinator.com/", 6),
    ("https://github.com/flask-tracking", 6),
    ("https://t.co/abc", 3),
    ("https://www.reddit.com/r/selfhosted/", 4),
)
NEWSLETTER = "?utm_source=newsletter&utm_medium=email&utm_campaign=launch"
# Journeys through the site (pages in order) and how common each is.
JOURNEYS = (
    (("/",), 20),
    (("/", "/pricing"), 12),
    (("/", "/pricing", "/signup"), 5),
    (("/blog/",), 6),
    (("/blog/self-hosted-analytics",), 14),
    (("/blog/self-hosted-analytics", "/", "/pricing"), 5),
    (("/docs/", "/docs/install"), 10),
    (("/docs/install",), 8),
    (("/", "/about", "/contact"), 3),
    (("/pricing",), 6),
)
# Visits per hour of the day (site time): quiet nights, a morning peak, an evening one.
HOURS = (2, 1, 1, 1, 1, 2, 4, 7, 10, 12, 13, 12, 10, 11, 11, 10, 9, 9, 10, 11, 10, 8, 5, 3)
# Monday .. Sunday: weekends are quieter.
WEEKDAYS = (1.0, 1.05, 1.05, 1.0, 0.9, 0.6, 0.55)
GROWTH_PER_DAY = 0.006  # the site grows, so a period compares well with the one before
LONGEST_VISIT = timedelta(minutes=45)
GOALS = (
    Goal("Signup", "event", event="Signup"),
    Goal("Saw pricing", "page", path="/pricing"),
    Goal("Read the docs", "page", path="/docs/**"),
)
FUNNEL = ("Pricing to signup", ("Saw pricing", "Signup"))


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What create_demo made."""

    site_url: str
    visits: int
    pageviews: int = 0
    custom_events: int = 0
    # False when the account already existed with another password, which is kept as it was.
    password_works: bool = True
    # True when a running server's writer stores the visits (within seconds), not this command.
    handed_over: bool = False


def create_demo(
    email: str, password: str, days: int = 60, visits: int = 3000, seed: int | None = None
) -> DemoResult:
    """Create (or reuse) the demo user and site (with goals and a funnel), and add `visits`
    generated visits over the last `days` days: weekly and daily cycles, growth, journeys
    through the site with custom events on the way. The same `seed` makes the same visits
    (at the same moments: run twice, they would be one visitor's); None makes new ones."""
    with writing():  # reads, then writes: on SQLite, take the write lock first
        user = accounts.find_user(email)
        password_works = True
        if user is None:
            user = accounts.register(email, password, "Demo", verified=True)
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
        _goals_and_funnel(site)
    now = datetime.now(UTC)
    traffic = Traffic(random.Random(seed), now, days)
    spool = current_ingest().spool
    pageviews = custom = 0
    for _ in range(visits):
        for record in traffic.visit(site.id):
            spool.append(record.to_line())
            if record.name == "pageview":
                pageviews += 1
            else:
                custom += 1
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # not the proxy
    handed_over = drain_unless_served(app) is None
    return DemoResult(SITE_URL, visits, pageviews, custom, password_works, handed_over)


def _goals_and_funnel(site: Site) -> None:
    """Give the demo site its goals and funnel, unless it has them (by name) already."""
    have = {row.name: row for row in site.goals}
    for goal in GOALS:
        if goal.name not in have:
            have[goal.name] = add_goal(site, goal)
    name, steps = FUNNEL
    if not any(row.name == name for row in site.funnels):
        add_funnel(site, name, [have[step].id for step in steps])


class Traffic:
    """Generated visits between `now - days` and `now` (UTC, the demo site's zone)."""

    def __init__(self, rng: random.Random, now: datetime, days: int) -> None:
        self.rng = rng
        self.now = now
        self.since = now - timedelta(days=days)
        first = self.since.date()
        self.days = [first + timedelta(days=n) for n in range((now.date() - first).days + 1)]
        # A day's share: growth, the weekday, some noise, and how much of it is in the window.
        self.weights = [
            (1 + GROWTH_PER_DAY) ** n
            * WEEKDAYS[day.weekday()]
            * rng.lognormvariate(0, 0.12)
            * self._open_hours(day)
            for n, day in enumerate(self.days)
        ]
        self.used: set[tuple[date, str, str]] = set()  # one visit per visitor and day

    def _window(self, day: date) -> tuple[datetime, datetime]:
        """The moments a visit may start on `day`: inside the window, and over before now."""
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return max(midnight, self.since), min(midnight + timedelta(days=1), self.now) - (
            LONGEST_VISIT
        )

    def _open_hours(self, day: date) -> float:
        start, end = self._window(day)
        if end <= start:
            return 0.0
        return (
            sum(
                HOURS[hour]
                for hour in range(24)
                if start <= datetime(day.year, day.month, day.day, hour, 30, tzinfo=UTC) < end
            )
            / sum(HOURS)
            or 0.01
        )

    def visit(self, site_id: int) -> list[EventRecord]:
        """Return one visit's events, in order."""
        rng = self.rng
        (day,) = rng.choices(self.days, self.weights)
        start = self._start(day)
        ip, agent = self._visitor(day)
        width = rng.choice(WIDTHS)
        (referrer,) = rng.choices([r for r, _ in REFERRERS], [w for _, w in REFERRERS])
        (journey,) = rng.choices([j for j, _ in JOURNEYS], [w for _, w in JOURNEYS])
        tagged = referrer is None and rng.random() < 0.15  # the newsletter's links

        def event(at: datetime, path: str, name: str = "pageview", **props: str) -> EventRecord:
            return EventRecord(
                event_id=uuid.uuid4().hex,
                site_id=site_id,
                timestamp_ms=int(at.timestamp() * 1000),
                name=name,
                url=SITE_URL + path,
                referrer=referrer if at == start and name == "pageview" else None,
                width=width,
                ip=ip,
                user_agent=agent,
                props=props,
            )

        records, at = [], start
        for step, path in enumerate(journey):
            records.append(event(at, path + (NEWSLETTER if tagged and step == 0 else "")))
            at += timedelta(seconds=rng.uniform(20, 240))
            if path == "/signup" and rng.random() < 0.6:
                records.append(event(at, path, "Signup", plan=rng.choice(["free", "free", "pro"])))
            elif path == "/docs/install" and rng.random() < 0.3:
                url = SITE_URL + "/downloads/flask-tracking.tar.gz"
                records.append(event(at, path, "File Download", url=url))
            elif path.startswith("/blog/") and rng.random() < 0.08:
                url = "https://github.com/flask-tracking"
                records.append(event(at, path, "Outbound Link: Click", url=url))
        return records

    def _start(self, day: date) -> datetime:
        start, end = self._window(day)
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        for _ in range(20):
            (hour,) = self.rng.choices(range(24), HOURS)
            at = midnight + timedelta(hours=hour, seconds=self.rng.uniform(0, 3600))
            if start <= at < end:
                return at
        return start + (end - start) * self.rng.random() if end > start else start

    def _visitor(self, day: date) -> tuple[str, str]:
        """An address and browser not seen yet on `day` (a visitor's id is theirs per day)."""
        for _ in range(1000):
            base = self.rng.choice(PUBLIC_IPS)
            if ":" in base:
                ip = base.rsplit(":", 1)[0] + f":{self.rng.randrange(1, 0xFFFF):x}"
            else:
                ip = base.rsplit(".", 1)[0] + f".{self.rng.randrange(1, 255)}"
            agent = self.rng.choice(USER_AGENTS)
            if (day, ip, agent) not in self.used:
                break
        self.used.add((day, ip, agent))
        return ip, agent
