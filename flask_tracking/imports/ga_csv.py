"""Google Analytics' own CSV downloads (GA4's reports and explorations: Share → Download file
→ CSV) as daily aggregates.

Such a file holds one or more tables, each after `#` comment lines and separated by blank
lines. A table counts when its first column is the day (`Date`, `20250301` or `2025-03-01`)
and it has at most one other dimension column — any of those GA names below; its metric
columns are found by their GA names. The table with the day alone gives the day's totals and
must be there; the others give a dimension's values per day. Values and numbers GA writes
("(direct)", "(not set)", "1,234", "45.2%", "00:01:23") are read as GA means them.

    Date + Users / Total users / Active users     visitors
           Sessions                               visits
           Views / Screen page views / Pageviews  pageviews
           Bounce rate (times sessions) / Bounces     bounces
           Average session duration (times sessions)  visit duration
           Event count                            events (with an Event name)
"""

from __future__ import annotations

import csv
import re
from datetime import date

from flask_tracking.imports.base import Refused
from flask_tracking.imports.plausible import TOTAL, Aggregates
from flask_tracking.reports.dimensions import DIMENSIONS
from flask_tracking.reports.names import country_code
from flask_tracking.reports.queries import Counts

DAY_COLUMNS = ("date", "day")
METRICS = {
    "users": "visitors",
    "total users": "visitors",
    "active users": "visitors",
    "sessions": "visits",
    "views": "pageviews",
    "screen page views": "pageviews",
    "pageviews": "pageviews",
    "bounces": "bounces",
    "bounce rate": "bounce_rate",
    "average session duration": "average_duration",
    "avg. session duration": "average_duration",
    "event count": "events",
}
DIMENSION_COLUMNS = {
    "page path and screen class": "page",
    "page path": "page",
    "page path + query string": "page",
    "page": "page",
    "landing page": "entry_page",
    "landing page + query string": "entry_page",
    "session source": "source",
    "source": "source",
    "first user source": "source",
    "session medium": "utm_medium",
    "session campaign": "utm_campaign",
    "country": "country",
    "region": "region",
    "city": "city",
    "browser": "browser",
    "operating system": "os",
    "device category": "device",
    "event name": "event",
}
UNSET = ("(not set)", "(none)", "(other)", "")
DIRECT = ("(direct)",)


def read(data: bytes) -> Aggregates:
    """Read a GA CSV download (or Refused, naming the line and the reason)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Refused(0, "the file is not UTF-8 text") from None
    found = Aggregates()
    tables = 0
    for start, lines in _tables(text.splitlines()):
        if _table(start, lines, found):
            tables += 1
    if not any(dim == TOTAL for _day, dim, _value in found.counts):
        raise Refused(
            0,
            "no table of daily totals: download a report whose only dimension is Date, "
            "with Users (or Active users), Sessions and Views",
        )
    found.tables = [f"{tables} table(s)"]
    found.count_events_in_totals()
    return found


def _tables(lines: list[str]) -> list[tuple[int, list[str]]]:
    """The tables of a download: runs of lines that are neither blank nor comments."""
    tables: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            if current:
                tables.append((start, current))
                current = []
            continue
        if not current:
            start = number
        current.append(line)
    if current:
        tables.append((start, current))
    return tables


def _table(start: int, lines: list[str], into: Aggregates) -> bool:
    rows = list(csv.reader(lines))
    header = [h.strip().lower() for h in rows[0]]
    if not header or header[0] not in DAY_COLUMNS:
        into.skipped["tables without Date as their first column"] += 1
        return False
    rest = header[1:]
    dims = [name for name in rest if name not in METRICS]
    if len(dims) > 1 or (dims and dims[0] not in DIMENSION_COLUMNS):
        into.skipped[f"tables by {', '.join(dims)} (not a dimension this importer knows)"] += 1
        return False
    metrics = {index: METRICS[name] for index, name in enumerate(header) if name in METRICS}
    if not metrics:
        raise Refused(
            start, "a table without a metric this importer knows (Users, Sessions, Views…)"
        )
    name = DIMENSION_COLUMNS[dims[0]] if dims else ""
    at = header.index(dims[0]) if dims else -1
    for offset, fields in enumerate(rows[1:], start=1):
        number = start + offset
        if (
            not fields
            or not fields[0].strip()
            or fields[0].strip().lower() in ("total", "grand total")
        ):
            continue
        if len(fields) != len(header):
            raise Refused(number, f"{len(fields)} fields, not {len(header)}")
        day = _day(fields[0], number)
        counts = _counts({metrics[i]: fields[i] for i in metrics}, number)
        if not name:
            into.add(day, TOTAL, "", counts)
            continue
        value = _value(name, fields[at].strip())
        if name == "event" and value in (
            "page_view",
            "session_start",
            "first_visit",
            "user_engagement",
            "scroll",
        ):
            continue
        into.add(day, DIMENSIONS[name].number, value, counts)
    return True


def _day(text: str, line: int) -> date:
    text = text.strip()
    try:
        if re.fullmatch(r"\d{8}", text):
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        return date.fromisoformat(text)
    except ValueError:
        raise Refused(line, f"{text[:40]!r} is not a day (YYYYMMDD or YYYY-MM-DD)") from None


def _number(text: str, line: int, name: str) -> float:
    text = text.strip().replace(",", "")
    if not text:
        return 0.0
    try:
        if text.endswith("%"):
            return float(text[:-1]) / 100
        if re.fullmatch(r"\d+:\d{2}:\d{2}", text):
            hours, minutes, seconds = (int(part) for part in text.split(":"))
            return float(hours * 3600 + minutes * 60 + seconds)
        value = float(text)
    except ValueError:
        raise Refused(line, f"{name} {text[:40]!r} is not a number") from None
    if value < 0 or value > 2**31:
        raise Refused(line, f"{name} {value:g} is out of range")
    return value


def _counts(cells: dict[str, str], line: int) -> Counts:
    values = {name: _number(text, line, name) for name, text in cells.items()}
    visits = int(values.get("visits", 0))
    rate = values.get("bounce_rate")
    bounces = values.get("bounces", visits * rate if rate is not None else 0)
    return Counts(
        visitors=int(values.get("visitors", 0)),
        visits=visits,
        pageviews=int(values.get("pageviews", 0)),
        events=int(values.get("events", 0)),
        bounces=round(bounces),
        duration=visits * values.get("average_duration", 0.0),
    )


def _value(name: str, text: str) -> str:
    if text in UNSET:
        return ""
    if name == "source" and text in DIRECT:
        return ""
    if name == "country":
        return country_code(text) or ""
    if name == "device":
        return text.lower() if text.lower() in ("desktop", "mobile", "tablet") else ""
    return text
