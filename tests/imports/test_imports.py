"""Importing other tools' history: tiny fixture files written for these tests (not copied),
with hand-checked totals; a dry run says what would happen and writes nothing; an import is
all or nothing; a malformed file is refused with its line and reason; the same file twice is
refused the second time."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path
from typing import Any

import duckdb
from flask import Flask

from flask_tracking.extensions import db
from flask_tracking.tracking.models import Site
from tests.conftest import stored_events

FIXTURES = Path(__file__).parent / "fixtures"


def run(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["import", *args])


def test_goatcounter_export(site: tuple[Flask, int]) -> None:
    app, site_id = site
    path = str(FIXTURES / "goatcounter.csv")
    dry = run(app, "goatcounter", path, "--site", str(site_id), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "4 event(s) to import, 2025-06-01 10:00 to 2025-06-02 08:30 UTC" in dry.output
    assert "skipped 1: bots (GoatCounter marked them)" in dry.output
    assert stored_events(app) == []
    done = run(app, "goatcounter", path, "--site", str(site_id))
    assert done.exit_code == 0, done.output
    events = stored_events(app)
    assert [(e.event, e.pathname) for e in events] == [
        ("pageview", "/"), ("pageview", "/pricing"), ("signup", "/"), ("pageview", "/blog/")
    ]  # fmt: skip
    assert len({e.visitor_id for e in events}) == 2  # two sessions
    assert [e.country_code for e in events] == ["NL", "NL", "NL", "US"]
    assert events[0].referrer_source == "Hacker News" and events[0].screen_width == 1920
    assert events[3].browser == "Mobile Safari"
    again = run(app, "goatcounter", path, "--site", str(site_id))
    assert again.exit_code != 0 and "imported into this site already" in again.output
    assert len(stored_events(app)) == 4


def test_access_logs_combined_common_nginx_and_caddy(site: tuple[Flask, int]) -> None:
    app, site_id = site
    done = run(app, "access-log", str(FIXTURES / "access.log"), "--site", str(site_id))
    assert done.exit_code == 0, done.output
    for said in (
        "5 event(s) to import",
        "skipped 1: assets (scripts, styles, images, feeds)",
        "skipped 1: bots and crawlers (the collector drops them too)",
        "skipped 1: not a GET",
        "skipped 1: not a success (redirects, errors)",
    ):
        assert said in done.output, done.output
    events = stored_events(app)
    # /pricing at 12:01 +02:00 is 10:01 UTC: before /docs/install
    assert [e.pathname for e in events] == ["/docs/", "/pricing", "/docs/install", "/", "/blog/"]
    assert events[0].referrer_source == "search.example" and events[0].browser == "Firefox"
    assert events[0].country_code == "GB"  # from the address, as for collected events
    assert events[4].browser == "Chrome" and events[4].referrer_source == "news.example"
    assert len({e.visitor_id for e in events}) == 4


def test_a_malformed_file_is_refused_with_its_line_and_nothing_is_imported(
    site: tuple[Flask, int], tmp_path: Path
) -> None:
    app, site_id = site
    good = (FIXTURES / "access.log").read_text().splitlines()
    broken = tmp_path / "broken.log"
    broken.write_text("\n".join([*good[:3], "this is not a log line", *good[3:]]) + "\n")
    done = run(app, "access-log", str(broken), "--site", str(site_id))
    assert done.exit_code != 0
    assert "line 4: not a combined or common log line; nothing was imported." in done.output
    wrong = run(app, "goatcounter", str(FIXTURES / "access.log"), "--site", str(site_id))
    assert wrong.exit_code != 0 and "line 1: not a GoatCounter CSV export" in wrong.output
    assert run(app, "goatcounter", str(broken), "--site", "999").exit_code != 0
    assert stored_events(app) == []


def test_ga4_bigquery_export_as_json_lines_and_as_parquet(
    site: tuple[Flask, int], tmp_path: Path
) -> None:
    app, site_id = site
    path = str(FIXTURES / "ga4.ndjson")
    dry = run(app, "ga4", path, "--site", str(site_id), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "4 event(s) to import, 2025-05-10 09:00 to 2025-05-10 12:00 UTC" in dry.output
    assert "skipped 3: GA's automatic events" in dry.output
    assert "skipped 1: page views without a page_location" in dry.output
    assert stored_events(app) == []
    done = run(app, "ga4", path, "--site", str(site_id))
    assert done.exit_code == 0, done.output
    events = stored_events(app)
    assert [(e.event, e.pathname) for e in events] == [
        ("pageview", "/"), ("pageview", "/pricing"), ("click", "/pricing"), ("pageview", "/blog/")
    ]  # fmt: skip
    assert events[2].props == {"link_url": "https://github.com/", "outbound": "true"}
    assert events[0].props in (None, {})
    assert events[0].referrer_source == "Google"
    assert [(e.country_code, e.region, e.city) for e in events[::3]] == [
        ("DE", "Berlin", "Berlin"), ("US", "California", "San Francisco")
    ]  # fmt: skip
    assert [(e.browser, e.os, e.device) for e in events[::3]] == [
        ("Chrome", "Windows", "desktop"), ("Safari", "iOS", "mobile")
    ]  # fmt: skip
    assert len({e.visitor_id for e in events}) == 2
    # The same export as Parquet (BigQuery's other format), into another site: the same events.
    parquet = tmp_path / "events_20250510.parquet"
    connection = duckdb.connect()
    connection.read_json(str(FIXTURES / "ga4.ndjson")).write_parquet(str(parquet))
    connection.close()
    with app.app_context():
        owner_id = db.session.get(Site, site_id).owner_id  # type: ignore[union-attr]
        other = Site(owner_id=owner_id, base_url="https://b.example")
        db.session.add(other)
        db.session.commit()
        other_id = other.id
    done = run(app, "ga4", str(parquet), "--site", str(other_id))
    assert done.exit_code == 0, done.output
    copied = [e for e in stored_events(app) if e.site_id == other_id]
    assert [(e.event, e.pathname, e.country_code, e.browser, e.props or {}) for e in copied] == [
        (e.event, e.pathname, e.country_code, e.browser, e.props or {}) for e in events
    ]


def test_ga4_refusals_name_the_line(site: tuple[Flask, int], tmp_path: Path) -> None:
    app, site_id = site
    good = (FIXTURES / "ga4.ndjson").read_text().splitlines()
    cases = {
        "line 3: not valid JSON": [*good[:2], "{oops", *good[2:]],
        "line 2: not a GA4 event": [good[0], '{"hello": "world"}'],
        "line 1: event_timestamp 'soon' is not a number": [
            good[0].replace(good[0].split('"event_timestamp": ')[1].split(",")[0], '"soon"')
        ],
    }
    for reason, lines in cases.items():
        path = tmp_path / "bad.ndjson"
        path.write_text("\n".join(lines) + "\n")
        done = run(app, "ga4", str(path), "--site", str(site_id))
        assert done.exit_code != 0 and reason in done.output, (reason, done.output)
    fake = tmp_path / "fake.parquet"
    fake.write_bytes(b"PAR1 this is not parquet")
    done = run(app, "ga4", str(fake), "--site", str(site_id))
    assert done.exit_code != 0 and "not a readable Parquet file" in done.output
    assert stored_events(app) == []


def test_umami_export_as_csv_and_as_its_zip(site: tuple[Flask, int], tmp_path: Path) -> None:
    app, site_id = site
    path = str(FIXTURES / "umami.csv")
    dry = run(app, "umami", path, "--site", str(site_id), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "4 event(s) to import, 2025-04-01 08:00 to 2025-04-01 21:30 UTC" in dry.output
    assert "skipped 1: rows of another event type than pageview or custom event (3)" in dry.output
    done = run(app, "umami", path, "--site", str(site_id))
    assert done.exit_code == 0, done.output
    events = stored_events(app)
    assert [(e.event, e.pathname) for e in events] == [
        ("pageview", "/"), ("pageview", "/pricing"), ("Signup", "/pricing"),
        ("pageview", "/blog/post"),
    ]  # fmt: skip
    assert (events[0].utm_source, events[0].utm_medium) == ("newsletter", "email")
    assert events[3].referrer_source == "Hacker News"
    assert events[3].referrer == "https://news.ycombinator.com/item?id=1"
    assert [(e.country_code, e.region, e.city) for e in events[::3]] == [
        ("DE", "DE-BE", "Berlin"), ("US", "US-CA", "San Francisco")
    ]  # fmt: skip
    assert [(e.browser, e.os, e.device, e.screen_width) for e in events[::3]] == [
        ("Chrome", "Windows 10", "desktop", 1920), ("Mobile Safari", "iOS", "mobile", 390)
    ]  # fmt: skip
    assert len({e.visitor_id for e in events}) == 2
    # The same rows in a ZIP, as Umami's export comes: the same file content, refused twice.
    archive = tmp_path / "umami-export.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("website_event.csv", (FIXTURES / "umami.csv").read_text())
    dry = run(app, "umami", str(archive), "--site", str(site_id), "--dry-run")
    assert dry.exit_code == 0 and "4 event(s) to import" in dry.output, dry.output
    broken = tmp_path / "broken.csv"
    lines = (FIXTURES / "umami.csv").read_text().splitlines()
    broken.write_text("\n".join([*lines[:2], lines[2].replace("/pricing", "pricing", 1)]) + "\n")
    refused = run(app, "umami", str(broken), "--site", str(site_id))
    assert refused.exit_code != 0 and "line 3: url_path 'pricing' is not a path" in refused.output
    refused = run(app, "umami", str(FIXTURES / "goatcounter.csv"), "--site", str(site_id))
    assert refused.exit_code != 0 and "line 1: not Umami's events export" in refused.output
    assert len(stored_events(app)) == 4


def test_gzipped_files_are_read_inflated(site: tuple[Flask, int], tmp_path: Path) -> None:
    app, site_id = site
    packed = tmp_path / "goatcounter-export.csv.gz"
    packed.write_bytes(gzip.compress((FIXTURES / "goatcounter.csv").read_bytes()))
    dry = run(app, "goatcounter", str(packed), "--site", str(site_id), "--dry-run")
    assert dry.exit_code == 0 and "4 event(s) to import" in dry.output, dry.output
    broken = tmp_path / "access.log.gz"
    broken.write_bytes(gzip.compress((FIXTURES / "access.log").read_bytes())[:-12])
    refused = run(app, "access-log", str(broken), "--site", str(site_id))
    assert refused.exit_code != 0 and "not a readable gzip file" in refused.output
    assert stored_events(app) == []
