"""Generate realistic, deterministic analytics data for report benchmarks.

    .venv/bin/python bench/generate.py --database-url sqlite:///bench/data/events-1m.db \\
        --events 1000000 --days 365 --paths 1000 --seed 1 [--timezone Europe/Paris]

Migrates the SQL database (accounts and sites), adds the user bench@example.com and one site
(https://bench.example), then stores `--events` events over the `--days` local days before
`--end` in the event store (`--events-url`, by default a DuckDB file beside an SQLite
database: bench/data/events-1m.duckdb), and lets the store derive sessions, markers and
rollups as the writer does once a day is over. The same arguments always give the same rows:
random.Random instances seeded from --seed (and fixed strings, for the page and referrer
lists) drive everything, and nothing reads the clock or the global RNG.

What the traffic looks like: sessions of 1-10 pageviews (about 45% bounces) 5-300 s apart,
some with custom events; Zipf-distributed pages and referrers (40% direct), some UTM
campaigns; a daily curve peaking in the local afternoon, quieter weekends, a few spikes and
growth over the range; desktop/mobile/tablet browsers with matching screen widths; visitors
from ~40 countries. A third of the sessions come from a pool of returning people, whose
visitor id changes every UTC day, as the daily salt makes it change in production.

Two ways to store them:

* bulk (default): the rows are enriched here with the writer's own steps (URL, referrer,
  User-Agent, screen, GeoIP) and loaded into the store in chunks through its bulk-load path
  (stage, then commit: dimension values are encoded in SQL). They are what the pipeline would
  store, except that visitor ids are hashes of (person, UTC day) instead of salted
  (IP, User-Agent) ones.
* --through-pipeline (small sizes): the raw events go to the spool as the collector writes
  them (with their generated timestamps) and the real writer stores them. Its visitor ids
  come from the writer's salt, so they differ from run to run (see README).
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import ipaddress
import math
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from flask import Flask

SITE_URL = "https://bench.example"
EMAIL = "bench@example.com"
PASSWORD = "bench-password"  # noqa: S105 - a local benchmark account
DEFAULT_END = date(2026, 11, 1)  # fixed, so the data never depends on the day it is made
CHUNK_EVENTS = 50_000
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
PIPELINE_SUGGESTED_MAX = 200_000

Row = dict[str, Any]

# -- what visitors look like ----------------------------------------------------------------

# Country, share of sessions, and one network per city (largest city first). The networks are
# blocks of maxminddb-geolite2's GeoLite2-City database (2018-07-03) with a city and a region,
# so every address inside resolves to the same place: --through-pipeline picks hosts in them.
COUNTRIES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("US", 26.0, ("3.184.0.0/19", "4.7.30.0/24", "3.94.46.0/24", "3.75.160.0/19", "4.14.132.0/23")),
    ("DE", 8.0, ("2.201.88.0/23", "2.200.208.0/20", "2.164.24.0/21", "2.163.20.0/22")),
    ("GB", 7.0, ("2.16.37.0/24", "2.24.247.0/24", "2.24.236.0/24", "2.27.119.0/24")),
    ("IN", 6.0, ("1.22.42.0/23", "1.6.0.0/22", "1.22.34.0/24", "1.22.32.0/24")),
    ("FR", 4.5, ("2.2.70.0/24", "5.49.46.0/23", "2.3.21.0/24", "2.6.12.0/23")),
    ("CA", 4.0, ("4.16.53.0/24", "4.28.136.0/24", "23.17.0.0/21", "17.45.22.0/23")),
    ("BR", 3.5, ("17.43.176.0/21", "32.59.1.0/24", "45.6.128.0/22")),
    ("NL", 2.5, ("5.2.68.0/24", "5.104.136.0/22", "5.35.168.0/22")),
    ("JP", 2.5, ("1.0.16.0/20", "1.21.64.0/20", "1.21.106.0/23")),
    ("ES", 2.2, ("2.136.18.0/23", "2.136.14.0/24", "2.137.74.0/24")),
    ("IT", 2.2, ("2.32.0.0/22", "2.32.33.0/24", "2.32.42.0/24")),
    ("AU", 2.0, ("1.40.215.0/24", "1.178.4.0/22", "1.120.96.0/22")),
    ("PL", 1.8, ("5.60.108.0/22", "5.60.0.0/21", "5.39.192.0/21")),
    ("MX", 1.3, ("8.14.224.0/19", "4.18.66.0/23", "38.123.68.0/24")),
    ("SE", 1.3, ("2.22.60.0/24", "2.64.40.0/23")),
    ("ID", 1.2, ("23.248.168.0/22", "36.66.192.0/20")),
    ("CH", 1.2, ("5.132.141.0/24", "20.38.152.0/21", "5.149.16.0/22")),
    ("AT", 1.0, ("5.11.2.0/23", "5.206.204.0/22")),
    ("BE", 1.0, ("17.67.208.0/22", "5.23.131.0/24")),
    ("TR", 1.0, ("5.24.64.0/21", "5.23.120.0/21")),
    ("KR", 1.0, ("1.11.72.0/21", "1.11.244.0/22")),
    ("SG", 0.8, ("5.10.194.0/24",)),
    ("AR", 0.8, ("23.237.23.0/24", "24.232.17.0/24")),
    ("IE", 0.8, ("5.34.247.0/24", "17.64.0.0/19")),
    ("UA", 0.8, ("5.53.112.0/24", "5.1.2.0/23", "5.1.20.0/23")),
    ("ZA", 0.7, ("13.106.204.0/23", "13.106.208.0/23", "41.0.16.0/23")),
    ("PT", 0.7, ("2.80.240.0/23", "2.80.8.0/22")),
    ("DK", 0.7, ("2.71.176.0/22", "2.104.112.0/23")),
    ("CZ", 0.7, ("5.45.56.0/22", "31.30.51.0/24")),
    ("IL", 0.7, ("2.53.19.0/24", "2.52.192.0/22")),
    ("PH", 0.7, ("27.110.128.0/17", "43.250.224.0/22")),
    ("TW", 0.6, ("1.32.194.0/24", "1.34.168.0/21")),
    ("NG", 0.6, ("41.58.0.0/22",)),
    ("CO", 0.6, ("23.232.253.0/24", "17.45.148.0/22")),
    ("NO", 0.6, ("2.148.64.0/22", "5.45.152.0/22")),
    ("FI", 0.6, ("5.23.60.0/23", "5.250.160.0/22")),
    ("RO", 0.6, ("5.2.128.0/21", "5.2.192.0/24")),
    ("VN", 0.6, ("1.52.0.0/21", "1.52.8.0/21")),
    ("HK", 0.5, ("1.36.0.0/22", "1.36.18.0/23")),
    ("NZ", 0.5, ("14.1.36.0/23", "27.123.23.0/24")),
    ("CL", 0.4, ("17.43.132.0/22",)),
    ("GR", 0.4, ("2.84.0.0/22", "2.85.0.0/23")),
    ("HU", 0.4, ("5.38.128.0/22",)),
)
# Within a country the first city gets the most visitors.
CITY_WEIGHTS = (0.45, 0.22, 0.15, 0.1, 0.08)

# User-Agent templates with their share within the device type, and the versions seen.
DEVICES = (("desktop", 0.55), ("mobile", 0.40), ("tablet", 0.05))
_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"
_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)"
_WEBKIT = "AppleWebKit/537.36 (KHTML, like Gecko)"
_SAFARI = "AppleWebKit/605.1.15 (KHTML, like Gecko)"
USER_AGENTS: dict[str, tuple[tuple[str, float, tuple[int, ...]], ...]] = {
    "desktop": (
        (f"{_WIN} {_WEBKIT} Chrome/{{v}}.0.0.0 Safari/537.36", 34, (128, 129, 130, 131)),
        (f"{_WIN} {_WEBKIT} Chrome/{{v}}.0.0.0 Safari/537.36 Edg/{{v}}.0.0.0", 11, (129, 130, 131)),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
            5,
            (131, 132, 133),
        ),
        (f"{_MAC} {_WEBKIT} Chrome/{{v}}.0.0.0 Safari/537.36", 16, (129, 130, 131)),
        (f"{_MAC} {_SAFARI} Version/{{v}}.1 Safari/605.1.15", 20, (17, 18)),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
            3,
            (132, 133),
        ),
        (
            f"Mozilla/5.0 (X11; Linux x86_64) {_WEBKIT} Chrome/{{v}}.0.0.0 Safari/537.36",
            6,
            (130, 131),
        ),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0", 5, (132, 133)),
    ),
    "mobile": (
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS {v}_1 like Mac OS X) "
            f"{_SAFARI} Version/{{v}}.1 Mobile/15E148 Safari/604.1",
            44,
            (17, 18),
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) "
            f"{_SAFARI} CriOS/{{v}}.0.6778.73 Mobile/15E148 Safari/604.1",
            5,
            (130, 131),
        ),
        (
            f"Mozilla/5.0 (Linux; Android 14; K) {_WEBKIT} Chrome/{{v}}.0.0.0 Mobile Safari/537.36",
            37,
            (129, 130, 131),
        ),
        (
            f"Mozilla/5.0 (Linux; Android 14; SM-S918B) {_WEBKIT} SamsungBrowser/{{v}}.0 "
            "Chrome/125.0.0.0 Mobile Safari/537.36",
            11,
            (25, 26),
        ),
        ("Mozilla/5.0 (Android 14; Mobile; rv:{v}.0) Gecko/{v}.0 Firefox/{v}.0", 3, (132, 133)),
    ),
    "tablet": (
        (
            "Mozilla/5.0 (iPad; CPU OS {v}_1 like Mac OS X) "
            f"{_SAFARI} Version/{{v}}.1 Mobile/15E148 Safari/604.1",
            65,
            (17, 18),
        ),
        (
            f"Mozilla/5.0 (Linux; Android 13; Lenovo TB-X606F) {_WEBKIT} Chrome/{{v}}.0.0.0 "
            "Safari/537.36",
            20,
            (130, 131),
        ),
        (
            f"Mozilla/5.0 (Linux; Android 14; SM-X710) {_WEBKIT} SamsungBrowser/{{v}}.0 "
            "Chrome/125.0.0.0 Safari/537.36",
            15,
            (25, 26),
        ),
    ),
}
# innerWidth in CSS pixels (what tracker.js sends) and its share, per device type.
WIDTHS: dict[str, tuple[tuple[int, float], ...]] = {
    "desktop": (
        (1280, 8),
        (1366, 12),
        (1440, 14),
        (1536, 14),
        (1600, 6),
        (1680, 5),
        (1920, 32),
        (2560, 9),
    ),
    "mobile": ((360, 14), (375, 10), (390, 22), (393, 14), (412, 16), (414, 8), (430, 16)),
    "tablet": ((768, 30), (810, 20), (820, 25), (834, 10), (1024, 15)),
}

# Referrers in popularity order; the pick is Zipf over this list (see referrer_urls()).
NAMED_REFERRERS = (
    "https://www.google.com/",
    "https://duckduckgo.com/",
    "https://t.co/",
    "https://www.bing.com/",
    "https://news.ycombinator.com/",
    "https://www.reddit.com/r/selfhosted/",
    "https://github.com/",
    "https://www.google.de/",
    "https://www.google.co.uk/",
    "https://www.linkedin.com/",
    "https://www.ecosia.org/",
    "https://www.google.fr/",
    "https://www.facebook.com/",
    "https://search.brave.com/",
    "https://chatgpt.com/",
    "https://www.youtube.com/",
    "https://www.google.co.in/",
    "https://old.reddit.com/r/webdev/",
    "https://www.google.com.br/",
    "https://lobste.rs/",
    "https://en.wikipedia.org/",
    "https://mail.google.com/",
    "https://www.perplexity.ai/",
    "https://www.google.ca/",
    "https://search.yahoo.com/",
    "https://dev.to/",
    "https://www.google.es/",
    "https://www.qwant.com/",
    "https://l.instagram.com/",
    "https://www.google.it/",
    "https://medium.com/",
    "https://www.producthunt.com/",
    "https://yandex.ru/",
    "https://www.google.nl/",
    "https://stackoverflow.com/questions/",
    "https://www.startpage.com/",
    "https://www.google.co.jp/",
    "https://mastodon.social/",
    "https://www.heise.de/",
    "https://www.theguardian.com/technology",
    "https://arstechnica.com/",
    "https://www.theverge.com/",
    "https://techcrunch.com/",
    "https://www.golem.de/",
    "https://www.lemonde.fr/pixels/",
    "https://www.bbc.co.uk/news/technology",
    "https://outlook.live.com/",
    "https://www.baidu.com/",
    "android-app://com.google.android.gm/",
    "https://www.google.com.au/",
)
# Host names of the long tail of referrers are made of two of these.
TAIL_WORDS = (
    "tech dev code data web cloud open byte stack pixel daily weekly notes lab hub digest works "
    "garden log press"
)
# (utm_source, utm_medium, utm_campaign, utm_term, referrer, share)
CAMPAIGNS: tuple[tuple[str, str, str, str | None, str | None, float], ...] = (
    ("newsletter", "email", "weekly-digest", None, None, 30),
    ("newsletter", "email", "product-update", None, "https://mail.google.com/", 10),
    ("twitter", "social", "launch-2026", None, "https://t.co/", 12),
    ("linkedin", "social", "launch-2026", None, "https://www.linkedin.com/", 8),
    ("google", "cpc", "brand", "flask tracking", "https://www.google.com/", 14),
    ("google", "cpc", "analytics-generic", "privacy analytics", "https://www.google.com/", 10),
    ("facebook", "paid_social", "retargeting", None, "https://www.facebook.com/", 6),
    ("reddit", "social", "selfhosted-ama", None, "https://www.reddit.com/", 4),
    ("producthunt", "referral", "launch-day", None, "https://www.producthunt.com/", 3),
    ("partner-blog", "referral", "guest-post", None, "https://blog.partner-example.org/", 3),
)
CAMPAIGN_SHARE = 0.08
DIRECT_SHARE = 0.40
RETURNING_SHARE = 0.35  # sessions by someone from the pool of returning people
# Pageviews per session: 45% one, then geometric-ish up to 10.
PAGEVIEW_WEIGHTS = (45.0, *(55.0 * 0.3 * 0.7**k for k in range(9)))
CUSTOM_EVENT_COUNTS = ((0, 80.0), (1, 15.0), (2, 5.0))
PLAN_PRICES = {"pro": 19.0, "team": 49.0}  # a Signup's "amount" property, per plan
CUSTOM_EVENTS: tuple[tuple[str, str, tuple[str, ...], float], ...] = (
    ("Signup", "plan", ("free", "free", "free", "pro", "pro", "team"), 30),
    ("Download", "file", ("whitepaper.pdf", "flask-tracking-1.4.tar.gz", "report-2026.pdf"), 30),
    (
        "Outbound Link: Click",
        "url",
        (
            "https://github.com/flask-tracking/flask-tracking",
            "https://pypi.org/project/flask-tracking/",
            "https://docs.python.org/3/",
            "https://flask.palletsprojects.com/",
            "https://www.postgresql.org/docs/",
        ),
        40,
    ),
)
# Local-time shapes: weekday factors (Monday first), the afternoon peak, growth, spikes.
WEEKDAY_FACTORS = (1.0, 1.05, 1.05, 1.0, 0.9, 0.62, 0.68)
PEAK_HOUR = 15.0
GROWTH = 1.8  # traffic at the end of the range relative to its start
SPIKE_CHANCE = 1 / 45  # a day on a front page now and then
SPIKE_FACTOR = 2.5


# -- the generated events -------------------------------------------------------------------


class Person(NamedTuple):
    """Who visits: fixed browser, screen and city (and so the same context every visit)."""

    number: int
    agent: int  # index into Model.user_agents
    width: int
    network: int  # index into Model.networks


class RawEvent(NamedTuple):
    """One event as the tracker would send it; sorted by (ms, seq)."""

    ms: int
    seq: int
    event_id: str
    name: str
    url: str
    referrer: str | None
    props: dict[str, Any] | None
    person: Person


@dataclass(frozen=True)
class Settings:
    """What to generate."""

    events: int
    days: int
    paths: int
    seed: int
    timezone: str
    end: date


class Cumulative:
    """Weighted choice by bisecting cumulative weights: one random() per pick."""

    def __init__(self, items: list[Any], weights: list[float]) -> None:
        self.items = items
        self.cumulative: list[float] = []
        total = 0.0
        for weight in weights:
            total += weight
            self.cumulative.append(total)
        self.total = total

    def pick(self, rng: random.Random) -> Any:
        """Return one item."""
        index = bisect.bisect_right(self.cumulative, rng.random() * self.total)
        return self.items[min(index, len(self.items) - 1)]


def zipf(items: list[Any], exponent: float) -> Cumulative:
    """Pick items with probability proportional to 1 / rank**exponent."""
    return Cumulative(items, [1.0 / (rank**exponent) for rank in range(1, len(items) + 1)])


def site_paths(count: int) -> list[str]:
    """Return `count` distinct page paths, most popular first."""
    core = [
        "/",
        "/pricing",
        "/docs/",
        "/blog/",
        "/features",
        "/docs/getting-started",
        "/about",
        "/signup",
        "/login",
        "/changelog",
        "/integrations",
        "/contact",
        "/privacy",
        "/docs/api",
        "/careers",
    ]
    sections = ("install", "configuration", "tracking", "reports", "api", "self-hosting", "faq")
    integrations = ("wordpress", "ghost", "hugo", "nextjs", "django", "shopify", "webflow")
    tail: list[str] = []
    number = 0
    while len(core) + len(tail) < count:
        number += 1
        kind = number % 5
        if kind in (0, 1, 2):
            tail.append(f"/blog/post-{number}")
        elif kind == 3:
            tail.append(f"/docs/{sections[number % len(sections)]}/topic-{number}")
        else:
            tail.append(f"/integrations/{integrations[number % len(integrations)]}-{number}")
    # A fixed shuffle, so popular blog posts and docs pages interleave down the ranking.
    random.Random("bench-paths").shuffle(tail)
    return (core + tail)[:count]


def referrer_urls() -> list[str]:
    """Return a few hundred referrers: the named ones, then a long tail of blogs and news."""
    words = TAIL_WORDS.split()
    tlds = ("com", "net", "org", "io", "dev", "de", "fr", "co.uk", "blog", "me")
    rng = random.Random("bench-referrers")
    tail: list[str] = []
    seen: set[str] = set()
    while len(tail) < 250:
        host = f"{rng.choice(words)}{rng.choice(words)}.{rng.choice(tlds)}"
        if host in seen:
            continue
        seen.add(host)
        tail.append(f"https://{host}/{rng.choice(('posts', 'articles', 'blog', '2026'))}/")
    return [*NAMED_REFERRERS, *tail]


def signed64(data: bytes, person: bytes) -> int:
    """Hash to a signed 64-bit int, the range of a BIGINT."""
    digest = hashlib.blake2b(data, digest_size=8, person=person).digest()
    return int.from_bytes(digest, "big", signed=True)


class Model:
    """The traffic model: which sessions start when, and what they do."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.zone = ZoneInfo(settings.timezone)
        first = settings.end - timedelta(days=settings.days)
        self.start = datetime.combine(first, clock_time(0), tzinfo=self.zone).astimezone(UTC)
        self.end = datetime.combine(settings.end, clock_time(0), tzinfo=self.zone).astimezone(UTC)
        self.start_ms = int(self.start.timestamp() * 1000)
        self.end_ms = int(self.end.timestamp() * 1000)

        self.paths = site_paths(settings.paths)
        self.page_pick = zipf(self.paths, 1.1)
        self.referrer_pick = zipf(referrer_urls(), 1.05)
        self.campaign_pick = Cumulative(list(CAMPAIGNS), [c[-1] for c in CAMPAIGNS])
        self.pageview_pick = Cumulative(list(range(1, 11)), list(PAGEVIEW_WEIGHTS))
        self.custom_count_pick = Cumulative(
            [n for n, _ in CUSTOM_EVENT_COUNTS], [w for _, w in CUSTOM_EVENT_COUNTS]
        )
        self.custom_pick = Cumulative(list(CUSTOM_EVENTS), [c[-1] for c in CUSTOM_EVENTS])

        self.user_agents: list[str] = []
        self.agent_picks: dict[str, Cumulative] = {}
        for device, templates in USER_AGENTS.items():
            indexes, weights = [], []
            for template, share, versions in templates:
                for version in versions:
                    indexes.append(len(self.user_agents))
                    weights.append(share / len(versions))
                    self.user_agents.append(template.format(v=version))
            self.agent_picks[device] = Cumulative(indexes, weights)
        self.device_pick = Cumulative([d for d, _ in DEVICES], [w for _, w in DEVICES])
        self.width_picks = {
            device: Cumulative([w for w, _ in widths], [s for _, s in widths])
            for device, widths in WIDTHS.items()
        }
        self.networks: list[ipaddress.IPv4Network] = []
        network_weights: list[float] = []
        for _country, share, cidrs in COUNTRIES:
            city_weights = CITY_WEIGHTS[: len(cidrs)]
            for cidr, city_weight in zip(cidrs, city_weights, strict=True):
                self.networks.append(ipaddress.IPv4Network(cidr))
                network_weights.append(share * city_weight / sum(city_weights))
        self.network_pick = Cumulative(list(range(len(self.networks))), network_weights)

        self.hours = self._hour_targets()
        # Returning people: about six visits each on average, some far more (exponential).
        expected_sessions = settings.events / self._mean_events_per_session()
        pool = max(20, int(expected_sessions * RETURNING_SHARE / 6))
        self.regulars = [self._new_person(number) for number in range(pool)]
        self.regular_pick = Cumulative(
            self.regulars, [self.rng.expovariate(1.0) for _ in range(pool)]
        )
        self.next_person = pool
        self.seq = 0

    # -- the shape of traffic over time --

    def _hour_targets(self) -> list[tuple[int, int, int]]:
        """Return (start ms, end ms, cumulative events to reach by its end) for every hour."""
        noise_rng = random.Random(f"{self.settings.seed}-days")
        day_factor: dict[date, float] = {}
        first = self.start.astimezone(self.zone).date()
        for offset in range(self.settings.days + 2):
            spike = SPIKE_FACTOR if noise_rng.random() < SPIKE_CHANCE else 1.0
            day_factor[first + timedelta(days=offset)] = noise_rng.lognormvariate(0, 0.12) * spike
        steps: list[tuple[int, int, float]] = []
        span = self.end_ms - self.start_ms
        at = self.start_ms
        while at < self.end_ms:
            stop = min(at + HOUR_MS, self.end_ms)
            middle = datetime.fromtimestamp((at + stop) / 2000, UTC).astimezone(self.zone)
            hour = middle.hour + middle.minute / 60
            distance = min(abs(hour - PEAK_HOUR), 24 - abs(hour - PEAK_HOUR))
            diurnal = 0.12 + math.exp(-0.5 * (distance / 4.0) ** 2)
            growth = GROWTH ** ((at - self.start_ms) / span)
            weight = (
                diurnal
                * WEEKDAY_FACTORS[middle.weekday()]
                * growth
                * day_factor[middle.date()]
                * (stop - at)
                / HOUR_MS
            )
            steps.append((at, stop, weight))
            at = stop
        total = sum(weight for _, _, weight in steps)
        targets, running = [], 0.0
        for at, stop, weight in steps:
            running += weight
            targets.append((at, stop, round(self.settings.events * running / total)))
        targets[-1] = (targets[-1][0], targets[-1][1], self.settings.events)
        return targets

    @staticmethod
    def _mean_events_per_session() -> float:
        pageviews = sum(n * w for n, w in zip(range(1, 11), PAGEVIEW_WEIGHTS, strict=True))
        custom = sum(n * w for n, w in CUSTOM_EVENT_COUNTS)
        return pageviews / sum(PAGEVIEW_WEIGHTS) + custom / sum(w for _, w in CUSTOM_EVENT_COUNTS)

    # -- people and sessions --

    def _new_person(self, number: int) -> Person:
        device = self.device_pick.pick(self.rng)
        return Person(
            number,
            self.agent_picks[device].pick(self.rng),
            self.width_picks[device].pick(self.rng),
            self.network_pick.pick(self.rng),
        )

    def _person(self) -> Person:
        if self.rng.random() < RETURNING_SHARE:
            person: Person = self.regular_pick.pick(self.rng)
            return person
        self.next_person += 1
        return self._new_person(self.next_person)

    def _landing(self) -> tuple[str, str | None]:
        """Return the first page's URL (with UTM tags, if any) and the referrer."""
        url = SITE_URL + self.page_pick.pick(self.rng)
        roll = self.rng.random()
        if roll < CAMPAIGN_SHARE:
            source, medium, campaign, term, referrer, _ = self.campaign_pick.pick(self.rng)
            url += f"?utm_source={source}&utm_medium={medium}&utm_campaign={campaign}"
            if term:
                url += "&utm_term=" + term.replace(" ", "+")
            return url, referrer
        if roll < CAMPAIGN_SHARE + DIRECT_SHARE:
            return url, None
        return url, self.referrer_pick.pick(self.rng)

    def session(self, start_ms: int) -> list[RawEvent]:
        """Return one session's events in time order, cut at the end of the range."""
        rng = self.rng
        person = self._person()
        url, referrer = self._landing()
        moments: list[int] = []
        pages: list[tuple[str, str | None]] = []
        at = start_ms
        for index in range(self.pageview_pick.pick(rng)):
            if index:
                at += int((5 + min(295.0, rng.expovariate(1 / 55))) * 1000)
                previous = url
                url = SITE_URL + self.page_pick.pick(rng)
                if url == previous:  # a reload now and then, but mostly a new page
                    url = SITE_URL + self.page_pick.pick(rng)
                referrer = previous  # document.referrer: the page before, on this site
            moments.append(at)
            pages.append((url, referrer))
        found: list[tuple[int, str, str, str | None, dict[str, Any] | None]] = [
            (moment, "pageview", page, ref, None)
            for moment, (page, ref) in zip(moments, pages, strict=True)
        ]
        for _ in range(self.custom_count_pick.pick(rng)):
            index = rng.randrange(len(moments))
            # Between this pageview and the next (pageviews are 5 s or more apart).
            room = moments[index + 1] - moments[index] if index + 1 < len(moments) else 60_000
            moment = moments[index] + rng.randrange(1000, room - 999)
            name, key, values, _ = self.custom_pick.pick(rng)
            page, ref = pages[index]
            props: dict[str, Any] = {key: rng.choice(values)}
            # A paid signup carries its first payment (a revenue goal reads it); no random
            # draw, so the rest of the data stays what the seed made before revenue existed.
            if name == "Signup" and props[key] in PLAN_PRICES:
                props["amount"] = PLAN_PRICES[props[key]]
            found.append((moment, name, page, ref, props))
        found.sort(key=lambda item: item[0])
        events = []
        for moment, name, page, ref, props in found:
            if moment >= self.end_ms:
                break
            self.seq += 1
            event_id = f"{rng.getrandbits(128):032x}"
            events.append(RawEvent(moment, self.seq, event_id, name, page, ref, props, person))
        return events

    def days(self) -> Iterator[tuple[int, list[RawEvent]]]:
        """Yield (UTC day number since the epoch, its events in time order), oldest first.

        A day is complete once every hour up to its end has been generated: sessions start
        in their hour and only run forward, so none started later can reach back into it.
        """
        pending: defaultdict[int, list[RawEvent]] = defaultdict(list)
        produced = 0
        total = self.settings.events
        for start, stop, target in self.hours:
            while produced < target:
                events = self.session(start + self.rng.randrange(stop - start))
                events = events[: total - produced]  # only the very last session is cut
                for event in events:
                    pending[event.ms // DAY_MS].append(event)
                produced += len(events)
            for day in sorted(d for d in pending if (d + 1) * DAY_MS <= stop):
                yield day, sorted(pending.pop(day))
        for day in sorted(pending):
            yield day, sorted(pending.pop(day))

    def visitor_id(self, person: Person, day: int) -> int:
        """Return a person's visitor id on a UTC day: a new one every day, as in production."""
        data = f"{self.settings.seed}:{person.number}:{day}".encode()
        return signed64(data, b"bench-visitor")

    def ip_address(self, person: Person, day: int) -> str:
        """Return a person's address on a UTC day: a host of their city's network.

        Any host of the block will do (they all resolve alike); the whole block keeps people
        who share a browser from sharing an address, and so a visitor id, too often.
        """
        network = self.networks[person.network]
        hosts = network.num_addresses - 2
        offset = 1 + signed64(f"{person.number}:{day}".encode(), b"bench-ip") % hosts
        return str(network.network_address + offset)


# -- enrichment and sessions, as the writer does them ---------------------------------------


class Enricher:
    """Builds the store's rows with the writer's own enrichment steps, cached per input."""

    def __init__(self, model: Model, site_id: int, allowed_query: frozenset[str]) -> None:
        from flask_tracking.events.zones import DayCache
        from flask_tracking.ingest import enrich
        from flask_tracking.ingest.records import EventRecord

        def record(**fields: Any) -> EventRecord:
            return EventRecord(event_id="", site_id=site_id, timestamp_ms=0, name="", **fields)

        self.enrich = enrich
        self.record = record
        self.site_id = site_id
        self.zone = model.settings.timezone
        self.days = DayCache()
        self.context = enrich.EnrichContext(b"", False, allowed_query)
        self.agents = [
            dict(enrich.user_agent_fields(record(url=SITE_URL, user_agent=agent)))
            for agent in model.user_agents
        ]
        # GeoIP of one address per network: every address of a block has the same record.
        self.places = [
            enrich.geolocation_fields(
                record(url=SITE_URL, ip=model.ip_address(Person(0, 0, 0, index), 0)),
                self.context,
            )
            for index in range(len(model.networks))
        ]
        self.screens: dict[int, Row] = {}
        self.urls: dict[str, Row] = {}
        self.sources: dict[str | None, str | None] = {}

    def row(self, event: RawEvent, visitor: int) -> Row:
        """Return the row the writer would store for this event (its id set by the caller)."""
        enrich = self.enrich
        url = self.urls.get(event.url)
        if url is None:
            url = self.urls[event.url] = enrich.url_fields(self.record(url=event.url), self.context)
        if event.referrer in self.sources:
            source = self.sources[event.referrer]
        else:
            # The source compares with the page's host: every page is on SITE_URL's host.
            source = self.sources[event.referrer] = enrich.referrer_column(
                self.record(url=SITE_URL, referrer=event.referrer), url["hostname"]
            )
        person = event.person
        screen = self.screens.get(person.width)
        if screen is None:
            screen = self.screens[person.width] = enrich.screen_fields(
                self.record(url=SITE_URL, width=person.width)
            )
        return {
            **url,
            **self.agents[person.agent],
            **screen,
            **self.places[person.network],
            "source": source,
            "site_id": self.site_id,
            "ts": event.ms,
            "day": self.days.day(self.zone, event.ms),
            "name": event.name,
            "pv": event.name in enrich.PAGEVIEW_NAMES,
            "ref": event.referrer,
            "props": enrich.props_text(event.props),
            "visitor": visitor,
            "ip": None,
        }


def day_rows(model: Model, enricher: Enricher, day: int, events: list[RawEvent]) -> list[Row]:
    """Return one UTC day's rows, in time order, as the writer would have stored them.

    Sessions are not built here: the store derives them from these rows, as for collected
    events (tests/bench/test_generate.py checks them against the 30-minute rule).
    """
    rows: list[Row] = []
    visitor_ids: dict[int, int] = {}
    for event in events:
        person = event.person.number
        visitor = visitor_ids.get(person)
        if visitor is None:
            visitor = visitor_ids[person] = model.visitor_id(event.person, day)
        rows.append(enricher.row(event, visitor))
    return rows


# -- the databases --------------------------------------------------------------------------


def geolite2_2018_path() -> str:
    """The GeoLite2-City file of maxminddb-geolite2, which COUNTRIES' networks come from."""
    from flask_tracking.geo.providers import bundled_database_path

    return bundled_database_path()


def make_app(database_url: str, events_url: str, spool_dir: str) -> Flask:
    """Create the app on these databases, whatever DATABASE_URL or FLASK_TRACKING_* say."""
    from flask_tracking import create_app
    from flask_tracking.config import BaseConfiguration

    settings = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "EVENTS_DATABASE_URL": events_url,
        "SPOOL_DIR": spool_dir,
        "INGEST_WRITER": "off",  # the pipeline mode drains explicitly
        # The model's networks are blocks of maxminddb-geolite2's GeoLite2-City (2018), each
        # one place: the same file locates them here (a dev dependency, as the benches are).
        "GEOIP_PROVIDER": "mmdb",
        "GEOIP_DATABASE_PATH": geolite2_2018_path(),
        "HASH_ROUNDS": 1_000,  # as in development: the account only serves local benchmarks
        "LOG_LEVEL": "WARNING",
        # Closing a year of days at once is a bulk job: more than the 1 GB a server's store
        # gets (10 M events ran out of it); the served store keeps its own limit.
        "EVENTS_MEMORY_LIMIT": "8GB",
    }
    saved = {
        key: os.environ.pop(key)
        for key in list(os.environ)
        if key.startswith("FLASK_TRACKING_")
        or key in ("DATABASE_URL", "SECRET_KEY", "EVENTS_DATABASE_URL")
    }
    try:
        return create_app(type("BenchConfiguration", (BaseConfiguration,), settings))
    finally:
        os.environ.update(saved)


