"""The site dashboard in a real browser: Debian's chromium, driven by Playwright, on a live server.

A site gets forty days of generated traffic from five countries, stored through the real writer;
the owner logs in through the form and uses the page as a person would: reads the cards and the
chart (drawn by uPlot on a canvas), filters by a country, changes the range, downloads the CSV,
shares the dashboard. A second site carries HTML and script in every tracked value it can.

Every page's console errors and uncaught exceptions fail the test. Full-page screenshots are
written to test-artifacts/screenshots/ on every run, for a person to look at.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect
from sqlalchemy import select

from flask_tracking.extensions import db
from flask_tracking.ingest import drain
from flask_tracking.reports.names import country_name
from flask_tracking.tracking.models import SharedLink, Site
from flask_tracking.users import accounts
from tests.browser.conftest import CHROME, LiveServer, axe_violations
from tests.conftest import PASSWORD, geolite2_2018
from tests.reports import dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
VIEWPORT = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 5_000
OWNER = "dashboard-owner@example.com"
SITE_NAME = "Corner Shop"
DAYS_OF_DATA = 40

AGENTS = (
    CHROME,
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
)
# Country, an address the bundled GeoLite2 database places there, how many people (one user
# agent each) and how likely each is to visit on a given day: every country counts differently.
COUNTRIES = (
    ("GB", "81.2.69.142", 6, 0.40),
    ("US", "24.24.24.24", 5, 0.35),
    ("SE", "89.160.20.112", 4, 0.30),
    ("FR", "5.39.0.1", 3, 0.25),
    ("AU", "1.1.1.1", 2, 0.20),
)
JOURNEYS = (("/",), ("/", "/pricing"), ("/blog", "/", "/pricing"), ("/docs",))
REFERRERS = (None, None, "https://www.google.com/", "https://news.ycombinator.com/item?id=1")

# Tracked values are typed by strangers: each of these must stay text wherever it is shown.
XSS_PAGE = "/<img src=x onerror=window.__xss=1>"
XSS_QUOTE = '"><script>window.__xss=2</script>'
XSS_URL = "javascript:window.__xss=3"
XSS_IMG = "<img src=x onerror=window.__xss=4>"
XSS_EVENT = "<img src=x onerror=window.__xss=5>"
XSS_PROP_KEY = '"><b onmouseover=window.__xss=6>key</b>'
XSS_PROP_VALUE = "<script>window.__xss=7</script>"
XSS_SITE_NAME = "<script>window.__xss=8</script>Shop"
XSS_REFERRER = 'https://evil.example/"><script>window.__xss=2</script>'


# -- the data: generated traffic, and what the page must say about it -------------------------


@dataclass(frozen=True, slots=True)
class Person:
    """One fake visitor: an address (so a country) and a browser."""

    country: str
    ip: str
    user_agent: str

    @property
    def who(self) -> dict[str, Any]:
        return {"ip": self.ip, "user_agent": self.user_agent, "width": 1440}


@dataclass(frozen=True, slots=True)
class Visit:
    """One person's visit on one day (at most one a day, so visitors = visits)."""

    person: Person
    day: date
    pages: tuple[str, ...]


@dataclass
class Traffic:
    """The visits spooled for a site, and the numbers the dashboard must show for them."""

    today: date
    visits: list[Visit] = field(default_factory=list)

    def days(self, period_days: int) -> list[date]:
        """Return the local days of "Last N days": today and the N - 1 before it."""
        return [self.today - timedelta(days=n) for n in range(period_days - 1, -1, -1)]

    def within(self, period_days: int, country: str | None = None) -> list[Visit]:
        first = self.today - timedelta(days=period_days - 1)
        return [
            visit
            for visit in self.visits
            if first <= visit.day <= self.today and country in (None, visit.person.country)
        ]

    def visitors(self, period_days: int, country: str | None = None) -> int:
        """Visitors as the product counts them: distinct visitor ids per day, summed."""
        return len({(v.person, v.day) for v in self.within(period_days, country)})

    def pageviews(self, period_days: int) -> int:
        return sum(len(visit.pages) for visit in self.within(period_days))

    def series(self, period_days: int, country: str | None = None) -> list[int]:
        """Return the visitors of each day of the period, oldest first (the chart's points)."""
        per_day = Counter(visit.day for visit in self.within(period_days, country))
        return [per_day[day] for day in self.days(period_days)]

    def by_country(self, period_days: int) -> dict[str, int]:
        return dict(Counter(visit.person.country for visit in self.within(period_days)))


