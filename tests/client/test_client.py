"""The WSGI client (flask_tracking_client): what becomes a pageview, and that the host app never
waits on the analytics server — inside a real Flask app and a plain WSGI app under a real HTTP
server, with the Flask-Tracking server first away (a port that accepts connections and never
answers: the worst case for a blocking client), then back on the same address."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_tracking_client import Tracker
from werkzeug.serving import make_server
from werkzeug.test import Client

from flask_tracking.extensions import db
from flask_tracking.tracking.models import Site
from flask_tracking.users import accounts, apikeys
from tests.conftest import PASSWORD, stored_events
from tests.live import LiveServer, QuietHandler

ROOT = Path(__file__).resolve().parents[2]
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
VISITOR = {"REMOTE_ADDR": "203.0.113.9"}


def html_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """A plain WSGI app: HTML pages, a JSON endpoint, a 404."""
    path = environ["PATH_INFO"]
    if path == "/api/data":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]
    if path == "/missing":
        start_response("404 Not Found", [("Content-Type", "text/html")])
        return [b"<p>no</p>"]
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [b"<!doctype html><title>page</title><p>", path.encode(), b"</p>"]


def offline(**options: Any) -> Tracker:
    """A tracker whose server is nowhere (the tests read its queue)."""
    return Tracker("http://127.0.0.1:9", site=1, api_key="ft_x", **options)


def test_html_pages_answered_to_a_get_become_pageviews() -> None:
    tracker = offline(exclude=("/admin/*",))
    tracker._ensure_sender = lambda: None  # type: ignore[method-assign]  # keep them queued
    client = Client(
        tracker.wrap(html_app)
    )  # buffered: the answer is read and closed, as servers do
    headers = {"User-Agent": FIREFOX, "Referer": "https://news.example/"}
    assert (
        client.get(
            "/pricing?plan=pro", headers=headers, environ_base=VISITOR, buffered=True
        ).status_code
        == 200
    )
    client.get("/api/data", headers=headers, environ_base=VISITOR, buffered=True)  # not HTML
    client.get("/missing", headers=headers, environ_base=VISITOR, buffered=True)  # not a success
    client.post("/form", headers=headers, environ_base=VISITOR, buffered=True)  # not a GET
    client.get("/admin/users", headers=headers, environ_base=VISITOR, buffered=True)  # excluded
    client.get(
        "/dnt", headers={**headers, "DNT": "1"}, environ_base=VISITOR, buffered=True
    )  # Do-Not-Track
    client.get(
        "/next", headers={**headers, "Sec-Purpose": "prefetch"}, environ_base=VISITOR, buffered=True
    )
    client.get("/anonymous", environ_base=VISITOR, buffered=True)  # no User-Agent: nothing to send
    assert tracker.pending() == [
        {
            "name": "pageview",
            "url": "http://localhost/pricing?plan=pro",
            "ip": "203.0.113.9",
            "user_agent": FIREFOX,
            "referrer": "https://news.example/",
        }
    ]


def test_behind_a_proxy_the_forwarded_visitor_host_and_scheme_are_used() -> None:
    tracker = offline(proxy_count=1, include=("/shop/*",))
    tracker._ensure_sender = lambda: None  # type: ignore[method-assign]
    client = Client(
        tracker.wrap(html_app)
    )  # buffered: the answer is read and closed, as servers do
    forwarded = {
        "User-Agent": FIREFOX,
        "X-Forwarded-For": "198.51.100.1, 192.0.2.44",  # a spoofed first hop, then the visitor
        "X-Forwarded-Host": "shop.example",
        "X-Forwarded-Proto": "https",
    }
    client.get(
        "/shop/cart", headers=forwarded, environ_base={"REMOTE_ADDR": "10.0.0.2"}, buffered=True
    )
    client.get("/blog/", headers=forwarded, buffered=True)  # not included
    client.get("/shop/x", headers={**forwarded, "X-Forwarded-For": "not-an-address"}, buffered=True)
    [event] = tracker.pending()
    assert (event["url"], event["ip"]) == ("https://shop.example/shop/cart", "192.0.2.44")


def test_a_full_queue_drops_and_counts_and_the_host_still_answers() -> None:
    tracker = offline(queue_size=2)
    tracker._ensure_sender = lambda: None  # type: ignore[method-assign]
    client = Client(
        tracker.wrap(html_app)
    )  # buffered: the answer is read and closed, as servers do
    for n in range(5):
        answer = client.get(
            f"/p{n}", headers={"User-Agent": FIREFOX}, environ_base=VISITOR, buffered=True
        )
        assert answer.status_code == 200
    assert (tracker.stats.queued, tracker.stats.dropped_full) == (2, 3)
    assert tracker.track("Signup", "https://a.example/", "203.0.113.9", FIREFOX) is False
    assert tracker.track("Signup", "https://a.example/", "not an ip", FIREFOX) is False


class Blackhole:
    """A port that takes connections and never answers: an analytics server that hangs."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(100)

    def close(self) -> None:
        self.sock.close()