def site_events(store: Any, site_id: int) -> int:
    """Count a site's stored events."""
    from sqlalchemy import func, select

    from flask_tracking.events.tables import tables

    e = tables(store.engine).all_events.c
    return int(store.fetch(select(func.count()).where(e.site_id == site_id))[0][0])


def prepare_site(settings: Settings, replace: bool, start: datetime) -> int:
    """Migrate, find or add the bench user and site; refuse its events unless replace."""
    from flask import current_app
    from flask_migrate import upgrade
    from sqlalchemy import select

    from flask_tracking.events import owned_store
    from flask_tracking.extensions import db
    from flask_tracking.tracking.models import Site
    from flask_tracking.users import accounts

    upgrade()
    user = accounts.find_user(EMAIL) or accounts.register(EMAIL, PASSWORD, "Bench")
    site = db.session.scalar(
        select(Site).where(Site.owner_id == user.id, Site.base_url == SITE_URL).order_by(Site.id)
    )
    if site is not None and site_events(owned_store(current_app), site.id):
        if not replace:
            raise SystemExit(
                "The bench site already has events; pass --replace to delete them and generate "
                "its data again (other sites are left alone)."
            )
        owned_store(current_app).delete_site(site.id)
    if site is None:
        site = Site(owner=user, base_url=SITE_URL, name="Bench")
        db.session.add(site)
    site.timezone = settings.timezone
    site.created_at = start  # not now: the same arguments give the same rows
    db.session.commit()
    return int(site.id)


