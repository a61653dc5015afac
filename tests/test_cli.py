"""The flask-tracking command line: migrations, the demo data and the Granian server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, inspect, select, text

from flask_tracking.demo import SITE_URL
from flask_tracking.extensions import db
from flask_tracking.tracking.models import Site
from flask_tracking.users.models import User
from tests.conftest import count_rows, stored_events

SCRIPT = Path(sys.executable).parent / "flask-tracking"
LOGIN_LINE = re.compile(r"Log in at /login/ with email (\S+) and password (\S+)")


def _head_revision(app: Flask) -> str:
    with app.app_context():
        config = app.extensions["migrate"].migrate.get_config()
        head = ScriptDirectory.from_config(config).get_current_head()
    assert head
    return head


def _stamped_revisions(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(text("SELECT version_num FROM alembic_version")))


def test_db_upgrade_is_idempotent(app: Flask, runner: FlaskCliRunner, make_user: Any) -> None:
    make_user(email="kept@example.com")
    with app.app_context():
        tables_before = set(inspect(db.engine).get_table_names())
    for _ in range(2):
        result = runner.invoke(args=["db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert result.exception is None
    assert _stamped_revisions(app) == [_head_revision(app)]
    with app.app_context():
        assert set(inspect(db.engine).get_table_names()) == tables_before
        assert db.session.scalar(select(User.email)) == "kept@example.com"


def _demo_counts(app: Flask) -> tuple[int, int, int]:
    """Users, sites and visits (sessions, as the dashboard counts visits)."""
    with app.app_context():
        users = db.session.scalar(select(func.count()).select_from(User)) or 0
        sites = db.session.scalar(select(func.count()).select_from(Site)) or 0
    return users, sites, count_rows(app, "sessions")


DEMO_LINE = re.compile(
    r"Demo site (\S+) has ([\d,]+) visits \(([\d,]+) pageviews, ([\d,]+) custom events\) "
    r"over (\d+) days, goals and a funnel\."
)


def test_demo_creates_a_user_a_site_and_visits(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["demo", "--visits", "50"])
    assert result.exit_code == 0, result.output
    said = DEMO_LINE.search(result.output)
    assert said, result.output
    site_url, visits, pageviews, custom, days = said.groups()
    assert (site_url, visits, days) == (SITE_URL, "50", "60")
    login = LOGIN_LINE.search(result.output)
    assert login, result.output
    assert login.groups() == ("demo@example.com", "demo-password")
    assert _demo_counts(app) == (1, 1, 50)  # 50 visits, as it says
    with app.app_context():
        site = db.session.scalars(select(Site)).one()
        assert site.base_url == SITE_URL
        assert site.owner.email == "demo@example.com"
        assert {goal.name for goal in site.goals} == {"Signup", "Saw pricing", "Read the docs"}
        assert [funnel.name for funnel in site.funnels] == ["Pricing to signup"]
    events = stored_events(app)
    assert all(event.url.startswith(SITE_URL) for event in events)
    assert len(events) == int(pageviews) + int(custom) >= 50


def test_demo_twice_reuses_the_user_and_the_site(app: Flask, runner: FlaskCliRunner) -> None:
    for _ in range(2):
        result = runner.invoke(args=["demo", "--visits", "50"])
        assert result.exit_code == 0, result.output
        assert "and password demo-password" in result.output
    assert _demo_counts(app) == (1, 1, 100)
    with app.app_context():
        site = db.session.scalars(select(Site)).one()
        assert len(site.goals) == 3 and len(site.funnels) == 1  # not added twice


def test_demo_never_changes_an_existing_accounts_password(
    app: Flask, runner: FlaskCliRunner
) -> None:
    assert runner.invoke(args=["demo", "--visits", "1"]).exit_code == 0
    result = runner.invoke(args=["demo", "--visits", "1", "--password", "another-password"])
    assert result.exit_code == 0, result.output
    assert "another-password" not in result.output  # it would not work: say so instead
    assert "password that account already had" in result.output
    response = app.test_client().post(
        "/login/", data={"email": "demo@example.com", "password": "demo-password"}
    )
    assert response.status_code == 302


def test_demo_visits_stay_within_the_days_it_reports(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["demo", "--visits", "200", "--days", "1"])
    assert result.exit_code == 0, result.output
    dates = [event.date for event in stored_events(app)]
    assert max(dates) - min(dates) < timedelta(days=1)


def test_the_demo_looks_like_a_real_sites_traffic(app: Flask, runner: FlaskCliRunner) -> None:
    """Two months of visits: no spike on the first day (every old visit was clamped onto
    one instant), quieter weekends and nights, growth against the previous 30 days, and
    goals that convert."""
    from statistics import median

    from flask_tracking.reports import stats
    from flask_tracking.reports.ranges import resolve

    result = runner.invoke(args=["demo", "--visits", "3000", "--seed", "2013"])
    assert result.exit_code == 0, result.output
    events = stored_events(app)
    now = datetime.now(UTC)
    assert min(e.date for e in events) >= now - timedelta(days=60, minutes=1)
    assert max(e.date for e in events) <= now
    with app.app_context():
        site = db.session.scalars(select(Site)).one()
        period = resolve(
            "custom", "UTC", now, start=(now - timedelta(days=59)).date(), end=now.date()
        )
        query = stats.ReportQuery(site.id, "UTC", period, (), site.definitions)
        with stats.Report(query) as report:
            series = report.timeseries("visits", compare=False).points
            goals = {found.goal.name: found.current.conversions for found in report.goals()}
        last30 = resolve("30d", "UTC", now)
        recent = stats.Report(stats.ReportQuery(site.id, "UTC", last30)).aggregate()
    per_day = {point.start.date(): point.value for point in series}
    whole = [per_day[d] for d in sorted(per_day)[1:-1]]  # the edge days are partial
    assert max(whole) < 2.5 * median(whole), whole  # no spike anywhere
    first_day = per_day[min(per_day)]
    assert first_day <= 2 * median(whole)
    weekend = [n for d, n in per_day.items() if d.weekday() >= 5 and n in whole]
    weekday = [n for d, n in per_day.items() if d.weekday() < 5 and n in whole]
    assert median(weekend) < median(weekday)
    starts = [e.date.hour for e in events if e.event == "pageview"]
    assert sum(1 for h in starts if 1 <= h < 5) * 3 < sum(1 for h in starts if 9 <= h < 13)
    change = recent.change("visits")
    assert change is not None and change > 0  # a real previous period, and growth
    assert goals["Signup"] > 0 and goals["Saw pricing"] > goals["Signup"]


def test_the_demo_user_can_log_in_and_see_the_visits(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["demo", "--visits", "50", "--days", "20"])
    assert result.exit_code == 0, result.output
    login = LOGIN_LINE.search(result.output)
    assert login, result.output
    email, password = login.groups()
    with app.app_context():
        site_id = db.session.scalars(select(Site.id)).one()
    client = app.test_client()
    response = client.post("/login/", data={"email": email, "password": password})
    assert response.status_code == 302
    page = client.get(f"/sites/{site_id}/visits")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert SITE_URL in body
    assert '<table class="visits">' in body
    assert 'data-count="visits">50<' in body
    assert "No events yet" not in body


def _cli_env(**settings: str) -> dict[str, str]:
    """The test process's environment (conftest removed the developer's settings) plus these."""
    data = tempfile.mkdtemp(prefix="flask-tracking-data-")  # never the user's or instance/
    return {**os.environ, "FLASK_TRACKING_DATA_DIR": data, **settings}


def _run_script(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the flask-tracking console script to its end; its output is captured as text."""
    return subprocess.run(
        [str(SCRIPT), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_console_script_lists_its_commands(tmp_path: Path) -> None:
    assert SCRIPT.is_file()
    assert os.access(SCRIPT, os.X_OK)
    result = _run_script("--help", env=_cli_env(FLASK_TRACKING_CONFIG="test"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: flask-tracking")
    listed = set(re.findall(r"^  (\S+)\s", result.stdout.split("Commands:", 1)[1], re.M))
    assert {"serve", "demo", "db", "run"} <= listed


def _get(url: str) -> tuple[int, dict[str, str], str]:
    with urllib.request.urlopen(url, timeout=2) as response:
        return (
            response.status,
            {k.lower(): v for k, v in response.headers.items()},
            response.read().decode("utf-8"),
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, wait, then SIGKILL the server's process group if it did not stop."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: the server and workers
            process.wait(timeout=10)


@pytest.mark.integration
@pytest.mark.slow
def test_serve_runs_the_app_under_granian(tmp_path: Path, unused_port: int) -> None:
    env = _cli_env(
        FLASK_TRACKING_CONFIG="development",
        FLASK_TRACKING_SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'serve.db'}",
        FLASK_TRACKING_GEOIP_PROVIDER="none",
    )
    upgrade = _run_script("db", "upgrade", env=env, cwd=tmp_path)
    assert upgrade.returncode == 0, upgrade.stderr
    assert (tmp_path / "serve.db").is_file()

    port = unused_port
    url = f"http://127.0.0.1:{port}/"
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(SCRIPT), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 20
            answer = None
            while answer is None:
                if process.poll() is not None:
                    pytest.fail(f"serve exited with {process.returncode}:\n{log_path.read_text()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"serve did not answer within 20 s:\n{log_path.read_text()}")
                try:
                    answer = _get(url)
                except urllib.error.HTTPError as error:
                    error.close()
                    pytest.fail(f"serve answered {error.code}:\n{log_path.read_text()}")
                except OSError:  # refused, reset or timed out while it starts
                    time.sleep(0.2)
            status, headers, body = answer
            assert status == 200
            assert "Flask-Tracking" in body
            assert headers.get("server") == "granian"
            assert re.fullmatch(r"[0-9a-f]{32}", headers.get("x-request-id", ""))
        finally:
            _stop(process)
    output = log_path.read_text()
    assert f"Serving Flask-Tracking on {url.rstrip('/')} with 1 worker(s)" in output
    assert "granian" in output.lower()


@pytest.mark.slow
def test_events_compact_gives_back_the_space_of_deleted_rows(
    app_factory: Any, site_in: Any, tmp_path: Path
) -> None:
    """Delete a site's events, compact: the file shrinks and the other site keeps every row."""
    from flask_tracking.events import close_store, current_store
    from flask_tracking.events.embedded import on_disk
    from tests.api.helpers import add_visits

    app = app_factory(EVENTS_DATABASE_URL=f"duckdb:///{tmp_path / 'events.duckdb'}")
    kept, dropped = site_in(app), site_in(app)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for site_id, count in ((kept, 2_000), (dropped, 60_000)):
        rows = [
            {
                "date": start + timedelta(seconds=7 * n),
                "pathname": f"/p/{n % 500}",
                "visitor_id": n // 5,
            }
            for n in range(count)
        ]
        add_visits(app, site_id, rows)
    before = stored_events(app)
    with app.app_context():
        current_store().delete_site(dropped)
    runner = app.test_cli_runner()
    size = on_disk(str(tmp_path / "events.duckdb"))  # the file and its write-ahead log
    result = runner.invoke(args=["events", "compact"])
    assert result.exit_code == 0, result.output
    assert "Compacted the event store" in result.output
    assert on_disk(str(tmp_path / "events.duckdb")) < size
    assert stored_events(app) == [e for e in before if e.site_id == kept]
    info = runner.invoke(args=["events", "info"])
    assert "engine: duckdb" in info.output
    assert "bytes per event" in info.output
    close_store(app)