def generate(app: Flask, site_id: int, today: date) -> Traffic:
    """Spool some 600 events (280 visits, 120 custom events) over the 40 days before today
    (none today), then store them."""
    rng = random.Random(20260308)
    traffic = Traffic(today)
    people = [
        (Person(country, ip, agent), rate)
        for country, ip, count, rate in COUNTRIES
        for agent in AGENTS[:count]
    ]
    for days_ago in range(DAYS_OF_DATA, 0, -1):
        day = today - timedelta(days=days_ago)
        for index, (person, rate) in enumerate(people):
            if rng.random() >= rate:
                continue
            journey = rng.choice(JOURNEYS)
            traffic.visits.append(Visit(person, day, journey))
            start = datetime(day.year, day.month, day.day, 8, tzinfo=UTC)
            at = start + timedelta(minutes=20 * index)
            for step, page in enumerate(journey):
                referrer = rng.choice(REFERRERS) if step == 0 else None
                tagged = step == 0 and rng.random() < 0.2
                path = page + "?utm_source=newsletter&utm_medium=email" if tagged else page
                extra = {"referrer": referrer} if referrer else {}
                dataset.spool(app, site_id, person.who, at, path, **extra)
                at += timedelta(minutes=2)
            if rng.random() < 0.3:
                props = {"plan": rng.choice(["free", "pro"])}
                dataset.spool(app, site_id, person.who, at, "/pricing", name="Signup", props=props)
            if rng.random() < 0.15:
                props = {"file": "guide.pdf"}
                dataset.spool(app, site_id, person.who, at, "/docs", name="Download", props=props)
    drain(app)
    return traffic


def today_utc() -> date:
    """Return today (UTC, the site's zone); just before midnight, wait for the new day."""
    now = datetime.now(UTC)
    left = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC) - now
    if left < timedelta(seconds=60):
        time.sleep(left.total_seconds() + 0.5)
    return datetime.now(UTC).date()


@dataclass
class Served:
    """An app on a live server, its owner's site, and the traffic stored for it."""

    app: Flask
    url: str
    site_id: int
    traffic: Traffic

    @property
    def dashboard(self) -> str:
        return f"{self.url}/sites/{self.site_id}"