class Loader:
    """Stages rows in the store a chunk at a time; each chunk is committed under its own key.

    The store encodes the dimension values in SQL (commit_load), far faster than row by row.
    """

    def __init__(self, store: Any, seed: int) -> None:
        from flask_tracking.events import schema

        self.store = store
        self.names = [column.name for column in schema.RECENT]
        self.seed = seed
        self.chunks = 0

    def write(self, rows: list[Row]) -> None:
        """Stage the rows and move them into the store."""
        if not rows:
            return
        self.chunks += 1
        key = f"bench-{self.seed}-{self.chunks}"
        self.store.stage(key, {name: [row.get(name) for row in rows] for name in self.names})
        self.store.commit_load(key)


# -- the two ways to store -------------------------------------------------------------------


@dataclass
class Totals:
    """What a run stored."""

    events: int = 0
    sessions: int = 0
    visitors: int = 0


def load_bulk(model: Model, store: Any, site_id: int, allowed_query: frozenset[str]) -> int:
    """Build rows here and load them a chunk of whole days at a time; return the events."""
    enricher = Enricher(model, site_id, allowed_query)
    loader = Loader(store, model.settings.seed)
    rows: list[Row] = []
    stored = 0
    for day, events in model.days():
        for row in day_rows(model, enricher, day, events):
            stored += 1
            row["eid"] = stored  # in time order, as the writer numbers a site's events
            rows.append(row)
        if len(rows) >= CHUNK_EVENTS:
            loader.write(rows)
            rows = []
            progress(stored, model.settings.events)
    loader.write(rows)
    return stored