class Served:
    """A WSGI app on a given loopback port, from a thread."""

    def __init__(self, app: Any, port: int) -> None:
        self.server = make_server(
            "127.0.0.1", port, app, threaded=True, request_handler=QuietHandler
        )
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def analytics(app_factory: Any, unused_port: int) -> Iterator[tuple[Flask, int, str, int]]:
    """A Flask-Tracking app with a site and an owner's key, and the port it will serve on."""
    app = app_factory()
    with app.app_context():
        owner = accounts.register("owner@example.com", PASSWORD, verified=True)
        site = Site(owner_id=owner.id, base_url="https://host.example")
        db.session.add(site)
        db.session.commit()
        key = apikeys.create_key(owner, "client", apikeys.READ_WRITE)[1]
        site_id = site.id
    yield app, site_id, key, unused_port


def get(url: str) -> tuple[int, float]:
    request = urllib.request.Request(url, headers={"User-Agent": FIREFOX})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()
        return answer.status, time.perf_counter() - started


@pytest.mark.integration
@pytest.mark.parametrize("host", ["flask", "wsgi"])
def test_the_host_keeps_answering_while_the_server_is_away_and_events_arrive_after(
    analytics: tuple[Flask, int, str, int], host: str
) -> None:
    app, site_id, key, port = analytics
    tracker = Tracker(
        f"http://127.0.0.1:{port}", site=site_id, api_key=key, timeout=2.0, flush_interval=0.05
    )
    if host == "flask":
        hosted = Flask("host")
        hosted.add_url_rule("/page/<int:n>", "page", lambda n: f"<!doctype html><p>{n}</p>")
        tracker.init_app(hosted)
        wsgi: Any = hosted
    else:
        wsgi = tracker.wrap(html_app)
    site = LiveServer(wsgi)
    hole = Blackhole(port)
    try:
        times = []
        for n in range(20):
            status, took = get(f"{site.url}/page/{n}")
            assert status == 200
            times.append(took)
        # A client that waited on the server would take its 2 s timeout on each request.
        assert max(times) < 1.0, times
        assert tracker.stats.sent == 0  # the first batch hangs on the silent port meanwhile
        hole.close()
        back = Served(app, port)  # the server returns, on the same address
        try:
            for n in range(20, 30):
                assert get(f"{site.url}/page/{n}")[0] == 200
            assert tracker.flush(timeout=60), tracker.stats
        finally:
            back.close()
    finally:
        hole.close()
        site.close()
        tracker.close(0)
    assert (tracker.stats.sent, tracker.stats.dropped_full, tracker.stats.rejected) == (30, 0, 0)
    paths = sorted(e.pathname for e in stored_events(app) if e.site_id == site_id)
    assert paths == sorted(f"/page/{n}" for n in range(30))


def test_the_client_needs_nothing_but_the_standard_library(tmp_path: Path) -> None:
    """Imported where the server's dependencies cannot be, it still wraps and queues; and its
    distribution (clients/python) declares no dependency and holds only the client."""
    blocked = ["flask", "werkzeug", "sqlalchemy", "pydantic", "flask_tracking", "orjson"]
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
sys.path.insert(0, {str(ROOT / "clients" / "python")!r})
from flask_tracking_client import Tracker
t = Tracker("http://127.0.0.1:9", site=1, api_key="k")
t._ensure_sender = lambda: None
app = t.wrap(lambda e, s: (s("200 OK", [("Content-Type", "text/html")]), [b"x"])[1])
body = app({{"REQUEST_METHOD": "GET", "PATH_INFO": "/", "REMOTE_ADDR": "192.0.2.1",
             "HTTP_USER_AGENT": "ua", "HTTP_HOST": "h"}}, lambda *a: None)
body.close()
print(len(t.pending()))
"""
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path),
         str(ROOT / "clients" / "python")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = tmp_path.glob("flask_tracking_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert [n for n in names if not n.startswith("flask_tracking_client-")] == [
        "flask_tracking_client/__init__.py"
    ]
    assert "Requires-Dist" not in metadata
