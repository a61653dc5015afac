"""The tracker in a real browser: Debian's chromium, driven by Playwright, against live servers.

The app runs on one loopback port and a customer's page on another (a different origin, as on a
real site). The page carries the snippet the site page offers, so the test covers the snippet,
the versioned script URL, sendBeacon's text/plain body, CORS and the whole ingest pipeline.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect
from werkzeug.wrappers import Request, Response

from flask_tracking.extensions import db
from flask_tracking.reports.experiments import assign, make_variants
from flask_tracking.reports.export import StoredEvent
from flask_tracking.tracking.models import Site
from flask_tracking.tracking.snippet import snippet_for
from flask_tracking.users import accounts
from tests.browser.conftest import CHROME, LiveServer
from tests.conftest import stored_events

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
OUTBOUND = "http://127.0.0.2:9/elsewhere"  # nothing listens there; the test fulfils it
WAIT_SECONDS = 5.0

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title><link rel="icon" href="data:,">
<script>
  window.flaskTracking = window.flaskTracking || {q: []};
  flaskTracking.q.push(["Queued", {early: true}]);
</script>
</head><body>
<button id="push" onclick="history.pushState({}, '', '/second')">Next page</button>
<button id="signup"
  onclick="flaskTracking.track('Signup', {plan: 'pro', seats: 3, trial: true})">Sign up</button>
<a id="outbound" href="%(outbound)s">Elsewhere</a>
<a id="download" href="/files/report.pdf">Report</a>
%(snippet)s
</body></html>
"""

# Spies installed before any page script runs: what the tracker sends, and any storage it touches.
SPIES = """
window.__beacons = [];
window.__touched = [];
const beacon = navigator.sendBeacon.bind(navigator);
navigator.sendBeacon = (url, body) => {
  __beacons.push(JSON.parse(body));
  return beacon(url, body);
};
const fetch_ = window.fetch.bind(window);
window.fetch = (url, init) => {
  __beacons.push(JSON.parse(init.body));
  return fetch_(url, init);
};
for (const name of ["localStorage", "sessionStorage", "indexedDB"]) {
  const real = Object.getOwnPropertyDescriptor(window, name);
  Object.defineProperty(window, name, {
    configurable: true,
    get() { __touched.push(name); return real.get.call(window); },
  });
}
const cookie = Object.getOwnPropertyDescriptor(Document.prototype, "cookie");
Object.defineProperty(document, "cookie", {
  configurable: true,
  get() { __touched.push("cookie"); return cookie.get.call(document); },
  set(value) { __touched.push("cookie="); cookie.set.call(document, value); },
});
"""

# The customer's experiment page: the variant sets the button's text (after the deferred
# tracker has run, which is before DOMContentLoaded).
EXPERIMENT = """
<script>
addEventListener("DOMContentLoaded", function () {
  var variant = flaskTracking.experiment("signup-copy", {control: 50, bold: 50});
  var button = document.getElementById("signup");
  button.dataset.variant = variant;
  if (variant == "bold") button.textContent = "Start free today";
});
</script>
"""
EXPERIMENT_USER = "visitor-7"

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example(api: str, site_id: int) -> str:
    """The README's example experiment page, pointed at this app and site (and told to count
    127.0.0.1, which the snippet ignores otherwise)."""
    text = README.read_text(encoding="utf-8").split("### Running an experiment", 1)[1]
    html = text.split("```html\n", 1)[1].split("```", 1)[0]
    html = html.replace("https://analytics.example.com", api)
    html = html.replace('data-site="1"', f'data-site="{site_id}" data-allow-localhost="true"')
    return html


# Makes the page look prerendered until the test "activates" it.
PRERENDERED = """
window.__prerendering = true;
Object.defineProperty(document, "prerendering", {configurable: true, get: () => __prerendering});
"""


@dataclass
class Shop:
    """The app, its site, and the customer's page that tracks into it."""

    app: Flask
    site_id: int
    api: str
    url: str
    snippet: str


@dataclass
class Tab:
    """A page in its own browser context, with every console error and page error it had."""

    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)

    def sent(self) -> list[dict[str, Any]]:
        """The events the tracker handed to sendBeacon (or fetch), as sent."""
        return self.page.evaluate("window.__beacons")  # type: ignore[no-any-return]