def serve_site(
    app_factory: Callable[..., Flask], tmp_path: Path, name: str
) -> tuple[Flask, int, LiveServer]:
    settings: dict[str, Any] = geolite2_2018()
    if not os.environ.get("TEST_DATABASE_URL"):
        # A file, not in-memory SQLite: each server thread gets its own connection.
        settings["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path}/dashboard.db"
    app = app_factory(**settings)
    with app.app_context():
        owner = accounts.register(OWNER, PASSWORD, "Dana Owner")
        site = Site(owner_id=owner.id, base_url="https://example.com", name=name)
        db.session.add(site)
        db.session.commit()
        site_id = site.id
        db.session.remove()
    return app, site_id, LiveServer(app)


@pytest.fixture
def shop(app_factory: Callable[..., Flask], tmp_path: Path) -> Iterator[Served]:
    """A site with forty days of generated traffic, on a live server."""
    app, site_id, server = serve_site(app_factory, tmp_path, SITE_NAME)
    traffic = generate(app, site_id, today_utc())
    # The scenario needs numbers that differ between ranges and filters to mean anything.
    assert 0 < traffic.visitors(7) < traffic.visitors(30) < len(traffic.visits)
    assert traffic.visitors(30, "GB") not in (0, traffic.visitors(30))
    yield Served(app, server.url, site_id, traffic)
    server.close()


@pytest.fixture
def hostile(app_factory: Callable[..., Flask], tmp_path: Path) -> Iterator[Served]:
    """A site whose name and tracked values carry HTML and script."""
    app, site_id, server = serve_site(app_factory, tmp_path, XSS_SITE_NAME)
    today = today_utc()
    yesterday = datetime.combine(today - timedelta(days=1), datetime.min.time(), UTC)
    person = Person("GB", "81.2.69.142", CHROME)
    utm = "&".join(
        f"{key}={quote(value)}"
        for key, value in (
            ("utm_source", XSS_QUOTE),
            ("utm_medium", XSS_IMG),
            ("utm_campaign", XSS_URL),
        )
    )
    spooled = [
        (person, 540, XSS_PAGE, {"referrer": XSS_URL}),
        (person, 545, XSS_PAGE, {"name": XSS_EVENT, "props": {XSS_PROP_KEY: XSS_PROP_VALUE}}),
        (Person("US", "24.24.24.24", AGENTS[1]), 600, "/?" + utm, {"referrer": XSS_REFERRER}),
        (Person("SE", "89.160.20.112", AGENTS[2]), 660, "/", {}),
    ]
    for who, minute, path, extra in spooled:
        at = yesterday + timedelta(minutes=minute)
        dataset.spool(app, site_id, who.who, at, path, **extra)
    drain(app)
    yield Served(app, server.url, site_id, Traffic(today))
    server.close()


# -- the browser side ---------------------------------------------------------------------------


@dataclass
class Tab:
    """A page in its own browser context, with its console errors, page errors and dialogs."""

    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture
def open_tab(browser: Browser) -> Iterator[Callable[..., Tab]]:
    """Open fresh Chrome contexts (no cookies shared) that record what went wrong: desktop
    and light unless asked for another `viewport` or `theme` (the system's colour scheme)."""
    contexts: list[BrowserContext] = []

    def opener(viewport: dict[str, int] = VIEWPORT, theme: str = "light") -> Tab:
        context = browser.new_context(
            user_agent=CHROME, viewport=viewport, accept_downloads=True, color_scheme=theme
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        tab = Tab(context, page)

        def on_console(message: Any) -> None:
            # Every error counts, a missing /favicon.ico's 404 too.
            if message.type == "error":
                tab.errors.append(f"console.error at {message.location}: {message.text}")

        def on_dialog(dialog: Any) -> None:
            tab.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("console", on_console)
        page.on("pageerror", lambda error: tab.errors.append(f"page error: {error}"))
        page.on("dialog", on_dialog)
        return tab

    yield opener
    for context in contexts:
        context.close()


def screenshot(page: Page, name: str) -> None:
    """Save a full-page screenshot as a test artifact (on every run, not only on failure)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"dashboard-{name}.png", full_page=True)


def log_in(tab: Tab, served: Served) -> None:
    tab.page.goto(served.url + "/login/")
    tab.page.fill("input[name=email]", OWNER)
    tab.page.fill("input[name=password]", PASSWORD)
    tab.page.get_by_role("button", name="Log in").click()
    expect(tab.page.get_by_role("button", name="Log out")).to_be_visible()


def card(page: Page, metric: str) -> str:
    return page.locator(f'[data-metric="{metric}"] .value').inner_text().strip()


def query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query, keep_blank_values=True)


CHART_STATE = """() => {
  const plot = window.flaskTrackingChart;
  if (!plot) return null;
  const canvas = plot.root.querySelector("canvas");
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  // The line and its points are drawn in the accent colour: look around each point's position.
  const stroke = (x, y) => {
    for (let dy = -3; dy <= 3; dy++) for (let dx = -3; dx <= 3; dx++) {
      const i = 4 * (Math.round(y + dy) * canvas.width + Math.round(x + dx));
      if (pixels[i + 3] > 200 && pixels[i + 2] > 150 && pixels[i] < 120) return true;
    }
    return false;
  };
  // The bucket still running (today, this hour) is its own dashed series, plot.data[3].
  const current = plot.data[1].map((value, index) =>
    value !== null ? value : (plot.data[3] ? plot.data[3][index] : null));
  const drawn = current.map((value, index) =>
    value === null || stroke(plot.valToPos(index, "x", true), plot.valToPos(value, "y", true)));
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) painted++;
  return {
    // uPlot's constructor returns a plain object (not `this`): recognise it by what it has.
    isUplot: typeof window.uPlot === "function" && plot.root.classList.contains("uplot")
      && typeof plot.setData === "function" && Array.isArray(plot.series),
    xs: plot.data[0].length,
    current: current,
    drawn: drawn,
    painted: painted,
    size: [canvas.width, canvas.height],
  };
}"""


def assert_chart(page: Page, expected: list[int]) -> None:
    """The uPlot chart holds one point per bucket, the expected ones, and drew them."""
    chart = page.evaluate(CHART_STATE)
    assert chart is not None, "no window.flaskTrackingChart: uPlot missing (make assets) or broken"
    assert chart["isUplot"]
    assert chart["xs"] == len(expected)
    assert chart["current"] == expected
    assert any(expected)
    assert chart["size"][0] > 500 and chart["size"][1] >= 200
    assert chart["painted"] > 1000, "the canvas is blank"
    assert all(chart["drawn"]), f"points not drawn on the canvas: {chart['drawn']}"
    # The server-rendered SVG fallback is gone once the canvas took its place.
    expect(page.locator("#chart .chart-fallback")).to_have_count(0)


def country_row(page: Page, code: str) -> Locator:
    """The country panel's row of `code`, which shows the country's name (and links by code)."""
    rows = '.tab-body[data-dimension="country"] a.bar-row'
    return page.locator(
        f'{rows}[href*="country:is:{code}"], {rows}[href*="country%3Ais%3A{code}"]'
    ).filter(has=page.locator(".value", has_text=country_name(code)))


def read_zip(path: Path) -> dict[str, list[dict[str, str]]]:
    with zipfile.ZipFile(path) as archive:
        return {
            name: list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))
            for name in archive.namelist()
        }


# The x axis's tick labels as uPlot drew them, and how many overlap their neighbour.
AXIS_LABELS = """() => {
  const plot = window.flaskTrackingChart, axis = plot.axes[0], ctx = plot.ctx;
  ctx.save();
  ctx.font = axis.font[0];
  const boxes = axis._splits.map((split, i) => {
    const x = plot.valToPos(split, "x", true), w = ctx.measureText(axis._values[i]).width;
    return [x - w / 2, x + w / 2];
  });
  ctx.restore();
  return {
    labels: axis._values,
    overlapping: boxes.slice(1).filter((box, i) => box[0] < boxes[i][1] + 4).length,
  };
}"""


# -- the tests ----------------------------------------------------------------------------------


def test_the_owner_reads_filters_changes_the_range_and_exports(
    shop: Served, open_tab: Callable[[], Tab]
) -> None:
    traffic = shop.traffic
    tab = open_tab()
    page = tab.page
    log_in(tab, shop)
    page.goto(shop.dashboard)
    assert tab.errors == []  # here already, so a broken script fails with its own message

    # Last 30 days, the default: the cards and the chart say what was spooled.
    expect(page.locator("h1")).to_have_text(SITE_NAME)
    expect(page.locator("select[name=period]")).to_have_value("30d")
    assert card(page, "visitors") == f"{traffic.visitors(30):,}"
    assert card(page, "visits") == f"{traffic.visitors(30):,}"  # one visit per person and day
    assert card(page, "pageviews") == f"{traffic.pageviews(30):,}"
    assert_chart(page, traffic.series(30))
    screenshot(page, "30d")

    # On a phone the page reflows: nothing wider than the screen, the chart redrawn to fit.
    page.set_viewport_size(PHONE)
    page.wait_for_function(f"window.flaskTrackingChart.width < {PHONE['width']}")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "30d-phone")
    page.set_viewport_size(VIEWPORT)

    # The map draws every country from the outlines file, shaded by visitors.
    gb = page.locator('.world-map use[data-code="GB"]')
    expect(gb).to_have_class(re.compile(r"shade-[1-5]"))
    box = gb.bounding_box()
    assert box and box["width"] > 5 and box["height"] > 5, "Great Britain is not drawn"
    filled = gb.evaluate("e => getComputedStyle(e).fill")
    assert filled != page.locator('.world-map use[data-code="BR"]').evaluate(
        "e => getComputedStyle(e).fill"
    ), "a country with visitors looks like one without"

    # A country row filters the whole page by that country.
    page.locator('label[for="tab-country"]').click()
    expect(page.locator('.tab-body[data-dimension="country"]')).to_be_visible()
    row = country_row(page, "GB")
    expect(row).to_have_count(1)
    row.click()
    page.wait_for_url(re.compile(r"[?&]filter=country(:|%3A)is(:|%3A)GB"))
    assert query(page) == {"filter": ["country:is:GB"]}
    chip = page.locator('.chip[data-filter="country:is:GB"]')
    expect(chip).to_be_visible()
    expect(chip).to_contain_text("Country is United Kingdom")
    assert card(page, "visitors") == f"{traffic.visitors(30, 'GB'):,}"
    assert_chart(page, traffic.series(30, "GB"))
    screenshot(page, "30d-country-gb")

    # Removing the chip brings the whole site back.
    chip.locator(".chip-remove").click()
    page.wait_for_url(shop.dashboard)
    expect(page.locator(".chip")).to_have_count(0)
    assert card(page, "visitors") == f"{traffic.visitors(30):,}"

    # Choosing a period submits the form at once (the dates stay out of the URL).
    page.select_option("select[name=period]", "7d")
    page.wait_for_url(re.compile(r"[?&]period=7d"))
    assert query(page) == {"period": ["7d"]}
    expect(page.locator("select[name=period]")).to_have_value("7d")
    assert card(page, "visitors") == f"{traffic.visitors(7):,}"
    assert card(page, "pageviews") == f"{traffic.pageviews(7):,}"
    assert_chart(page, traffic.series(7))
    screenshot(page, "7d")

    # The export is the view on screen: one CSV per panel, the same numbers.
    with page.expect_download() as info:
        page.get_by_role("link", name="Export CSV").click()
    download = info.value
    assert re.fullmatch(
        rf"flask-tracking-site{shop.site_id}-7d-\d{{8}}\.zip", download.suggested_filename
    )
    files = read_zip(Path(download.path()))
    assert {"metrics.csv", "timeseries.csv", "country.csv"} <= set(files)
    metrics = {row["metric"]: row["value"] for row in files["metrics.csv"]}
    assert metrics["visitors"] == str(traffic.visitors(7))
    assert metrics["pageviews"] == str(traffic.pageviews(7))
    series = files["timeseries.csv"]
    assert [row["bucket_start_utc"][:10] for row in series] == [
        day.isoformat() for day in traffic.days(7)
    ]
    assert [int(row["visitors"]) for row in series] == traffic.series(7)
    countries = {row["country_code"]: int(row["visitors"]) for row in files["country.csv"]}
    assert countries == traffic.by_country(7)

    assert tab.dialogs == []
    assert tab.errors == []


def test_the_chart_draws_no_future_and_reads_at_every_period(
    shop: Served, open_tab: Callable[[], Tab]
) -> None:
    tab = open_tab()
    page = tab.page
    log_in(tab, shop)

    # Today: only the hours that have begun are drawn; the hour under way is "so far", dashed.
    for _ in range(2):  # again if an hour began while the page was drawn
        hour = datetime.now(UTC).hour
        page.goto(shop.dashboard + "?period=today")
        chart = page.evaluate("JSON.parse(document.getElementById('chart-data').textContent)")
        if datetime.now(UTC).hour == hour:
            break
    begun = hour + 1  # the site's zone is UTC
    assert len(chart["current"]) == 24
    assert chart["current"][:begun] == [0] * begun
    assert chart["current"][begun:] == [None] * (24 - begun)  # the future is not a zero
    assert chart["partial"] is True
    state = page.evaluate(CHART_STATE)
    assert state["current"] == [0] * begun + [None] * (24 - begun)
    assert page.evaluate("window.flaskTrackingChart.series.length") == 4  # + "so far"
    table = page.locator(".chart-table tbody tr")
    expect(table.nth(begun - 1).locator("td").first).to_contain_text("(so far)")
    if begun < 24:
        expect(table.nth(begun).locator("td").nth(1)).to_have_text("—")

    # With the pointer off the chart, the legend is a key, without "--" values; on it, the
    # bucket and its numbers.
    legend = page.locator("#chart .u-legend")
    bucket, values = legend.locator("tr").first, legend.locator(".u-value")
    expect(legend).to_be_visible()
    expect(bucket).to_be_hidden()
    assert "--" not in legend.inner_text() and "visitors" in legend.inner_text()
    box = page.locator("#chart .u-over").bounding_box()
    assert box
    page.mouse.move(box["x"] + 5, box["y"] + box["height"] / 2)
    expect(bucket).to_be_visible()
    expect(bucket).to_contain_text("Hour")
    expect(values.nth(1)).to_be_visible()
    page.mouse.move(0, 0)
    expect(bucket).to_be_hidden()
    assert "--" not in legend.inner_text()

    # Twelve months by week: short tick labels, none running into the next.
    page.goto(shop.dashboard + "?period=12mo")
    assert page.evaluate("window.flaskTrackingChart.series.length") == 4
    axis = page.evaluate(AXIS_LABELS)
    assert len([label for label in axis["labels"] if label]) >= 4
    assert not any(label.startswith("Week of") for label in axis["labels"])
    assert axis["overlapping"] == 0, axis["labels"]
    page.set_viewport_size(PHONE)
    page.wait_for_function(f"window.flaskTrackingChart.width < {PHONE['width']}")
    assert page.evaluate(AXIS_LABELS)["overlapping"] == 0
    screenshot(page, "12mo-phone")
    assert tab.errors == []


@pytest.mark.parametrize(("viewport", "theme"), [(VIEWPORT, "light"), (PHONE, "dark")])
def test_keys_choose_and_move_the_period_and_compare_with_last_year(
    shop: Served, open_tab: Callable[..., Tab], viewport: dict[str, int], theme: str
) -> None:
    tab = open_tab(viewport, theme)
    page = tab.page
    log_in(tab, shop)
    page.goto(shop.dashboard)
    today = shop.traffic.today

    page.keyboard.press("w")
    page.wait_for_url(re.compile(r"period=7d"))
    assert card(page, "visitors") == f"{shop.traffic.visitors(7):,}"
    page.keyboard.press("ArrowLeft")  # the seven days before
    page.wait_for_url(re.compile(r"period=custom"))
    first, last = today - timedelta(days=13), today - timedelta(days=7)
    assert query(page)["from"] == [first.isoformat()] and query(page)["to"] == [last.isoformat()]
    page.keyboard.press("ArrowRight")
    page.wait_for_url(re.compile(rf"to={today.isoformat()}"))
    here = page.url
    page.keyboard.press("ArrowRight")  # the future: nothing to see, nothing happens
    page.wait_for_timeout(300)
    assert page.url == here
    # Typing in a field is typing, not a shortcut.
    page.locator("form.range input[name=from]").press("t")  # shown: the period is custom
    page.wait_for_timeout(300)
    assert page.url == here
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("t")
    page.wait_for_url(re.compile(r"period=today"))

    # Compared with the same period last year, chosen from the menu (it applies at once).
    page.keyboard.press("m")
    page.wait_for_url(re.compile(r"period=month"))
    page.select_option("select[name=compare]", "year")
    page.wait_for_url(re.compile(r"compare=year"))
    expect(page.locator(".legend .compared")).to_contain_text("Same period last year")
    assert page.evaluate("window.flaskTrackingChart.series[2].label").startswith("same period")
    page.locator("input[type=checkbox][name=match]").check()
    page.wait_for_url(re.compile(r"match=weekday"))
    expect(page.locator(".legend .compared")).to_contain_text("same weekdays")
    screenshot(page, f"compare-last-year-{viewport['width']}-{theme}")
    assert tab.errors == []


@pytest.mark.parametrize(("viewport", "theme"), [(VIEWPORT, "light"), (PHONE, "dark")])
def test_a_filter_built_in_the_dialog_and_a_details_view_searched_and_paged(
    shop: Served, open_tab: Callable[..., Tab], viewport: dict[str, int], theme: str
) -> None:
    traffic = shop.traffic
    tab = open_tab(viewport, theme)
    page = tab.page
    log_in(tab, shop)
    page.goto(shop.dashboard)

    # "f" opens the dialog; suggestions come from the data as the value is typed.
    page.keyboard.press("f")
    dialog = page.locator("#filter-builder")
    expect(dialog).to_have_attribute("open", "")
    page.select_option("#fb-dimension", "country")
    page.select_option("#fb-operator", "is_not")
    first = page.locator("#filter-builder input[name=value]").first
    first.fill("Swe")
    expect(page.locator('#fb-suggestions option[value="SE"]')).to_have_count(1)
    first.fill("SE")
    page.locator(".fb-more").click()
    second = page.locator("#filter-builder input[name=value]").nth(1)
    expect(second).to_be_focused()
    second.fill("France")  # by name
    page.locator("#filter-builder button[type=submit]").click()
    page.wait_for_url(re.compile(r"filter=country"))
    assert query(page)["filter"] == ["country:is_not:SE|FR"]
    expect(page.locator(".chip")).to_contain_text("Country is not Sweden nor France")
    others = sum(traffic.visitors(30, c) for c in ("GB", "US", "AU"))
    assert card(page, "visitors") == f"{others:,}"
    screenshot(page, f"filter-is-not-two-countries-{viewport['width']}-{theme}")

    # A panel's Details: every value, searched and paged, with the view's filters.
    page.goto(shop.dashboard)
    page.locator('.tab-body[data-dimension="page"] a.details-link').click()
    expect(page.locator("h1")).to_have_text("Page")
    expect(page.locator("table.details tbody tr")).to_have_count(4)  # / /pricing /blog /docs
    page.fill("#details-q", "PRI")
    page.locator(".details-search button[type=submit]").click()
    expect(page.locator("table.details tbody tr")).to_have_count(1)
    expect(page.locator("table.details tbody th")).to_have_text("/pricing")
    page.locator("table.details thead a", has_text="Pageviews").click()
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("Pageviews")
    assert query(page)["q"] == ["PRI"]
    page.locator("table.details tbody th a").click()  # filters the dashboard by it
    page.wait_for_url(re.compile(r"filter=page"))
    assert query(page)["filter"] == ["page:is:/pricing"]
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    screenshot(page, f"details-then-filter-{viewport['width']}-{theme}")
    assert tab.errors == []


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_page_passes_axe_in_both_themes(shop: Served, browser: Browser, theme: str) -> None:
    """axe-core finds no serious or critical WCAG A/AA violation (contrast included) on any
    page, in the light and the dark theme (the system's setting), at desktop and phone width."""
    with shop.app.app_context():
        site = db.session.get(Site, shop.site_id)
        assert site is not None
        link = SharedLink(site_id=site.id, token="a11y" + "t" * 28, name="Board")
        db.session.add(link)
        db.session.commit()
        token = link.token
        db.session.remove()
    found: dict[str, Any] = {}
    for viewport in (VIEWPORT, PHONE):
        context = browser.new_context(
            user_agent=CHROME, viewport=viewport, color_scheme=theme, bypass_csp=True
        )
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        for path in ("/", "/login/", "/register/", "/password/forgot", f"/share/{token}"):
            page.goto(shop.url + path)
            found[f"{viewport['width']} {path}"] = axe_violations(page)
        page.goto(shop.url + "/login/")
        page.fill("input[name=email]", OWNER)
        page.fill("input[name=password]", PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("button", name="Log out")).to_be_visible()
        for path in (
            "/",
            "/sites/",
            f"/sites/{shop.site_id}",
            f"/sites/{shop.site_id}?period=12mo&filter=country:is:GB&compare=year",
            f"/sites/{shop.site_id}/details/page",
            f"/sites/{shop.site_id}/setup",
            f"/sites/{shop.site_id}/visits",
            f"/sites/{shop.site_id}/edit",
            f"/sites/{shop.site_id}/experiments",
            f"/sites/{shop.site_id}/shares",
            f"/sites/{shop.site_id}/members",
            f"/sites/{shop.site_id}/reports",
            f"/sites/{shop.site_id}/alerts",
            f"/sites/{shop.site_id}/erase",
            f"/sites/{shop.site_id}/imports",
            "/settings/",
            "/settings/two-factor",
            "/api/v1/docs",
        ):
            page.goto(shop.url + path)
            if path == f"/sites/{shop.site_id}":
                page.locator("#filter-builder summary").click()  # the dialog, open
            found[f"{viewport['width']} {path}"] = axe_violations(page)
        if viewport is VIEWPORT:
            page.goto(f"{shop.url}/sites/{shop.site_id}")
            screenshot(page, f"dashboard-{theme}")
        context.close()
    failed = {where: v for where, v in found.items() if v}
    report = ROOT / "test-artifacts" / f"axe-{theme}.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(failed, indent=1), encoding="utf-8")  # the details, if any
    assert failed == {}, f"see {report.name}"


def test_a_new_site_takes_the_browsers_time_zone_and_leads_to_its_setup(
    shop: Served, browser: Browser
) -> None:
    context = browser.new_context(user_agent=CHROME, viewport=VIEWPORT, timezone_id="Asia/Tokyo")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(shop.url + "/login/")
    page.fill("input[name=email]", OWNER)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(shop.url + "/sites/")
    zone = page.locator("input[name=timezone]")
    expect(zone).to_have_value("Asia/Tokyo")  # the browser's, as a default
    zone.fill("Europe/Ber")  # searchable: the list offers the matching zones
    assert page.locator('#timezones option[value="Europe/Berlin"]').count() == 1
    zone.fill("Europe/Berlin")
    page.fill("input[name=base_url]", "https://second.example")
    page.get_by_role("button", name="Add site").click()
    page.wait_for_url(re.compile(r"/sites/\d+/setup$"))
    expect(page.locator("h1")).to_contain_text("Set up")
    with shop.app.app_context():
        zones = {site.base_url: site.timezone for site in db.session.scalars(select(Site))}
        db.session.remove()
    assert zones["https://second.example"] == "Europe/Berlin"
    screenshot(page, "setup-new-site")
    context.close()


def focus_by_tab(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element matching `selector` has the focus (as a keyboard user)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    pytest.fail(f"{selector} was not reached with {limit} presses of Tab")


def test_the_dashboard_works_with_the_keyboard_alone_and_the_theme_toggles(
    shop: Served, open_tab: Callable[[], Tab]
) -> None:
    tab = open_tab()
    page = tab.page
    log_in(tab, shop)
    page.goto(shop.dashboard)

    # The period menu: reached with Tab, changed with the arrow keys (it applies at once).
    focus_by_tab(page, "select[name=period]")
    page.keyboard.press("ArrowDown")
    page.wait_for_url(re.compile(r"period="))
    chosen = query(page)["period"][0]
    assert chosen != "30d"

    # A panel's tabs are radio buttons: the arrows move between them.
    focus_by_tab(page, "#tab-page")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-entry_page")).to_be_checked()
    expect(page.locator('.tab-body[data-dimension="entry_page"]')).to_be_visible()
    # A row is a link: Enter filters by it.
    focus_by_tab(page, '.tab-body[data-dimension="entry_page"] a.bar-row')
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"filter=entry_page"))
    expect(page.locator(".chip")).to_have_count(1)

    # The filter dialog: opened, filled and applied without the mouse.
    focus_by_tab(page, "#filter-builder summary")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # the dimension
    page.keyboard.press("Tab")  # the operator
    page.keyboard.press("Tab")  # the value
    page.keyboard.type("/docs")
    focus_by_tab(page, "#filter-builder button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"filter=page"))
    expect(page.locator(".chip")).to_have_count(2)
    # A focused control shows it.
    focus_by_tab(page, ".chip-remove")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"

    # Light, dark, back to the system's: the choice stays across pages; the chart follows.
    toggle = page.locator("#theme-toggle")
    expect(toggle).to_have_text("Theme: system")
    toggle.click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(18, 21, 28)"
    assert page.evaluate("window.flaskTrackingChart.series[1].stroke()") == "#5c7cfa"
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    toggle.click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    toggle.click()
    expect(page.locator("html")).not_to_have_attribute("data-theme", re.compile(".*"))
    screenshot(page, "keyboard-filtered")
    assert tab.errors == []


def test_shared_links_show_the_dashboard_and_nothing_of_the_account(
    shop: Served, open_tab: Callable[[], Tab]
) -> None:
    owner = open_tab()
    log_in(owner, shop)
    owner.page.goto(f"{shop.dashboard}/shares")
    for name, password in (("Board", ""), ("Investors", "open sesame")):
        owner.page.fill("input[name=name]", name)
        owner.page.fill("input[name=password]", password)
        owner.page.get_by_role("button", name="Create link").click()
        expect(owner.page.locator(".flash")).to_contain_text("Shared link created")
    links = {
        row.locator("td").first.inner_text().strip(): row.locator("a.share-url").inner_text()
        for row in owner.page.locator("table.shares tbody tr").all()
    }
    assert set(links) == {"Board", "Investors"}
    assert all(url.startswith(f"{shop.url}/share/") for url in links.values())

    owner.page.get_by_role("button", name="Log out").click()
    expect(owner.page.get_by_role("link", name="Log in", exact=True)).to_be_visible()
    owner.page.goto(shop.dashboard)
    assert urlsplit(owner.page.url).path == "/login/"  # logged out indeed

    # A stranger with the link sees the dashboard, and nothing else of the account.
    stranger = open_tab()
    page = stranger.page
    page.goto(links["Board"])
    assert stranger.errors == []
    expect(page.locator("h1")).to_have_text(SITE_NAME)
    expect(page.locator(".dash-head")).to_contain_text("shared read-only view")
    assert card(page, "visitors") == f"{shop.traffic.visitors(30):,}"
    assert_chart(page, shop.traffic.series(30))
    text, html = page.locator("body").inner_text(), page.content()
    for private in ("Raw events", "Shared links", "Settings", "Log out", "Tracking snippet"):
        assert private not in text
    for private in (OWNER, "Dana Owner", "/sites/", "https://example.com"):
        assert private not in html
    token_path = urlsplit(links["Board"]).path
    for href in page.locator("a.bar-row[href], .tabs a[href]").evaluate_all(
        "els => els.map(e => e.href)"
    ):
        assert urlsplit(href).path == token_path, href
    export = page.get_by_role("link", name="Export CSV").get_attribute("href")
    assert export is not None and export.startswith(f"{token_path}/export.zip")
    screenshot(page, "shared")

    # The password-protected link asks for its password first.
    page.goto(links["Investors"])
    expect(page.locator("h1")).to_have_text("This dashboard is protected")
    expect(page.locator("[data-metric]")).to_have_count(0)
    assert SITE_NAME not in page.content()
    screenshot(page, "shared-password")
    page.fill("input[name=password]", "open sesame?")
    page.get_by_role("button", name="Open the dashboard").click()
    expect(page.get_by_text("That password is not right.")).to_be_visible()
    expect(page.locator("[data-metric]")).to_have_count(0)
    page.fill("input[name=password]", "open sesame")
    page.get_by_role("button", name="Open the dashboard").click()
    expect(page.locator("h1")).to_have_text(SITE_NAME)
    assert card(page, "visitors") == f"{shop.traffic.visitors(30):,}"
    assert "Log out" not in page.locator("body").inner_text()

    # Revoked by the owner, the link stops working at once.
    log_in(owner, shop)
    owner.page.goto(f"{shop.dashboard}/shares")
    board = owner.page.locator("table.shares tbody tr").filter(has_text="Board")
    board.get_by_role("button", name="Revoke").click()
    expect(owner.page.locator(".flash")).to_contain_text("Shared link revoked")
    expect(owner.page.locator("table.shares tbody tr")).to_have_count(1)
    response = page.goto(links["Board"])
    assert response is not None and response.status == 404
    # The browser reports the 404 document itself; that one error is expected, no other.
    expected_404 = [e for e in stranger.errors if "status of 404" in e]
    assert len(expected_404) == 1
    stranger.errors.remove(expected_404[0])
    response = page.goto(links["Investors"])  # the other one still works
    assert response is not None and response.status == 200
    expect(page.locator("h1")).to_have_text(SITE_NAME)

    for tab in (owner, stranger):
        assert tab.dialogs == []
        assert tab.errors == []


def test_html_in_tracked_values_is_shown_as_text_and_never_runs(
    hostile: Served, open_tab: Callable[[], Tab]
) -> None:
    tab = open_tab()
    page = tab.page
    log_in(tab, hostile)
    page.goto(hostile.dashboard)
    assert tab.errors == []
    expect(page.locator("h1")).to_have_text(XSS_SITE_NAME)
    assert XSS_SITE_NAME in page.title()

    shown = {
        "page": [XSS_PAGE],
        "entry_page": [XSS_PAGE],
        "exit_page": [XSS_PAGE],
        "source": ["evil.example"],
        "referrer": [XSS_URL, XSS_REFERRER],
        "utm_source": [XSS_QUOTE],
        "utm_medium": [XSS_IMG],
        "utm_campaign": [XSS_URL],
        "event": [XSS_EVENT],
    }
    for dimension, payloads in shown.items():
        page.locator(f'label[for="tab-{dimension}"]').click()
        body = page.locator(f'.tab-body[data-dimension="{dimension}"]')
        expect(body).to_be_visible()
        for payload in payloads:
            expect(body.locator(".bar-row .value", has_text=payload)).to_be_visible()
    for dimension in ("country", "region", "city", "browser", "os", "device", "screen"):
        page.locator(f'label[for="tab-{dimension}"]').click()
        expect(page.locator(f'.tab-body[data-dimension="{dimension}"]')).to_be_visible()

    # The chart's tooltips (uPlot's live legend) while the pointer moves over it, ending on
    # yesterday's point: its day and its 3 visitors.
    over = page.locator("#chart .u-over")
    over.scroll_into_view_if_needed()
    box = over.bounding_box()
    assert box is not None
    for step in range(1, 10):
        page.mouse.move(box["x"] + box["width"] * step / 10, box["y"] + box["height"] / 2)
    x = page.evaluate("window.flaskTrackingChart.valToPos(28, 'x')")
    page.mouse.move(box["x"] + x, box["y"] + box["height"] / 2)
    legend = page.locator("#chart .u-legend .u-series")
    yesterday = hostile.traffic.today - timedelta(days=1)
    expect(legend.nth(0)).to_contain_text(f"Day{yesterday:%a %d %b}")
    expect(legend.nth(1)).to_contain_text("visitors3")

    # The event's properties, through its "props" link.
    page.locator('label[for="tab-event"]').click()
    page.locator('.tab-body[data-dimension="event"] .props-link').click()
    assert query(page) == {"event": [XSS_EVENT]}
    properties = page.locator('[data-panel="Properties"]')
    expect(properties.locator("h2")).to_have_text(f"Properties of {XSS_EVENT}")
    expect(properties.locator("td", has_text=XSS_PROP_KEY)).to_be_visible()
    expect(properties.locator("td", has_text=XSS_PROP_VALUE)).to_be_visible()
    properties.locator("td", has_text=XSS_PROP_KEY).hover()
    screenshot(page, "xss")

    # A filter on the hostile page: the URL carries it, the chip shows it as text.
    page.locator('label[for="tab-page"]').click()
    page.locator('.tab-body[data-dimension="page"] a.bar-row', has_text=XSS_PAGE).click()
    page.wait_for_url(re.compile(r"[?&]filter="))
    assert query(page)["filter"] == [f"page:is:{XSS_PAGE}"]
    expect(page.locator(".chip")).to_contain_text(f"Page is {XSS_PAGE}")
    assert card(page, "visitors") == "1"
    page.select_option("select[name=period]", "7d")
    page.wait_for_url(re.compile(r"[?&]period=7d"))
    assert query(page)["filter"] == [f"page:is:{XSS_PAGE}"]
    expect(page.locator(".chip")).to_contain_text(f"Page is {XSS_PAGE}")

    assert page.evaluate("typeof window.__xss") == "undefined"
    assert tab.dialogs == []
    assert tab.errors == []
