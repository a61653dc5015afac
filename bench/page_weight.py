"""What the dashboard weighs: its page and every file it loads, gzipped as a proxy would send
them; what a second view costs (the page alone: the files are cached); and whether the world
map's part of the page (each country's shade, link and title; the outlines are world.svg) is
better inline than fetched.

    .venv/bin/python bench/page_weight.py

Starts `flask-tracking serve` on a fresh data directory with `flask-tracking demo` (3,000
visits), logs in over HTTP and fetches the dashboard ("Last 30 days") and each stylesheet,
script and sprite it references; prints each one's size, raw and gzipped (level 6, nginx's
default), the total, and the map's share of the page: inline (in the page's gzip) against a
separate SVG file (its own gzip plus ~350 bytes of request and response headers).
"""

from __future__ import annotations

import gzip
import http.cookiejar
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HEADERS = 350  # bytes of a request and its response's headers, HTTP/1.1, roughly


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def packed(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=6))


def main() -> int:
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FLASK_TRACKING_")},
            "FLASK_TRACKING_CONFIG": "production",
            "SECRET_KEY": secrets.token_hex(32),
            "FLASK_TRACKING_SQLALCHEMY_DATABASE_URI": f"sqlite:///{data}/app.db",
            "FLASK_TRACKING_DATA_DIR": data,
            "FLASK_TRACKING_LOG_LEVEL": "WARNING",
            # Plain HTTP on loopback: the login cookie must come back without TLS.
            "FLASK_TRACKING_SESSION_COOKIE_SECURE": "false",
        }
        run = [str(BIN / "flask-tracking")]
        subprocess.run([*run, "db", "upgrade"], env=env, check=True, capture_output=True)
        subprocess.run([*run, "demo"], env=env, check=True, capture_output=True)
        server = subprocess.Popen(
            [*run, "serve", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            return measure(f"http://127.0.0.1:{port}")
        finally:
            server.terminate()
            server.wait(10)


def measure(base: str) -> int:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    for _ in range(100):
        try:
            login = opener.open(base + "/login/", timeout=5).read().decode()
            break
        except OSError:
            time.sleep(0.2)
    else:
        sys.exit("the server did not start")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login)
    assert token, "no CSRF token on the login page"
    form = {"csrf_token": token.group(1), "email": "demo@example.com", "password": "demo-password"}
    opener.open(base + "/login/", urllib.parse.urlencode(form).encode(), timeout=10).read()
    page = opener.open(base + "/sites/1", timeout=60).read()
    html = page.decode()
    assert "data-metric" in html, "not the dashboard"
    files = sorted(set(re.findall(r'(?:href|src)="(/static/[^"#]+)', html)))
    rows = [("the page (HTML)", len(page), packed(page))]
    for path in files:
        body = opener.open(base + path, timeout=10).read()
        rows.append((path, len(body), packed(body)))
    print(f"{'':44} {'bytes':>9} {'gzipped':>9}")
    for name, raw, gz in rows:
        print(f"{name:44} {raw:>9,} {gz:>9,}")
    total_raw, total_gz = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"{'first view (' + str(len(rows)) + ' requests)':44} {total_raw:>9,} {total_gz:>9,}")
    print(f"{'next views (the page; files cached)':44} {len(page):>9,} {packed(page):>9,}")
    found = re.search(r'<svg [^>]*class="world-map".*?</svg>', html, re.S)
    assert found, "no map on the page"
    print(f"world map: {'outlines in world.svg' if '<use ' in found.group(0) else 'inline'}")
    without = (html[: found.start()] + html[found.end() :]).encode()
    inline_cost = packed(page) - packed(without)
    fetched_cost = packed(found.group(0).encode()) + HEADERS
    smaller = "inline" if inline_cost <= fetched_cost else "its own file"
    print(
        f"world map: inline {inline_cost:,} B of the page's gzip; as its own file "
        f"{fetched_cost:,} B (its gzip + headers): {smaller} is smaller"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