@pytest.fixture
def shop(app_factory: Callable[..., Flask], tmp_path: Path) -> Iterator[Shop]:
    """The app on a live server, a site, and the site's page on a second live server."""
    settings: dict[str, Any] = {}
    if not os.environ.get("TEST_DATABASE_URL"):
        # In-memory SQLite is one connection shared by every thread (a StaticPool): a request
        # thread's rollback on check-in could undo the test thread's half-done drain. A file
        # gives each thread its own connection.
        settings["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path}/browser.db"
    app = app_factory(**settings)
    with app.app_context():
        owner = accounts.register("owner@example.com", "correct horse battery", "Owner")
        site = Site(owner_id=owner.id, base_url="http://127.0.0.1", name="Shop")
        db.session.add(site)
        db.session.commit()
        site_id = site.id
    api = LiveServer(app)
    with app.test_request_context(base_url=api.url):
        snippet = snippet_for(db.session.get(Site, site_id))
        db.session.remove()
    tracked = snippet.replace(
        "<script defer ",
        '<script defer data-allow-localhost="true" data-outbound="true" data-downloads="true" ',
    )
    assert tracked != snippet

    @Request.application
    def customer_site(request: Request) -> Response:
        if request.path == "/files/report.pdf":
            return Response(b"%PDF-1.4 not really", mimetype="text/plain")
        # "/quiet": the snippet exactly as offered, so the tracker stays off on 127.0.0.1.
        chosen = snippet if request.path == "/quiet" else tracked
        if request.path == "/readme-example":
            return Response(readme_example(api.url, site_id), mimetype="text/html")
        if request.path == "/experiment":
            chosen = (
                chosen.replace("<script defer ", f'<script defer data-user-id="{EXPERIMENT_USER}" ')
                + EXPERIMENT
            )
        html = PAGE % {"outbound": OUTBOUND, "snippet": chosen}
        return Response(html, mimetype="text/html")

    page_server = LiveServer(customer_site)
    yield Shop(app=app, site_id=site_id, api=api.url, url=page_server.url, snippet=snippet)
    page_server.close()
    api.close()


@pytest.fixture
def open_tab(browser: Browser) -> Iterator[Callable[..., Tab]]:
    """Open a URL in a fresh desktop-Chrome context with the spies installed."""
    contexts: list[BrowserContext] = []

    def opener(url: str, *, prerendered: bool = False, route: bool = False) -> Tab:
        context = browser.new_context(user_agent=CHROME, viewport=VIEWPORT)
        contexts.append(context)
        context.add_init_script(SPIES)
        if prerendered:
            context.add_init_script(PRERENDERED)
        page = context.new_page()
        tab = Tab(context, page)
        page.on(
            "console",
            lambda message: (
                tab.errors.append(f"console.{message.type}: {message.text}")
                if message.type == "error"
                else tab.infos.append(message.text)
                if message.type == "info"
                else None
            ),
        )
        page.on("pageerror", lambda error: tab.errors.append(f"page error: {error}"))
        if route:
            page.route(f"{OUTBOUND}*", fulfil_elsewhere)
        page.goto(url)
        return tab

    yield opener
    for context in contexts:
        context.close()


def fulfil_elsewhere(route: Route) -> None:
    route.fulfill(
        status=200,
        content_type="text/html",
        body='<!doctype html><link rel="icon" href="data:,"><title>Elsewhere</title>',
    )


def stored(app: Flask) -> list[StoredEvent]:
    """Everything the collector has spooled, stored now, in time order."""
    return stored_events(app)


def wait_for(app: Flask, done: Callable[[list[StoredEvent]], bool], what: str) -> list[StoredEvent]:
    """Poll the pipeline until `done(rows)`, for at most WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        rows = stored(app)
        if done(rows):
            return rows
        if time.monotonic() > deadline:
            seen = [(row.event, row.pathname, row.props) for row in rows]
            pytest.fail(f"{what}: not stored within {WAIT_SECONDS} s; stored: {seen}")
        time.sleep(0.02)


def named(rows: list[StoredEvent], name: str) -> list[StoredEvent]:
    return [row for row in rows if row.event == name]


def test_a_page_load_stores_one_pageview_with_the_page_and_screen_width(
    shop: Shop, open_tab: Callable[..., Tab]
) -> None:
    tab = open_tab(shop.url + "/?utm_source=news&secret=1#top")
    rows = wait_for(
        shop.app, lambda rows: bool(named(rows, "pageview") and named(rows, "Queued")), "pageview"
    )
    [pageview] = named(rows, "pageview")
    assert pageview.site_id == shop.site_id
    assert pageview.url == shop.url + "/?utm_source=news"  # private query and fragment dropped
    assert (pageview.hostname, pageview.pathname, pageview.utm_source) == (
        "127.0.0.1",
        "/",
        "news",
    )
    assert (pageview.screen_width, pageview.screen_size) == (1280, "laptop")
    assert (pageview.browser, pageview.os, pageview.device) == ("Chrome", "Windows", "desktop")
    assert pageview.referrer is None
    assert pageview.visitor_id is not None and pageview.session_id is not None
    # A call queued before the script loaded is sent once it has.
    [queued] = named(rows, "Queued")
    assert queued.props == {"early": True}
    assert [event["name"] for event in tab.sent()] == ["pageview", "Queued"]
    assert tab.errors == []


def test_the_tracker_sets_no_cookie_and_touches_no_storage(
    shop: Shop, open_tab: Callable[..., Tab]
) -> None:
    tab = open_tab(shop.url + "/")
    tab.page.click("#signup")
    tab.page.click("#push")
    wait_for(shop.app, lambda rows: len(rows) == 4, "every event")
    # The spies saw no access at all (read before the checks below touch storage themselves).
    assert tab.page.evaluate("window.__touched") == []
    assert tab.page.evaluate("document.cookie") == ""
    assert tab.page.evaluate("localStorage.length + sessionStorage.length") == 0
    assert tab.context.cookies() == []  # for every origin, the collector's included
    assert tab.errors == []


def test_push_state_and_back_are_pageviews_each_url_once_in_a_row(
    shop: Shop, open_tab: Callable[..., Tab]
) -> None:
    tab = open_tab(shop.url + "/")
    tab.page.click("#push")
    tab.page.click("#push")  # the same URL again: no new pageview
    tab.page.go_back()  # from /second to /second: none either
    tab.page.go_back()  # back to /: a pageview
    tab.page.wait_for_function("window.__beacons.length >= 4")
    assert [(event["name"], event["url"]) for event in tab.sent()] == [
        ("pageview", shop.url + "/"),
        ("Queued", shop.url + "/"),
        ("pageview", shop.url + "/second"),
        ("pageview", shop.url + "/"),
    ]
    rows = wait_for(shop.app, lambda rows: len(named(rows, "pageview")) == 3, "3 pageviews")
    assert sorted(row.pathname for row in named(rows, "pageview")) == ["/", "/", "/second"]
    [second] = [row for row in rows if row.pathname == "/second"]
    assert (second.url, second.screen_width) == (shop.url + "/second", 1280)
    assert tab.errors == []


def test_track_stores_a_custom_event_with_its_props(
    shop: Shop, open_tab: Callable[..., Tab]
) -> None:
    tab = open_tab(shop.url + "/")
    tab.page.click("#signup")
    rows = wait_for(shop.app, lambda rows: bool(named(rows, "Signup")), "Signup")
    [signup] = named(rows, "Signup")
    assert signup.props == {"plan": "pro", "seats": 3, "trial": True}
    assert (signup.url, signup.pathname, signup.screen_width) == (shop.url + "/", "/", 1280)
    assert tab.errors == []


def test_an_outbound_click_is_stored_although_the_page_navigates_away(
    shop: Shop, open_tab: Callable[..., Tab]
) -> None:
    tab = open_tab(shop.url + "/", route=True)
    tab.page.click("#outbound")
    tab.page.wait_for_url(OUTBOUND)
    rows = wait_for(
        shop.app, lambda rows: bool(named(rows, "Outbound Link: Click")), "the outbound click"
    )
    [click] = named(rows, "Outbound Link: Click")
    assert click.props == {"url": OUTBOUND}
    assert click.url == shop.url + "/"  # the page the link was on
    assert tab.errors == []


def test_a_click_on_a_file_link_is_a_file_download(
    shop: Shop, open_tab: Callable[..., Tab]
) -> None:
    tab = open_tab(shop.url + "/")
    tab.page.click("#download")
    rows = wait_for(shop.app, lambda rows: bool(named(rows, "File Download")), "the download")
    [download] = named(rows, "File Download")
    assert download.props == {"url": shop.url + "/files/report.pdf"}
    assert tab.errors == []


def test_a_prerendered_page_sends_nothing_until_it_is_shown(
    shop: Shop, open_tab: Callable[..., Tab]
) -> None:
    tab = open_tab(shop.url + "/", prerendered=True)
    tab.page.evaluate("flaskTracking.track('Early')")
    assert tab.sent() == []
    tab.page.evaluate(
        "window.__prerendering = false; document.dispatchEvent(new Event('prerenderingchange'))"
    )
    assert [event["name"] for event in tab.sent()] == ["pageview", "Queued", "Early"]
    wait_for(shop.app, lambda rows: len(rows) == 3, "the events held back while prerendering")
    assert tab.errors == []


def test_the_snippet_as_offered_stays_silent_on_localhost(
    shop: Shop, open_tab: Callable[..., Tab]
) -> None:
    assert "data-allow-localhost" not in shop.snippet
    tab = open_tab(shop.url + "/quiet")
    tab.page.click("#signup")  # track() exists, and does nothing
    tab.page.evaluate("flaskTracking.q.push(['Later'])")
    assert tab.page.evaluate("typeof flaskTracking.track") == "function"
    assert tab.sent() == []
    assert stored(shop.app) == []
    assert tab.errors == []
    # …but says why, once, in the console: the owner testing the snippet is not left guessing.
    assert tab.infos == [
        'Flask-Tracking: page ignored, local (data-allow-localhost="true" counts it)'
    ]


def test_the_setup_page_turns_green_when_the_first_pageview_arrives(
    shop: Shop, open_tab: Callable[..., Tab], browser: Browser
) -> None:
    """The owner watches the setup page; the customer's page sends its first pageview; the
    writer (a thread here, as `serve` runs one) stores it and the check turns green."""
    owner = browser.new_context(user_agent=CHROME, viewport=VIEWPORT)
    owner.grant_permissions(["clipboard-read", "clipboard-write"], origin=shop.api)
    page = owner.new_page()
    page.goto(shop.api + "/login/")
    page.fill("input[name=email]", "owner@example.com")
    page.fill("input[name=password]", "correct horse battery")
    page.locator("form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/(sites/)?$"))
    page.goto(f"{shop.api}/sites/{shop.site_id}/setup")
    status = page.locator("#setup-status")
    expect(status).to_have_class(re.compile(r"\bwaiting\b"))
    expect(status).to_contain_text("Waiting for the first pageview")
    page.get_by_role("button", name="Copy the snippet").click()
    expect(page.locator(".copied")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == shop.snippet

    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            stored(shop.app)
            stop.wait(0.2)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        visitor = open_tab(shop.url + "/")
        assert visitor.sent()[0]["name"] == "pageview"
        expect(status).to_have_class(re.compile(r"\breceived\b"), timeout=10_000)
        expect(status).to_contain_text("Receiving events")
        expect(status).to_contain_text(re.compile(r"\d+ stored, the newest at"))
        expect(status.get_by_role("link", name="Open the dashboard")).to_be_visible()
        page.screenshot(path=SCREENSHOTS / "setup-received.png", full_page=True)
    finally:
        stop.set()
        thread.join(timeout=5)
    owner.close()


def test_an_owner_defines_goals_and_a_funnel_and_sees_a_visitor_convert(
    shop: Shop, open_tab: Callable[..., Tab], browser: Browser
) -> None:
    """Goals and a funnel defined on the settings page in the browser; a visitor reaches the
    second page and signs up on the customer's site; the dashboard's Goals panel and the
    funnel show the conversion."""
    owner = browser.new_context(user_agent=CHROME, viewport=VIEWPORT)
    page = owner.new_page()
    page.goto(shop.api + "/login/")
    page.fill("input[name=email]", "owner@example.com")
    page.fill("input[name=password]", "correct horse battery")
    page.locator("form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/(sites/)?$"))
    settings = f"{shop.api}/sites/{shop.site_id}/edit"
    for fields in (
        {"goal-name": "Second page", "goal-kind": "page", "goal-path": "/sec*"},
        {
            "goal-name": "Pro signup",
            "goal-kind": "event",
            "goal-event": "Signup",
            "goal-property": "plan",
            "goal-property_value": "pro",
            "goal-revenue_property": "seats",
            "goal-currency": "eur",
        },
    ):
        page.goto(settings)
        for name, value in fields.items():
            if name == "goal-kind":
                page.select_option(f"select[name='{name}']", value)
            else:
                page.fill(f"input[name='{name}']", value)
        page.get_by_role("button", name="Add goal").click()
        page.wait_for_url(re.compile(r"#goals$"))
    page.fill("input[name='funnel-name']", "Checkout")
    page.select_option("select[name='funnel-steps-0']", label="Second page")
    page.select_option("select[name='funnel-steps-1']", label="Pro signup")
    page.get_by_role("button", name="Add funnel").click()
    page.wait_for_url(re.compile(r"#funnels$"))
    expect(page.locator('tr[data-funnel="Checkout"]')).to_contain_text("Second page → Pro signup")

    visitor = open_tab(shop.url + "/")
    visitor.page.click("#push")  # a pageview of /second
    # Stored before the signup is sent: the two requests could otherwise arrive (and be
    # timed by the server) in the other order, and a funnel counts steps in order.
    wait_for(shop.app, lambda rows: any(r.pathname == "/second" for r in rows), "/second")
    visitor.page.click("#signup")  # Signup {plan: pro, seats: 3}
    wait_for(shop.app, lambda rows: bool(named(rows, "Signup")), "Signup")

    page.goto(f"{shop.api}/sites/{shop.site_id}?period=today")
    goals = page.locator('section[data-panel="Goals"]')
    second = goals.locator('tr[data-goal="Second page"] td')
    expect(second.nth(0)).to_contain_text("1")  # visitors
    expect(second.nth(2)).to_contain_text("100.0%")  # the day's one visitor converted
    signup = goals.locator('tr[data-goal="Pro signup"] td')
    expect(signup.nth(1)).to_contain_text("1")  # conversions
    expect(signup.nth(3)).to_contain_text("EUR 3.00")  # revenue: the seats property
    goals.get_by_role("link", name="Checkout").click()
    page.wait_for_url(re.compile(r"funnel=Checkout"))
    steps = page.locator("ol.funnel-steps li .count")
    expect(steps).to_have_count(2)
    expect(steps.nth(0)).to_contain_text("1 (100.0%)")
    expect(steps.nth(1)).to_contain_text("1 (100.0%)")
    # The goal filters the whole dashboard to the visitors who converted.
    goals.get_by_role("link", name="Pro signup").click()
    page.wait_for_url(re.compile(r"filter=goal"))
    expect(page.locator(".chip")).to_contain_text("Goal is Pro signup")
    owner.close()
    assert visitor.errors == []


def test_the_tracker_assigns_as_the_server_does(shop: Shop, open_tab: Callable[..., Tab]) -> None:
    """flaskTracking.assign in Chromium and reports/experiments.assign agree on every unit,
    including non-ASCII ones (the hash is over UTF-8)."""
    tab = open_tab(shop.url + "/")
    units = [f"user-{n}" for n in range(300)] + ["ünïcode-☃", "", "名前"]
    found = tab.page.evaluate(
        "units => units.map(u => flaskTracking.assign('exp', u, {control: 1, treat: 3}))", units
    )
    variants = make_variants([("control", 1), ("treat", 3)])
    assert found == [assign("exp", unit, variants) for unit in units]
    equal = tab.page.evaluate("flaskTracking.assign('exp', 'user-1', ['a', 'b'])")
    assert equal == assign("exp", "user-1", make_variants([("a", 1), ("b", 1)]))
    assert tab.page.evaluate("flaskTracking.assign('exp', 'u', {a: 1, b: 0})") is None
    assert tab.errors == []


def test_an_owner_runs_an_experiment_and_sees_the_converting_variant(
    shop: Shop, open_tab: Callable[..., Tab], browser: Browser
) -> None:
    """An experiment added on the experiments page in the browser; a visitor of the
    customer's experiment page (with a data-user-id, so its variant is known) sees their
    variant, is counted as exposed once, signs up; the results page shows it."""
    owner = browser.new_context(user_agent=CHROME, viewport=VIEWPORT)
    page = owner.new_page()
    page.goto(shop.api + "/login/")
    page.fill("input[name=email]", "owner@example.com")
    page.fill("input[name=password]", "correct horse battery")
    page.locator("form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/(sites/)?$"))
    page.goto(f"{shop.api}/sites/{shop.site_id}/edit")
    page.fill("input[name='goal-name']", "Signup")
    page.select_option("select[name='goal-kind']", "event")
    page.fill("input[name='goal-event']", "Signup")
    page.get_by_role("button", name="Add goal").click()
    page.wait_for_url(re.compile(r"#goals$"))
    page.goto(f"{shop.api}/sites/{shop.site_id}")
    page.get_by_role("link", name="Experiments").click()
    page.fill("input[name='experiment-name']", "Signup copy")
    page.fill("input[name='experiment-key']", "signup-copy")
    page.fill("textarea[name='experiment-variants']", "control = 50\nbold = 50")
    page.select_option("select[name='experiment-primary']", label="Signup")
    page.get_by_role("button", name="Add experiment").click()
    page.wait_for_url(re.compile(r"/experiments/[0-9]+$"))
    expect(page.locator("h1 .status")).to_have_text("running")

    expected = assign(
        "signup-copy", EXPERIMENT_USER, make_variants([("control", 50), ("bold", 50)])
    )
    visitor = open_tab(shop.url + "/experiment")
    expect(visitor.page.locator("#signup")).to_have_attribute("data-variant", expected)
    # The server times events as they arrive, and a conversion counts after the exposure: the
    # signup is sent once the exposure is stored, not racing it (seen on CI's PostgreSQL leg).
    wait_for(shop.app, lambda rows: bool(named(rows, "Experiment Exposure")), "the exposure")
    visitor.page.click("#signup")
    rows = wait_for(shop.app, lambda rows: bool(named(rows, "Signup")), "Signup")
    [exposure] = named(rows, "Experiment Exposure")
    assert exposure.props == {"experiment": "signup-copy", "variant": expected}
    # A second call on the same page load is the same variant, and no second exposure.
    assert visitor.page.evaluate("flaskTracking.experiment('signup-copy', {})") == expected
    assert sum(1 for sent in visitor.sent() if sent["name"] == "Experiment Exposure") == 1

    page.reload()
    expect(page.locator(f'[data-exposed="{expected}"]')).to_have_text("1")
    row = page.locator(f'section[data-goal="Signup"] tr[data-variant="{expected}"] td')
    expect(row.nth(1)).to_have_text("1")  # converted
    expect(row.nth(2)).to_have_text("100.00%")
    # The dashboard's Goals panel counts the same signup.
    page.goto(f"{shop.api}/sites/{shop.site_id}?period=today")
    signup = page.locator('section[data-panel="Goals"] tr[data-goal="Signup"] td')
    expect(signup.nth(0)).to_contain_text("1")
    owner.close()
    assert visitor.errors == []


def test_the_readmes_example_experiment_page_works_as_written(
    shop: Shop, open_tab: Callable[..., Tab]
) -> None:
    """The README's copy-pasteable page: the visitor (data-user-id a1b2c3d4) gets the variant
    the server's assign gives, the page shows it, and the exposure and signup are stored."""
    expected = assign("pricing-2026", "a1b2c3d4", make_variants([("control", 50), ("annual", 50)]))
    visitor = open_tab(shop.url + "/readme-example")
    annual = visitor.page.locator(".annual-only")
    if expected == "annual":
        expect(annual).to_be_visible()
    else:
        expect(annual).to_be_hidden()
    visitor.page.click("#buy")
    rows = wait_for(shop.app, lambda rows: bool(named(rows, "Signup")), "Signup")
    [exposure] = named(rows, "Experiment Exposure")
    assert exposure.props == {"experiment": "pricing-2026", "variant": expected}
    assert named(rows, "Signup")[0].props == {"plan": "pro"}
    assert visitor.errors == []