def load_through_pipeline(app: Flask, model: Model, site_id: int, spool_dir: str) -> int:
    """Spool the raw events as the collector would, and let the real writer store them."""
    from flask_tracking.ingest import drain
    from flask_tracking.ingest.records import EventRecord
    from flask_tracking.ingest.spool import Spool

    spool = Spool(spool_dir, max_bytes=1 << 62)
    stored = spooled = 0
    for day, events in model.days():
        for event in events:
            person = event.person
            record = EventRecord(
                event_id=event.event_id,
                site_id=site_id,
                timestamp_ms=event.ms,  # the generated moment, not now
                name=event.name,
                url=event.url,
                referrer=event.referrer,
                width=person.width,
                props=event.props or {},
                ip=model.ip_address(person, day),
                user_agent=model.user_agents[person.agent],
            )
            spool.append(record.to_line())
        spooled += len(events)
        if spooled - stored >= CHUNK_EVENTS:
            spool.close()  # seal the segment, so the writer can finish and delete it
            stored += drain(app)
            progress(stored, model.settings.events)
    spool.close()
    stored += drain(app)
    if stored != spooled:
        raise SystemExit(f"the writer stored {stored} of {spooled} spooled events")
    return stored


def derive(store: Any, end: date) -> float:
    """Close every generated day (sessions, markers, rollups), as the writer does once a UTC
    day is over; return the seconds it took. Then leave the store as it is a week later in
    production — the visitor hashes kept for late events (7 days) forgotten, the file
    compacted as `flask-tracking events compact` does after a bulk load — so that its size is
    what a site of this size occupies."""
    from flask_tracking.reports import rollups

    began = time.perf_counter()
    after = datetime.combine(end + timedelta(days=2), clock_time(0), tzinfo=UTC)
    store.derive(int(after.timestamp() * 1000), rollups.build)
    elapsed = time.perf_counter() - began
    store.derive(int((after + timedelta(days=8)).timestamp() * 1000), rollups.build)
    store.compact()
    return elapsed


