"""Plausible's export ZIP: imported as daily aggregates beside native data (with hand-checked
totals from fixture CSVs written for these tests), never double-counting a day, listed and
deleted; and a site's history exported in the same format, which imports back into an empty
site as the same dashboard numbers."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_tracking.demo import create_demo
from flask_tracking.events import current_store
from flask_tracking.extensions import db
from flask_tracking.imports import Refused, aggregates, service
from flask_tracking.imports.models import Import, ImportedDay
from flask_tracking.reports.dimensions import DIMENSIONS, parse_filters
from flask_tracking.reports.params import parse_view, query_for
from flask_tracking.reports.stats import Report
from flask_tracking.tracking.models import Site
from tests.conftest import PASSWORD, geolite2_2018
from tests.imports.test_imports import FIXTURES, run

PLAUSIBLE = FIXTURES / "plausible"
NOW = datetime(2025, 7, 1, tzinfo=UTC)


def plausible_zip(tmp_path: Path, name: str = "export.zip", **replace: str) -> Path:
    """The fixture CSVs as Plausible ships them: in a ZIP (a file's text replaced if asked)."""
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        for csv_file in sorted(PLAUSIBLE.glob("*.csv")):
            table = csv_file.name.removeprefix("imported_").rsplit("_", 2)[0]
            archive.writestr(csv_file.name, replace.get(table, csv_file.read_text()))
    return path


def report(site_id: int, first: str, last: str, **args: str) -> Report:
    view = parse_view({"period": "custom", "from": first, "to": last, **args})
    return Report(query_for(site_id, "UTC", view, NOW))


def values(found: Report, name: str) -> dict[str, tuple[int, ...]]:
    return {
        value: (c.visitors, c.visits, c.pageviews, c.events)
        for value, c in found.values(DIMENSIONS[name]).items()
    }


def test_an_export_zip_imports_as_daily_aggregates_with_hand_checked_totals(
    site: tuple[Flask, int], tmp_path: Path
) -> None:
    app, site_id = site
    path = str(plausible_zip(tmp_path))
    dry = run(app, "plausible", path, "--site", str(site_id), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "2 day(s) in the file, 2025-03-01 to 2025-03-02" in dry.output
    assert "2 day(s) to import, 2025-03-01 to 2025-03-02: 16 visitor(s) in total" in dry.output
    assert "skipped 1: cities (Plausible names them by GeoNames id)" in dry.output
    assert "Dry run: nothing was imported." in dry.output
    with app.app_context():
        assert db.session.scalar(select(ImportedDay.id)) is None
    done = run(app, "plausible", path, "--site", str(site_id))
    assert done.exit_code == 0, done.output
    assert "Imported 2 day(s) of aggregates into https://example.com (import 1)." in done.output
    with app.app_context():
        found = report(site_id, "2025-03-01", "2025-03-02")
        top = found.aggregate(compare=False).current
        assert (top.visitors, top.visits, top.pageviews, top.events) == (16, 19, 34, 5)
        assert (top.bounces, top.duration) == (7, 740.0)
        # Days (a week is charted by day; a period of two days by hour, which aggregates lack).
        week = report(site_id, "2025-03-01", "2025-03-07").timeseries("visitors", compare=False)
        assert [p.value for p in week.points] == [10, 6, 0, 0, 0, 0, 0]
        assert values(found, "page") == {"/": (13, 0, 21, 0), "/pricing": (4, 0, 13, 0)}
        assert values(found, "entry_page")["/"] == (14, 16, 24, 0)
        assert values(found, "source") == {
            "Google": (6, 7, 15, 0),
            "": (7, 9, 14, 0),  # "Direct / None"
            "Hacker News": (3, 3, 5, 0),
        }
        assert values(found, "referrer") == {
            "": (13, 16, 29, 0),
            "news.ycombinator.com": (3, 3, 5, 0),
        }
        assert values(found, "utm_campaign")["spring"] == (3, 4, 4, 0)
        assert values(found, "country") == {"DE": (13, 15, 29, 0), "US": (3, 4, 5, 0)}
        assert values(found, "region") == {
            "DE-BE": (7, 8, 20, 0),
            "DE-BY": (6, 7, 9, 0),
            "": (3, 4, 5, 0),
        }
        assert values(found, "screen") == {"desktop": (7, 9, 20, 0), "mobile": (9, 10, 14, 0)}
        assert {k: v[0] for k, v in values(found, "browser").items()} == {
            "Firefox": 6,
            "Chrome": 10,
        }
        assert values(found, "event") == {
            "Signup": (2, 0, 0, 2),
            "Outbound Link: Click": (1, 0, 0, 3),
        }
        assert found.breakdown(DIMENSIONS["page"]).rows[0].share == pytest.approx(100 * 13 / 16)
        # Left out when asked, and when a filter is set (it cannot apply to aggregates).
        assert (
            report(site_id, "2025-03-01", "2025-03-02", imported="0").aggregate().current.visitors
            == 0
        )
        filtered = report(site_id, "2025-03-01", "2025-03-02", filter="country:is:DE")
        assert filtered.aggregate().current.visitors == 0 and not filtered.with_imported()
        # A period that covers one of the days counts that day only.
        assert report(site_id, "2025-03-02", "2025-03-09").aggregate().current.visitors == 6
        [record] = aggregates.imports_of(site_id)
        assert (record.source, record.kind, record.status) == ("plausible", "aggregates", "done")
        assert (record.first_day, record.last_day, record.rows) == (
            date(2025, 3, 1),
            date(2025, 3, 2),
            16,
        )
        assert record.skipped == {"cities (Plausible names them by GeoNames id)": 1}


def test_the_rule_against_double_counting(site: tuple[Flask, int], tmp_path: Path) -> None:
    app, site_id = site
    # Native data from 2025-03-02 (a GoatCounter export of that day).
    goatcounter = tmp_path / "goatcounter.csv"
    lines = (FIXTURES / "goatcounter.csv").read_text().splitlines()
    kept = [
        lines[0],
        *(line.replace("2025-06-02", "2025-03-02") for line in lines if "2025-06-02" in line),
    ]
    goatcounter.write_text("\n".join(kept) + "\n")
    assert run(app, "goatcounter", str(goatcounter), "--site", str(site_id)).exit_code == 0
    with app.app_context():
        native = report(site_id, "2025-03-01", "2025-03-02").aggregate().current.visitors
    assert native == 1
    done = run(app, "plausible", str(plausible_zip(tmp_path)), "--site", str(site_id))
    assert done.exit_code == 0, done.output
    assert "skipped 1: days on or after 2025-03-02, when this site's own data starts" in done.output
    with app.app_context():
        assert (
            report(site_id, "2025-03-01", "2025-03-02").aggregate().current.visitors == 10 + native
        )
    # The same file again: refused; another file holding the same day: that day left out.
    again = run(app, "plausible", str(plausible_zip(tmp_path)), "--site", str(site_id))
    assert again.exit_code != 0 and "imported into this site already" in again.output
    more = plausible_zip(
        tmp_path,
        "more.zip",
        visitors="date,visitors,pageviews,bounces,visits,visit_duration\n"
        "2025-02-28,5,5,5,5,0\n2025-03-01,99,99,0,99,0\n",
    )
    done = run(app, "plausible", str(more), "--site", str(site_id))
    assert done.exit_code == 0, done.output
    assert "skipped 1: days an earlier import holds already" in done.output
    with app.app_context():
        assert (
            report(site_id, "2025-02-28", "2025-03-02").aggregate().current.visitors == 15 + native
        )
        assert [i.source for i in aggregates.imports_of(site_id)] == [
            "plausible",
            "plausible",
            "goatcounter",
        ]


def test_malformed_zips_are_refused_with_the_file_line_and_reason(
    site: tuple[Flask, int], tmp_path: Path
) -> None:
    app, site_id = site
    cases = {
        "not a ZIP file": tmp_path / "plain.zip",
        "no imported_visitors file": tmp_path / "empty.zip",
        "line 3: imported_visitors_20250301_20250302.csv: 'March 2nd' is not a date": plausible_zip(
            tmp_path,
            "bad-date.zip",
            visitors="date,visitors,pageviews,bounces,visits,visit_duration\n"
            "2025-03-01,1,1,1,1,1\nMarch 2nd,1,1,1,1,1\n",
        ),
        "imported_pages_20250301_20250302.csv: visitors 'many' is not a number": plausible_zip(
            tmp_path,
            "bad-number.zip",
            pages="date,hostname,page,visits,visitors,pageviews\n2025-03-01,x,/,1,many,1\n",
        ),
        "line 1: imported_sources_20250301_20250302.csv: no column source": plausible_zip(
            tmp_path, "bad-header.zip", sources="date,visitors,visits\n"
        ),
    }
    (tmp_path / "plain.zip").write_text("date,visitors\n")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as archive:
        archive.writestr("notes.txt", "hello")
    for reason, path in cases.items():
        done = run(app, "plausible", str(path), "--site", str(site_id))
        assert done.exit_code != 0, reason
        assert reason in done.output and "nothing was imported" in done.output, done.output
    with app.app_context():
        assert db.session.scalar(select(ImportedDay.id)) is None
        assert db.session.scalar(select(Import.id)) is None


def test_deleting_imports_aggregate_at_once_row_level_by_the_writer(
    site: tuple[Flask, int], tmp_path: Path
) -> None:
    app, site_id = site
    assert (
        run(app, "plausible", str(plausible_zip(tmp_path)), "--site", str(site_id)).exit_code == 0
    )
    assert (
        run(app, "goatcounter", str(FIXTURES / "goatcounter.csv"), "--site", str(site_id)).exit_code
        == 0
    )
    with app.app_context():
        owner_id = db.session.get(Site, site_id).owner_id  # type: ignore[union-attr]
        events_import, plausible_import = aggregates.imports_of(site_id)
        assert (events_import.kind, events_import.rows) == ("events", 4)
        assert events_import.last_eid - events_import.first_eid == 3  # type: ignore[operator]
        service.delete_import(plausible_import, owner_id)
        assert report(site_id, "2025-03-01", "2025-03-02").aggregate().current.visitors == 0
        assert report(site_id, "2025-06-01", "2025-06-02").aggregate().current.visitors == 2
        service.delete_import(events_import, owner_id)
        assert events_import.status == "deleting"
        writer = app.extensions["ingest"].writer
        assert dict(writer.schedule.run_all("imports"))["imports"].summary == "1 import(s) handled"
        assert report(site_id, "2025-06-01", "2025-06-02").aggregate().current.visitors == 0
        assert aggregates.imports_of(site_id) == []
    # Deleted, the file can be imported again.
    assert (
        run(app, "goatcounter", str(FIXTURES / "goatcounter.csv"), "--site", str(site_id)).exit_code
        == 0
    )


def test_export_then_import_into_an_empty_site_gives_the_same_numbers(app_factory: Any) -> None:
    app = app_factory(**geolite2_2018())
    with app.app_context():
        made = create_demo("demo@example.com", PASSWORD, days=12, visits=400, seed=7)
        assert made.visits == 400
        source = db.session.scalar(select(Site))
        assert source is not None
        data = aggregates.export(source.id, source.timezone, "demo.example", current_store())
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        assert len(names) == 10 and all(n.startswith("imported_") for n in names)
        empty = Site(
            owner_id=source.owner_id, base_url="https://empty.example", timezone=source.timezone
        )
        db.session.add(empty)
        db.session.commit()
        _lines, record = service.import_file(empty, "plausible", data, store=current_store())
        assert record is not None and record.status == "done"
        first, last = record.first_day.isoformat(), record.last_day.isoformat()  # type: ignore[union-attr]
        before = report(source.id, first, last)
        after = report(empty.id, first, last)
        b, a = before.aggregate(compare=False).current, after.aggregate(compare=False).current
        assert b.visitors > 100
        assert (a.visitors, a.visits, a.pageviews, a.events, a.bounces) == (
            b.visitors, b.visits, b.pageviews, b.events, b.bounces,
        )  # fmt: skip
        assert a.duration == pytest.approx(b.duration, abs=len(before.days(before.query.range)))
        series = [p.value for p in before.timeseries("pageviews", compare=False).points]
        assert [p.value for p in after.timeseries("pageviews", compare=False).points] == series
        for name in ("page", "entry_page", "exit_page", "screen", "browser", "os", "event"):
            assert values(after, name) == values(before, name), name
        # Sources and locations travel as combinations (source with referrer and UTM, country
        # with region): visits and pageviews add up exactly; a visitor who came twice in a day
        # by two referrers counts once per row, as in Plausible.
        for name in ("source", "referrer", "utm_source", "country", "region"):
            native, imported = values(before, name), values(after, name)
            assert {v: n[1:] for v, n in imported.items()} == {
                v: n[1:] for v, n in native.items()
            }, name
            assert all(imported[v][0] >= n[0] for v, n in native.items()), name


def test_filters_parse_and_imported_flag_is_checked() -> None:
    with pytest.raises(Exception, match="imported="):
        parse_view({"imported": "maybe"})
    assert parse_view({"imported": "0"}).args()["imported"] == "0"
    assert "imported" not in parse_view({}).args()
    assert parse_filters(["country:is:DE"])


def test_refusals_name_the_reason(site: tuple[Flask, int]) -> None:
    app, site_id = site
    with app.app_context():
        target = db.session.get(Site, site_id)
        assert target is not None
        with pytest.raises(Refused, match="unknown source"):
            service.import_file(target, "webalizer", b"", store=current_store())


def test_a_google_analytics_report_download_imports_as_daily_aggregates(
    site: tuple[Flask, int], tmp_path: Path
) -> None:
    app, site_id = site
    path = str(FIXTURES / "ga4-report.csv")
    dry = run(app, "ga-csv", path, "--site", str(site_id), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "2 day(s) to import, 2025-03-01 to 2025-03-02: 16 visitor(s) in total" in dry.output
    assert "skipped 1: tables without Date as their first column" in dry.output
    done = run(app, "ga-csv", path, "--site", str(site_id))
    assert done.exit_code == 0, done.output
    with app.app_context():
        found = report(site_id, "2025-03-01", "2025-03-02")
        top = found.aggregate(compare=False).current
        # bounces: 33.33 % of 12 sessions and 0.4286 of 7; duration: 12 x 50 s + 7 x 20 s
        assert (top.visitors, top.visits, top.pageviews, top.events) == (16, 19, 34, 2)
        assert (top.bounces, top.duration) == (4 + 3, 740.0)
        assert values(found, "page") == {"/": (13, 0, 21, 0), "/pricing": (4, 0, 13, 0)}
        assert values(found, "source") == {"google": (6, 7, 0, 0), "": (10, 12, 0, 0)}
        assert values(found, "country") == {"DE": (13, 15, 0, 0), "US": (3, 4, 0, 0)}
        assert values(found, "event") == {"sign_up": (2, 0, 0, 2)}
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Total users\n20250301,10\n2025-13-01,4\n")
    refused = run(app, "ga-csv", str(bad), "--site", str(site_id))
    assert refused.exit_code != 0 and "line 3: '2025-13-01' is not a day" in refused.output
    bad.write_text("Date,Page path,Views\n20250301,/,4\n")
    refused = run(app, "ga-csv", str(bad), "--site", str(site_id))
    assert refused.exit_code != 0 and "no table of daily totals" in refused.output


def test_events_loaded_later_for_imported_days_are_not_counted_twice(
    site: tuple[Flask, int], tmp_path: Path
) -> None:
    app, site_id = site
    assert (
        run(app, "plausible", str(plausible_zip(tmp_path)), "--site", str(site_id)).exit_code == 0
    )
    # Then a row-level import holding 2025-03-02 (one visitor): the site's own data starts
    # that day, and the aggregates of that day (6 visitors) give way to it.
    goatcounter = tmp_path / "goatcounter.csv"
    lines = (FIXTURES / "goatcounter.csv").read_text().splitlines()
    kept = [lines[0], *(x.replace("2025-06-02", "2025-03-02") for x in lines if "2025-06-02" in x)]
    goatcounter.write_text("\n".join(kept) + "\n")
    assert run(app, "goatcounter", str(goatcounter), "--site", str(site_id)).exit_code == 0
    with app.app_context():
        found = report(site_id, "2025-03-01", "2025-03-07")
        assert found.aggregate(compare=False).current.visitors == 10 + 1
        assert [p.value for p in found.timeseries("visitors", compare=False).points][:2] == [10, 1]
        assert sum(c.visitors for c in found.values(DIMENSIONS["page"]).values()) == 12 + 1
