"""The dashboard pages through the test client: numbers, filters, errors, export, shared links."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_tracking.events import current_store
from flask_tracking.extensions import db
from flask_tracking.ingest import drain
from flask_tracking.tracking.models import SharedLink
from flask_tracking.users import accounts
from tests.conftest import PASSWORD
from tests.reports import dataset

MARCH = "period=custom&from=2026-03-07&to=2026-03-09"
OWNER = "owner@example.com"


def login(app: Flask, email: str = OWNER) -> FlaskClient:
    client = app.test_client()
    response = client.post("/login/", data={"email": email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def metric(page: str, name: str) -> str:
    found = re.search(
        rf'data-metric="{name}">\s*<span class="label">[^<]*</span>\s*'
        r'<strong class="value">([^<]*)</strong>',
        page,
    )
    assert found, name
    return found.group(1)


def test_the_dashboard_shows_the_hand_counted_numbers(site: Any) -> None:
    app, site_id = site
    page = login(app).get(f"/sites/{site_id}?{MARCH}").get_data(as_text=True)
    assert metric(page, "visitors") == "5"
    assert metric(page, "visits") == "5"
    assert metric(page, "pageviews") == "7"
    assert metric(page, "bounce_rate") == "60%"
    assert metric(page, "visit_duration") == "7m 0s"  # (600 + 1500) / 5 seconds
    assert metric(page, "views_per_visit") == "1.40"
    assert "07 Mar 2026 \u2013 09 Mar 2026" in page
    assert "America/New_York" in page
    assert page.count('class="bar-row"') > 10
    # The country rows link to the filtered view.
    assert f"/sites/{site_id}?period=custom&amp;from=2026-03-07&amp;to=2026-03-09" in page
    assert "filter=country:is:US" in page


def test_a_filter_changes_the_numbers_and_shows_a_removable_chip(site: Any) -> None:
    app, site_id = site
    page = login(app).get(f"/sites/{site_id}?{MARCH}&filter=country:is:US").get_data(as_text=True)
    assert metric(page, "visitors") == "1"
    assert metric(page, "pageviews") == "2"
    chip = re.search(r'<li class="chip" data-filter="country:is:US">(.*?)</li>', page, re.S)
    assert chip and "Country is United States" in chip.group(1)
    remove = re.search(r'<a href="([^"]*)" aria-label="Remove filter', chip.group(1))
    assert remove and "filter=" not in remove.group(1)


def test_countries_read_as_names_with_flags_and_filter_by_code(site: Any) -> None:
    app, site_id = site
    page = login(app).get(f"/sites/{site_id}?{MARCH}").get_data(as_text=True)
    panel = re.search(r'data-dimension="country">(.*?)</ol>', page, re.S)
    assert panel
    assert ">\U0001f1ec\U0001f1e7</span> United Kingdom</span>" in panel.group(1)
    assert "United States" in panel.group(1) and ">US<" not in panel.group(1)
    assert re.search(r"filter=country(:|%3A)is(:|%3A)GB", panel.group(1))  # links by the code
    # "is not" and the "not set" value read as words too; "contains" shows what was typed.
    page = login(app).get(f"/sites/{site_id}?{MARCH}&filter=country:is_not:SE&filter=city:is:")
    text = page.get_data(as_text=True)
    assert "Country is not Sweden" in text and "City is Unknown" in text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("period=forever", "Unknown period"),
        ("period=custom&from=2026-03-01", "needs from="),
        ("period=custom&from=yesterday&to=2026-03-01", "is not a date"),
        ("period=custom&from=2026-03-09&to=2026-03-01", "must not be after"),
        ("filter=nothing", "dimension:operator:value"),
        ("filter=password:is:x", "Unknown dimension"),
        ("filter=country:like:x", "Unknown filter operator"),
        ("filter=country:contains:", "needs a value"),
        ("filter=page:is:%2F%0A", "control characters"),
        ("metric=bounce_rate", "Unknown metric"),
        ("&".join(f"filter=page:is:/{n}" for n in range(11)), "At most 10"),
        ("event=" + "x" * 200, "at most 120"),
    ],
)
def test_bad_views_are_a_400_naming_the_problem(site: Any, query: str, message: str) -> None:
    app, site_id = site
    client = login(app)
    response = client.get(f"/sites/{site_id}?{query}")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    as_json = client.get(
        f"/sites/{site_id}/export.zip?{query}", headers={"Accept": "application/json"}
    )
    assert as_json.status_code == 400
    assert as_json.json is not None and message in as_json.json["error"]["message"]


def test_other_users_and_strangers_get_nothing(site: Any) -> None:
    app, site_id = site
    with app.app_context():
        accounts.register("other@example.com", PASSWORD)
    other = login(app, "other@example.com")
    for path in ("", "/export.zip", "/realtime", "/shares", "/visits"):
        assert other.get(f"/sites/{site_id}{path}").status_code == 404, path
    assert other.post(f"/sites/{site_id}/shares", data={"name": "x"}).status_code == 404
    anonymous = app.test_client()
    for path in ("", "/export.zip", "/realtime", "/shares"):
        assert anonymous.get(f"/sites/{site_id}{path}").status_code == 302, path


def test_realtime_answers_json(site: Any) -> None:
    app, site_id = site
    response = login(app).get(f"/sites/{site_id}/realtime")
    assert response.status_code == 200
    assert response.json == {"visitors": 0}
    assert response.headers["Cache-Control"] == "no-store"


def read_zip(data: bytes) -> dict[str, list[list[str]]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {
            name: list(csv.reader(io.StringIO(archive.read(name).decode("utf-8"))))
            for name in archive.namelist()
        }


def response_zip_text(data: bytes, name: str) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(name).decode("utf-8")


def test_export_has_one_csv_per_panel_with_the_page_numbers(site: Any) -> None:
    app, site_id = site
    response = login(app).get(f"/sites/{site_id}/export.zip?{MARCH}&event=Signup")
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    files = read_zip(response.data)
    assert {"metrics.csv", "timeseries.csv", "page.csv", "country.csv", "event.csv"} <= set(files)
    assert "event_properties.csv" in files
    metrics = {row[0]: row[1:] for row in files["metrics.csv"][1:]}
    assert metrics["visitors"][0] == "5"
    assert metrics["bounce_rate"][0] == "60"
    # Countries by name with their code; numbers a dimension does not have are left empty.
    assert files["country.csv"][0] == [
        "Country",
        "country_code",
        "visitors",
        "visits",
        "pageviews",
        "events",
        "bounce_rate",
        "visit_duration_s",
        "share_pct",
    ]
    countries = {row[0]: row[1:3] for row in files["country.csv"][1:]}
    assert countries == {
        "United Kingdom": ["GB", "2"],
        "United States": ["US", "1"],
        "Sweden": ["SE", "2"],
    }
    assert all(row[5] == "" for row in files["country.csv"][1:])  # a visit has no "events"
    pages = {row[0]: row[1:] for row in files["page.csv"][1:]}
    assert pages["/pricing"][1] == "" and pages["/pricing"][2] != ""  # no visits, pageviews
    assert pages["/pricing"][3:6] == ["", "", ""]  # no events, bounce rate or duration
    signup = {row[0]: row[1:] for row in files["event.csv"][1:]}["Signup"]
    assert signup[1:3] == ["", ""] and signup[3] == "1" and signup[4:6] == ["", ""]
    readme = response_zip_text(response.data, "README.txt")
    assert "share_pct: percent of the period's unique visitors" in readme
    assert "visits (sessions) with this value; empty for pages and custom events" in readme
    assert [row[2] for row in files["timeseries.csv"][1:]] == ["1", "3", "1"]  # visitors a day
    assert files["event_properties.csv"][1] == ["Signup", "plan", "pro", "1", "1"]


HOSTILE = "<img src=x onerror=alert(1)>"


def test_tracked_values_are_inert_in_the_page_and_the_csv(site: Any) -> None:
    app, site_id = site
    at = dataset.utc(8, 12, 0)
    dataset.spool(
        app,
        site_id,
        dataset.A,
        at,
        f"/{HOSTILE}?utm_source==HYPERLINK(%22http://evil%22)&utm_campaign=@SUM(1)",
        referrer='https://evil.example/"><script>alert(2)</script>',
    )
    dataset.spool(
        app,
        site_id,
        dataset.A,
        at,
        "/",
        name="-2+3<script>alert(3)</script>",
        props={"+cmd": "=1+2", "k": HOSTILE},
    )
    drain(app)
    client = login(app)
    page = client.get(f"/sites/{site_id}?{MARCH}").get_data(as_text=True)
    assert HOSTILE not in page and "<script>alert" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    event = "-2+3<script>alert(3)</script>"
    with_event = f"{MARCH}&{urlencode({'event': event})}"
    props_page = client.get(f"/sites/{site_id}?{with_event}").get_data(as_text=True)
    assert "<script>alert" not in props_page and HOSTILE not in props_page
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in props_page
    files = read_zip(client.get(f"/sites/{site_id}/export.zip?{with_event}").data)
    sources = [row[0] for row in files["utm_source.csv"][1:]]
    assert '\'=HYPERLINK("http://evil")' in sources
    assert "'@SUM(1)" in [row[0] for row in files["utm_campaign.csv"][1:]]
    assert "'-2+3<script>alert(3)</script>" in [row[0] for row in files["event.csv"][1:]]
    props = files["event_properties.csv"][1:]
    assert ["'-2+3<script>alert(3)</script>", "'+cmd", "'=1+2", "1", "1"] in props
    for rows in files.values():
        for row in rows:
            assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row), row


def test_shared_links_show_the_dashboard_and_nothing_else(site: Any) -> None:
    app, site_id = site
    owner = login(app)
    # Groups of any size (k-anonymity, which hides this small data set: test below).
    made = owner.post(f"/sites/{site_id}/shares", data={"name": "Board", "min_visitors": "1"})
    assert made.status_code == 302
    with app.app_context():
        token = db.session.query(SharedLink).one().token
    listed = owner.get(f"/sites/{site_id}/shares").get_data(as_text=True)
    assert f"/share/{token}" in listed
    stranger = app.test_client()
    page = stranger.get(f"/share/{token}?{MARCH}").get_data(as_text=True)
    assert metric(page, "visitors") == "5"
    for private in (OWNER, "Raw events", "Shared links", "Log out", "Tracking snippet", "/sites/"):
        assert private not in page, private
    filtered = stranger.get(f"/share/{token}?{MARCH}&filter=country:is:GB").get_data(as_text=True)
    assert metric(filtered, "visitors") == "2"
    assert f"/share/{token}?period=custom" in filtered
    zipped = stranger.get(f"/share/{token}/export.zip?{MARCH}")
    assert zipped.status_code == 200 and "metrics.csv" in read_zip(zipped.data)
    assert stranger.get(f"/share/{token}/realtime").json == {"visitors": 0}
    assert stranger.get(f"/share/{token}x").status_code == 404
    assert stranger.get("/share/" + "a" * 100).status_code == 404


def test_a_password_protects_a_shared_link_and_revoking_ends_it(site: Any) -> None:
    app, site_id = site
    owner = login(app)
    short = owner.post(f"/sites/{site_id}/shares", data={"name": "x", "password": "short"})
    assert short.status_code == 200 and "at least" in short.get_data(as_text=True)
    owner.post(f"/sites/{site_id}/shares", data={"name": "Investors", "password": "sesame-open-1"})
    with app.app_context():
        link = db.session.query(SharedLink).one()
        token, link_id = link.token, link.id
        assert link.password_hash and "sesame" not in link.password_hash
    stranger = app.test_client()
    locked = stranger.get(f"/share/{token}").get_data(as_text=True)
    assert "This dashboard is protected" in locked and 'data-metric="visitors"' not in locked
    assert stranger.get(f"/share/{token}/export.zip").status_code == 404
    wrong = stranger.post(f"/share/{token}", data={"password": "guess"})
    assert wrong.status_code == 200 and "not right" in wrong.get_data(as_text=True)
    right = stranger.post(f"/share/{token}?{MARCH}", data={"password": "sesame-open-1"})
    assert right.status_code == 302 and "from=2026-03-07" in right.headers["Location"]
    assert 'data-metric="visitors"' in stranger.get(f"/share/{token}").get_data(as_text=True)
    with app.app_context():
        accounts.register("other@example.com", PASSWORD)
    other = login(app, "other@example.com")
    assert other.post(f"/sites/{site_id}/shares/{link_id}/revoke").status_code == 404
    assert owner.post(f"/sites/{site_id}/shares/{link_id}/revoke").status_code == 302
    assert stranger.get(f"/share/{token}").status_code == 404


def test_password_guesses_are_rate_limited(site: Any) -> None:
    app, site_id = site
    login(app).post(f"/sites/{site_id}/shares", data={"password": "sesame-open-1"})
    with app.app_context():
        token = db.session.query(SharedLink).one().token
    stranger = app.test_client()
    statuses = [
        stranger.post(f"/share/{token}", data={"password": f"guess-{n}"}).status_code
        for n in range(11)
    ]
    assert statuses[:10] == [200] * 10
    assert statuses[10] == 429


def test_changing_the_zone_re_marks_the_events_and_numbers_follow(site: Any) -> None:
    app, site_id = site
    client = login(app)
    response = client.post(
        f"/sites/{site_id}/edit",
        data={"base_url": "https://example.com", "timezone": "UTC", "name": ""},
    )
    assert response.status_code == 302
    drain(app)  # the writer re-marks the site's events in UTC
    with app.app_context():
        assert current_store().zones()[site_id] == "UTC"
    day = "period=custom&from=2026-03-08&to=2026-03-08"
    page = client.get(f"/sites/{site_id}?{day}").get_data(as_text=True)
    # In UTC, 03-08 holds S1, S2 and S3 (A and B): 2 visitors, 3 visits, 5 pageviews.
    assert (metric(page, "visitors"), metric(page, "visits"), metric(page, "pageviews")) == (
        "2",
        "3",
        "5",
    )


def test_the_rebuild_command_recomputes_every_site(site: Any) -> None:
    app, site_id = site
    result = app.test_cli_runner().invoke(args=["events", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "Rebuilt 1 site(s)" in result.output
    with app.app_context():
        assert current_store().zones()[site_id] == dataset.TIMEZONE
    page = login(app).get(f"/sites/{site_id}?{MARCH}").get_data(as_text=True)
    assert metric(page, "visitors") == "5"


def test_the_chart_knows_which_buckets_have_begun() -> None:
    from datetime import UTC, datetime, timedelta

    from flask_tracking.dashboard.page import progress
    from flask_tracking.reports.results import Point, Series

    start = datetime(2026, 3, 8, tzinfo=UTC)
    series = Series(
        "visitors", "hour", [Point(start + timedelta(hours=h), 1, 0) for h in range(24)]
    )
    end = start + timedelta(days=1)
    assert progress(series, end, start + timedelta(hours=13, minutes=5)) == {
        "begun": 14,
        "partial": True,
    }
    assert progress(series, end, start - timedelta(seconds=1)) == {"begun": 0, "partial": False}
    assert progress(series, end, end) == {"begun": 24, "partial": False}  # a past day
    assert progress(series, end, end - timedelta(seconds=1)) == {"begun": 24, "partial": True}


def test_the_export_leaves_the_future_empty(site: Any) -> None:
    app, site_id = site
    response = login(app).get(f"/sites/{site_id}/export.zip?period=today")
    series = read_zip(response.data)["timeseries.csv"][1:]
    assert len(series) == 24
    values = [row[2] for row in series]
    begun = len([v for v in values if v != ""])
    assert 1 <= begun <= 24 and values[begun:] == [""] * (24 - begun)


def previous_title(page: str, name: str) -> str:
    found = re.search(
        rf'data-metric="{name}">.*?<span class="change[^"]*"\s*title="([^"]*)"', page, re.S
    )
    assert found, name
    return found.group(1)


def test_a_period_compares_with_last_year_or_chosen_dates(site: Any) -> None:
    app, site_id = site
    client = login(app)
    a_year_on = "period=custom&from=2027-03-07&to=2027-03-09"
    page = client.get(f"/sites/{site_id}?{a_year_on}&compare=year").get_data(as_text=True)
    assert metric(page, "visitors") == "0"
    # The March 2026 visitors are this period's "last year".
    assert previous_title(page, "visitors").startswith(
        "Same period last year (07 Mar 2026 \u2013 09 Mar 2026): 5"
    )
    chart = re.search(r'id="chart-data">(.*?)</script>', page, re.S)
    assert chart and '"compared": "Same period last year"' in chart.group(1)
    chosen = "compare=custom&compare_from=2026-03-07&compare_to=2026-03-09"
    page = client.get(f"/sites/{site_id}?{a_year_on}&{chosen}").get_data(as_text=True)
    assert previous_title(page, "visitors") == "Chosen dates (07 Mar 2026 \u2013 09 Mar 2026): 5"
    # Links keep the comparison (a filter chosen from a panel does not drop it).
    assert "compare=custom&amp;compare_from=2026-03-07&amp;compare_to=2026-03-09" in page
    export = read_zip(client.get(f"/sites/{site_id}/export.zip?{a_year_on}&{chosen}").data)
    assert {row[0]: row[2] for row in export["metrics.csv"][1:]}["visitors"] == "5"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("compare=decade", "Unknown comparison"),
        ("compare=custom", "compare_from= and compare_to="),
        ("compare=custom&compare_from=2026-03-09&compare_to=2026-03-01", "must not be after"),
        ("match=month", "match="),
    ],
)
def test_a_comparison_it_cannot_mean_is_a_400(site: Any, query: str, message: str) -> None:
    app, site_id = site
    response = login(app).get(f"/sites/{site_id}?{query}")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_the_filter_form_adds_one_filter_of_several_values(site: Any) -> None:
    app, site_id = site
    client = login(app)
    # Countries typed by name mean their codes; "is not" with two values keeps neither.
    built = client.get(f"/sites/{site_id}?{MARCH}&add=country&op=is_not&value=Sweden&value=gb")
    assert built.status_code == 302
    target = built.headers["Location"]
    assert parse_qs(urlsplit(target).query)["filter"] == ["country:is_not:SE|GB"]
    page = client.get(target).get_data(as_text=True)
    assert metric(page, "visitors") == "1"  # the US visitor only
    assert "Country is not Sweden nor United Kingdom" in page
    # A value with a bar in it stays one value; an empty "is" value means "not set".
    page_filter = client.get(f"/sites/{site_id}?{MARCH}&add=page&op=is&value=/a|b")
    query = urlsplit(page_filter.headers["Location"]).query
    assert parse_qs(query)["filter"] == ["page:is:/a\\|b"]
    direct = client.get(f"/sites/{site_id}?{MARCH}&add=source&op=is&value=")
    assert metric(client.get(direct.headers["Location"]).get_data(as_text=True), "visits") == "3"
    # Nothing to filter on, or an operator it does not know: a 400 that changes nothing.
    assert client.get(f"/sites/{site_id}?add=page&op=contains&value=").status_code == 400
    assert client.get(f"/sites/{site_id}?add=page&op=like&value=x").status_code == 400
    assert client.get(f"/sites/{site_id}?add=nowhere&op=is&value=x").status_code == 400


def test_suggestions_follow_the_view_and_the_access_rules(site: Any) -> None:
    app, site_id = site
    client = login(app)
    url = f"/sites/{site_id}/suggest?{MARCH}&dimension=country"
    everyone = client.get(url).json["results"]
    assert [row["value"] for row in everyone] == ["GB", "SE", "US"]
    assert everyone[0] == {"value": "GB", "label": "United Kingdom", "visitors": 2}
    assert [row["value"] for row in client.get(url + "&q=swe").json["results"]] == ["SE"]
    # The view's other filters apply; one on the same dimension does not hide its values.
    narrowed = client.get(url + "&filter=page:is:/blog&filter=country:is:SE").json["results"]
    assert [row["value"] for row in narrowed] == ["SE", "US"]
    assert client.get(f"/sites/{site_id}/suggest?dimension=bogus").status_code == 400
    with app.app_context():
        accounts.register("other@example.com", PASSWORD)
    assert login(app, "other@example.com").get(url).status_code == 404
    assert app.test_client().get(url).status_code == 302  # to the login page
    # Groups of any size: this data set is smaller than the default smallest group (5).
    client.post(
        f"/sites/{site_id}/shares",
        data={"name": "Board", "password": "sesame-open-1", "min_visitors": "1"},
    )
    with app.app_context():
        token = db.session.query(SharedLink).one().token
    stranger = app.test_client()
    shared = f"/share/{token}/suggest?{MARCH}&dimension=country"
    assert stranger.get(shared).status_code == 404  # locked
    assert stranger.get(f"/share/{token}/details/page").status_code == 404
    stranger.post(f"/share/{token}", data={"password": "sesame-open-1"})
    assert [row["value"] for row in stranger.get(shared).json["results"]] == ["GB", "SE", "US"]
    details = stranger.get(f"/share/{token}/details/page?{MARCH}").get_data(as_text=True)
    assert f"/share/{token}?" in details and "/sites/" not in details


def test_details_list_every_value_searchable_sortable_and_paged(site: Any) -> None:
    app, site_id = site
    client = login(app)
    at = dataset.utc(8, 12, 0)
    for n in range(60):  # sixty more pages than fit on one page of details
        dataset.spool(app, site_id, dataset.A, at, f"/post/{n:02d}")
    dataset.spool(app, site_id, dataset.A, at, f"/{HOSTILE}")
    drain(app)
    page = client.get(f"/sites/{site_id}/details/page?{MARCH}").get_data(as_text=True)
    assert "65 values; 1\u201350 shown" in page
    assert page.count('<th scope="row">') == 50
    assert HOSTILE not in page  # the value is text
    second = client.get(f"/sites/{site_id}/details/page?{MARCH}&page=2").get_data(as_text=True)
    assert second.count('<th scope="row">') == 15 and "Page 2 of 2" in second
    found = client.get(f"/sites/{site_id}/details/page?{MARCH}&q=POST/0").get_data(as_text=True)
    assert "10 values containing “POST/0”" in found
    rows = re.findall(r'<th scope="row"><a href="([^"]*)">([^<]*)</a>', found)
    assert [label for _, label in rows] == [f"/post/{n:02d}" for n in range(10)]
    assert all("filter=page" in href for href, _ in rows)
    by_pageviews = client.get(f"/sites/{site_id}/details/page?{MARCH}&sort=pageviews")
    assert 'aria-sort="descending"' in by_pageviews.get_data(as_text=True)
    # Columns are the dimension's own numbers: a page has no visits or bounce rate.
    assert ">Visits" not in page and ">Pageviews" in page
    countries = client.get(f"/sites/{site_id}/details/country?{MARCH}").get_data(as_text=True)
    assert "United Kingdom" in countries and "Bounce rate" in countries
    assert client.get(f"/sites/{site_id}/details/bogus").status_code == 400
    assert client.get(f"/sites/{site_id}/details/page?sort=nothing").status_code == 400
    assert client.get(f"/sites/{site_id}/details/page?page=0").status_code == 400
    dashboard = client.get(f"/sites/{site_id}?{MARCH}").get_data(as_text=True)
    assert f"/sites/{site_id}/details/page?period=custom" in dashboard


def test_browsers_and_systems_show_their_free_logos(site: Any) -> None:
    from flask_tracking.dashboard.format import icons_available

    assert icons_available(), "make assets builds static/vendor/icons.svg"
    app, site_id = site
    page = login(app).get(f"/sites/{site_id}?{MARCH}").get_data(as_text=True)
    browsers = re.search(r'data-dimension="browser">(.*?)</ol>', page, re.S)
    assert browsers
    rows = re.findall(r'<span class="value">(.*?)</span>', browsers.group(1), re.S)
    firefox = next(row for row in rows if row.endswith("Firefox"))
    assert '<use href="/static/vendor/icons.svg#si-firefoxbrowser">' in firefox
    sprite = app.test_client().get("/static/vendor/icons.svg")
    assert b'<symbol id="si-firefoxbrowser"' in sprite.data and b"currentColor" in sprite.data
    sprite.close()


def test_a_shared_link_never_singles_out_fewer_than_its_smallest_group(site: Any) -> None:
    """k-anonymity (dashboard/privacy.py), k = 5 by default: in this data set every page,
    source and country has fewer than 5 visitors."""
    app, site_id = site
    owner = login(app)
    assert owner.post(f"/sites/{site_id}/shares", data={"name": "Public"}).status_code == 302
    with app.app_context():
        link = db.session.query(SharedLink).one()
        token, k = link.token, link.min_visitors
    assert k == 5
    assert '<td class="num">5</td>' in owner.get(f"/sites/{site_id}/shares").get_data(True)
    stranger = app.test_client()
    page = stranger.get(f"/share/{token}?{MARCH}").get_data(as_text=True)
    assert metric(page, "visitors") == "5"  # the whole is shown
    assert "values with fewer than 5 visitors each)" in page
    assert "/pricing" not in page and "Hacker News" not in page  # (the map names every country)
    assert "filter=page" not in page  # the folded rows link nowhere
    mine = owner.get(f"/sites/{site_id}?{MARCH}").get_data(as_text=True)
    assert "/pricing" in mine and "values with fewer than" not in mine  # the owner's: as before
    refused = stranger.get(f"/share/{token}?{MARCH}&filter=country:is:GB")
    assert refused.status_code == 400
    assert "shows no view of fewer than 5 visitors" in refused.get_data(as_text=True)
    details = stranger.get(f"/share/{token}/details/page?{MARCH}").get_data(as_text=True)
    assert "/pricing" not in details and "values with fewer than 5 visitors each)" in details
    narrow = stranger.get(f"/share/{token}/details/page?{MARCH}&filter=country:is:GB")
    assert narrow.status_code == 400
    suggested = stranger.get(f"/share/{token}/suggest?dimension=page&{MARCH}").get_json()
    assert suggested == {"results": []}
    shared_csv = str(read_zip(stranger.get(f"/share/{token}/export.zip?{MARCH}").data))
    assert "/pricing" not in shared_csv and "Other (" in shared_csv
    assert "/pricing" in str(read_zip(owner.get(f"/sites/{site_id}/export.zip?{MARCH}").data))