def count(store: Any, site_id: int, events: int) -> Totals:
    """Return what the store holds for the site: events, sessions, visitor-days."""
    from sqlalchemy import func, select

    from flask_tracking.events.tables import tables

    t = tables(store.engine)
    s, e = t.all_sessions.c, t.all_events.c
    sessions = store.fetch(select(func.count()).where(s.site_id == site_id))[0][0]
    visitors = store.fetch(select(func.count(func.distinct(e.vd))).where(e.site_id == site_id))
    return Totals(events, int(sessions), int(visitors[0][0]))


def progress(done: int, total: int) -> None:
    """One line on stderr, rewritten in place when it is a terminal."""
    if sys.stderr.isatty():
        print(f"\r{done:,} / {total:,} events", end="", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", required=True, help="SQLAlchemy URL of accounts and sites"
    )
    parser.add_argument(
        "--events-url",
        help="the event store (duckdb:///PATH); default: beside an SQLite database, .duckdb",
    )
    parser.add_argument("--events", type=int, default=100_000, help="events to generate")
    parser.add_argument("--days", type=int, default=365, help="local days before --end")
    parser.add_argument("--paths", type=int, default=1000, help="distinct page paths")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timezone", default="UTC", help="the site's IANA zone")
    parser.add_argument(
        "--end", type=date.fromisoformat, default=DEFAULT_END, help="first day after the data"
    )
    parser.add_argument("--replace", action="store_true", help="replace the bench site's data")
    parser.add_argument(
        "--through-pipeline",
        action="store_true",
        help=f"spool raw events and run the real writer (slow; <= {PIPELINE_SUGGESTED_MAX:,})",
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.days < 1 or args.paths < 1:
        parser.error("--events, --days and --paths must be positive")
    try:
        ZoneInfo(args.timezone)
    except (ValueError, KeyError):
        parser.error(f"unknown time zone {args.timezone!r}")
    if not args.events_url:
        sqlite = resolve_sqlite(args.database_url)
        if not sqlite.startswith("sqlite:////"):
            parser.error("--events-url is needed when --database-url is not an SQLite file")
        args.events_url = "duckdb:///" + str(
            Path(sqlite.removeprefix("sqlite:///")).with_suffix(".duckdb")
        )
    if not args.events_url.startswith("duckdb:///"):
        parser.error("--events-url must be duckdb:///PATH")
    return args


def resolve_sqlite(database_url: str) -> str:
    """Return the URL with a relative SQLite path made absolute, and create its directory.

    Flask-SQLAlchemy reads relative SQLite paths from the instance folder; on the command
    line they mean the current directory.
    """
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return database_url
    path = Path(url.database).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return url.set(database=str(path)).render_as_string(hide_password=False)


def resolve_events(events_url: str) -> str:
    """Return the store's URL with its path made absolute (its directory created)."""
    path = Path(events_url.removeprefix("duckdb:///")).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"duckdb:///{path}"


def generate(app: Flask, args: argparse.Namespace, settings: Settings, spool_dir: str) -> Totals:
    """Add the site, store its events, derive; print and return the totals."""
    from flask_tracking.events import owned_store
    from flask_tracking.reports import rollups

    model = Model(settings)
    with app.app_context():
        site_id = prepare_site(settings, args.replace, model.start)
    print(f"site id: {site_id}", flush=True)
    began = time.perf_counter()
    store = owned_store(app)
    # The zone the site's rows are marked in, recorded while it has none (as the writer's first
    # refresh of a new site does): without it the first `serve` re-marks every row.
    store.rezone(site_id, settings.timezone, rollups.build)
    if args.through_pipeline:
        stored = load_through_pipeline(app, model, site_id, spool_dir)
    else:
        with app.app_context():  # GeoIP lookups read the app's configuration
            allowed = frozenset(app.config["INGEST_ALLOWED_QUERY"])
            stored = load_bulk(model, store, site_id, allowed)
    loaded = time.perf_counter() - began
    derived = derive(store, settings.end)
    totals = count(store, site_id, stored)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"events: {totals.events}")
    print(f"sessions: {totals.sessions}")
    print(f"distinct visitor ids: {totals.visitors}")
    print(f"loaded in: {loaded:.1f} s ({totals.events / loaded:,.0f} events/s)")
    print(f"sessions, markers and rollups derived in: {derived:.1f} s")
    return totals


def main(argv: list[str] | None = None) -> Totals:
    """Generate and store; print the site id and the totals."""
    args = parse_args(argv)
    settings = Settings(args.events, args.days, args.paths, args.seed, args.timezone, args.end)
    if args.through_pipeline and args.events > PIPELINE_SUGGESTED_MAX:
        print(f"note: --through-pipeline with {args.events:,} events will take a while")
    database_url = resolve_sqlite(args.database_url)
    with tempfile.TemporaryDirectory(prefix="bench-spool-") as spool_dir:
        app = make_app(database_url, resolve_events(args.events_url), spool_dir)
        try:
            totals = generate(app, args, settings, spool_dir)
        finally:
            from flask_tracking.events import close_store
            from flask_tracking.extensions import db

            close_store(app)
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    return totals


if __name__ == "__main__":
    main()
