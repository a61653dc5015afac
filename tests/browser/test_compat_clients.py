"""The official, unmodified clients of the two most used open trackers, pointed at a live
server: `@plausible-analytics/tracker` in Chromium on a test page (pageviews, a custom event
with properties, an outbound link) and `@umami/node` sending events from Node — then the
events are on our dashboard with the right pages, sources and properties. Both packages come
pinned from the npm registry (assets/package-lock.json, `make assets`)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, Route

from flask_tracking.extensions import db
from flask_tracking.tracking.models import Site
from flask_tracking.users import accounts
from tests.browser.conftest import CHROME, LiveServer
from tests.conftest import PASSWORD, stored_events

pytestmark = [pytest.mark.browser, pytest.mark.integration]

MODULES = Path(__file__).resolve().parents[2] / "assets" / "node_modules"
PLAUSIBLE = MODULES / "@plausible-analytics" / "tracker" / "plausible.js"
UMAMI = MODULES / "@umami" / "node" / "dist" / "index.js"
ORIGIN = "https://shop.example"  # the test page's, answered by the browser's routes
UMAMI_ID = "0b5b8f5e-6f71-4d8e-a0f4-3a2e6f1c9d20"

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>
<body><h1>Shop</h1><a id="out" href="https://elsewhere.example/partner">Partner</a>
<button id="buy">Buy</button>
<script type="module">
  import { init, track } from "/plausible.js";
  window.__plausible = true;  // the client's own switch for automated browsers
  init({ domain: "shop.example", endpoint: "%(endpoint)s", outboundLinks: true });
  document.getElementById("buy").addEventListener("click", () =>
    track("Purchase", { props: { plan: "pro", seats: "3" },
                        callback: (r) => { window.sent = r; } }));
</script></body></html>"""


@pytest.fixture
def served(app_factory: Any) -> Iterator[tuple[Flask, str, int]]:
    app = app_factory()
    with app.app_context():
        owner = accounts.register("owner@example.com", PASSWORD, verified=True)
        site = Site(owner_id=owner.id, base_url="https://shop.example", umami_id=UMAMI_ID)
        db.session.add(site)
        db.session.commit()
        site_id = site.id
    server = LiveServer(app)
    try:
        yield app, server.url, site_id
    finally:
        server.close()


def test_plausibles_own_tracker_in_chromium(
    browser: Browser, served: tuple[Flask, str, int]
) -> None:
    app, url, site_id = served
    assert PLAUSIBLE.is_file(), f"{PLAUSIBLE} is missing: run `make assets`"
    context = browser.new_context(user_agent=CHROME)
    # What a visitor's browser asks before a public page's script reaches a server on the
    # loopback (the test server is there; a real one is not): granted, as a visitor would.
    context.grant_permissions(["local-network-access"], origin=ORIGIN)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def site(route: Route) -> None:
        path = route.request.url.removeprefix(ORIGIN)
        if path == "/plausible.js":
            route.fulfill(body=PLAUSIBLE.read_bytes(), content_type="text/javascript")
        else:
            route.fulfill(body=PAGE % {"endpoint": f"{url}/api/event"}, content_type="text/html")

    page.route(f"{ORIGIN}/**", site)
    page.route("https://elsewhere.example/**", lambda r: r.fulfill(body="<p>Partner</p>"))
    page.goto(f"{ORIGIN}/pricing?utm_source=newsletter", referer="https://news.example/")
    page.wait_for_function("window.plausible && window.plausible.l")
    page.click("#buy")
    page.wait_for_function("window.sent !== undefined")
    assert page.evaluate("window.sent") == {"status": 202}
    with page.expect_request(f"{url}/api/event") as outbound:
        page.click("#out")
    assert json.loads(outbound.value.post_data or "{}")["n"] == "Outbound Link: Click"
    context.close()
    assert errors == []

    events = {event.event: event for event in stored_events(app) if event.site_id == site_id}
    assert set(events) >= {"pageview", "Purchase", "Outbound Link: Click"}
    view = events["pageview"]
    assert (view.pathname, view.hostname, view.utm_source) == (
        "/pricing",
        "shop.example",
        "newsletter",
    )
    assert view.referrer_source == "news.example" and view.browser == "Chrome"
    assert events["Purchase"].props == {"plan": "pro", "seats": "3"}
    outbound_props = events["Outbound Link: Click"].props or {}
    assert outbound_props["url"] == "https://elsewhere.example/partner"


def test_umamis_node_client(served: tuple[Flask, str, int], tmp_path: Path) -> None:
    app, url, site_id = served
    node = shutil.which("node")
    assert node, "Node.js is missing: `make test` installs it (tools/prerequisites.py)"
    assert UMAMI.is_file(), f"{UMAMI} is missing: run `make assets`"
    script = tmp_path / "send.cjs"
    script.write_text(
        f"""
const {{ Umami }} = require({json.dumps(str(UMAMI))});
const umami = new Umami();
umami.init({{ websiteId: {json.dumps(UMAMI_ID)}, hostUrl: {json.dumps(url)},
              userAgent: {json.dumps(CHROME)} }});
(async () => {{
  const answers = [];
  answers.push((await umami.track({{ hostname: "shop.example", url: "/docs/start",
    referrer: "https://search.example/?q=analytics", screen: "1440x900", language: "en-GB",
    title: "Start" }})).status);
  answers.push((await umami.track("Signup", {{ plan: "team", seats: 5 }})).status);
  console.log(JSON.stringify(answers));
}})().catch((error) => {{ console.error(error); process.exit(1); }});
"""
    )
    done = subprocess.run(
        [node, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [200, 200]
    events = [e for e in stored_events(app) if e.site_id == site_id]
    assert [(e.event, e.pathname) for e in events] == [("pageview", "/docs/start"), ("Signup", "/")]
    assert events[0].referrer_source == "search.example" and events[0].screen_width == 1440
    assert events[1].props == {"plan": "team", "seats": 5}
