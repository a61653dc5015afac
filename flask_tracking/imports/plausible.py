"""Plausible's export ZIP, both ways: read its `imported_*` daily CSVs into aggregates, and
write a site's numbers as the same files (so moving to Plausible, or back, keeps the history).

Plausible's export (Site settings → Imports & Exports → Export) is a ZIP of CSV files named
`imported_<table>_<YYYYMMDD>_<YYYYMMDD>.csv`, one row per day and value. Each table maps onto
one or more of our dimensions (the rollups' numbers):

    visitors           the day's totals: visitors, visits, pageviews, bounces, visit_duration
    pages              page: visitors, pageviews
    entry_pages        entry page: visitors, entrances (visits), pageviews, bounces, duration
    exit_pages         exit page: visitors, exits (visits), pageviews, bounces, duration
    sources            source, referrer, UTM source/medium/campaign (each summed by its value)
    locations          country, region (cities are GeoNames ids there: left out, said so)
    devices            screen size (Plausible's "device" is the screen class: Desktop, ...)
    browsers           browser (versions summed)
    operating_systems  operating system (versions summed)
    custom_events      custom event: visitors, events

What Plausible's format cannot carry either way: the User-Agent's device type, cities, UTM
content and term on our side, property breakdowns, and goals' revenue. A visitor counted in two
rows of one table on a day (two sources in one day, say) is counted in both, as in Plausible.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask_tracking.imports.base import Refused
from flask_tracking.reports.dimensions import DIMENSIONS
from flask_tracking.reports.queries import Counts

TOTAL = 0
MAX_FILES = 200
MAX_UNCOMPRESSED = 1 << 30  # a ZIP that would inflate past 1 GiB is refused (a zip bomb)
NAME = re.compile(r"(?:^|/)imported_([a-z_]+?)(?:_\d{8}_\d{8})?\.csv$")
DIRECT = ("", "Direct / None", "(none)")
UNKNOWN = ("", "ZZ", "(not set)", "Unknown")
# Our dimension values as Plausible writes them (screen classes are capitalised there).
SCREENS = {"desktop": "Desktop", "laptop": "Laptop", "tablet": "Tablet", "mobile": "Mobile"}

# Per table: the columns a file must have, and which dimension each value column feeds.
SESSION_NUMBERS = ("visitors", "visits")
TABLES: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "visitors": (("date", "visitors", "pageviews", "bounces", "visits", "visit_duration"), ()),
    "pages": (("date", "page", "visitors", "pageviews"), (("page", "page"),)),
    "entry_pages": (
        ("date", "entry_page", "visitors", "entrances"),
        (("entry_page", "entry_page"),),
    ),
    "exit_pages": (("date", "exit_page", "visitors", "exits"), (("exit_page", "exit_page"),)),
    "sources": (
        ("date", "source", *SESSION_NUMBERS),
        (
            ("source", "source"),
            ("referrer", "referrer"),
            ("utm_source", "utm_source"),
            ("utm_medium", "utm_medium"),
            ("utm_campaign", "utm_campaign"),
        ),
    ),
    "locations": (
        ("date", "country", *SESSION_NUMBERS),
        (("country", "country"), ("region", "region")),
    ),
    "devices": (("date", "device", *SESSION_NUMBERS), (("device", "screen"),)),
    "browsers": (("date", "browser", *SESSION_NUMBERS), (("browser", "browser"),)),
    "operating_systems": (
        ("date", "operating_system", *SESSION_NUMBERS),
        (("operating_system", "os"),),
    ),
    "custom_events": (("date", "name", "visitors", "events"), (("name", "event"),)),
}


@dataclass
class Aggregates:
    """What an aggregate file holds: per (day, dimension number, value), the counts."""

    counts: dict[tuple[date, int, str], Counts] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    tables: list[str] = field(default_factory=list)

    def add(self, day: date, dimension: int, value: str, counts: Counts) -> None:
        self.counts.setdefault((day, dimension, value), Counts()).add(counts)

    @property
    def days(self) -> list[date]:
        return sorted({day for day, dimension, _value in self.counts if dimension == TOTAL})

    def visitors(self) -> int:
        return sum(c.visitors for (_d, dim, _v), c in self.counts.items() if dim == TOTAL)

    def count_events_in_totals(self) -> None:
        """Add each day's custom events to the day's total (for sources whose totals lack them)."""
        event = DIMENSIONS["event"].number
        for (day, dimension, _value), counts in list(self.counts.items()):
            if dimension == event and (day, TOTAL, "") in self.counts:
                self.counts[(day, TOTAL, "")].events += counts.events

    def without_days(self, days: Iterable[date]) -> None:
        """Drop every aggregate of these days."""
        gone = set(days)
        self.counts = {key: c for key, c in self.counts.items() if key[0] not in gone}


def read(data: bytes) -> Aggregates:
    """Read a Plausible export ZIP (or Refused, naming the file, line and reason)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise Refused(0, "not a ZIP file (Plausible's export is one)") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_FILES:
            raise Refused(0, f"more than {MAX_FILES} files in the ZIP")
        if sum(m.file_size for m in members) > MAX_UNCOMPRESSED:
            raise Refused(0, "the ZIP inflates to more than 1 GiB")
        found = Aggregates()
        for member in sorted(members, key=lambda m: m.filename):
            matched = NAME.search(member.filename)
            if matched is None or matched[1] not in TABLES:
                found.skipped[f"files that are not Plausible tables ({member.filename})"] += 1
                continue
            try:
                text = archive.read(member).decode("utf-8-sig")
            except UnicodeDecodeError:
                raise Refused(0, f"{member.filename} is not UTF-8 text") from None
            _read_table(matched[1], member.filename, text.splitlines(), found)
            found.tables.append(matched[1])
    if "visitors" not in found.tables:
        raise Refused(0, "no imported_visitors file: it holds the days' totals")
    found.count_events_in_totals()  # Plausible's visitors table has none
    return found


def _read_table(table: str, filename: str, lines: list[str], into: Aggregates) -> None:
    required, feeds = TABLES[table]
    reader = csv.reader(lines)
    header = [h.strip() for h in next(reader, [])]
    missing = [name for name in required if name not in header]
    if missing:
        raise Refused(1, f"{filename}: no column {', '.join(missing)}")
    for number, fields in enumerate(reader, start=2):
        if not fields:
            continue
        if len(fields) != len(header):
            raise Refused(number, f"{filename}: {len(fields)} fields, not {len(header)}")
        row = dict(zip(header, fields, strict=True))
        day = _day(row["date"], filename, number)
        counts = _counts(table, row, filename, number)
        if table == "visitors":
            into.add(day, TOTAL, "", counts)
            continue
        if table == "locations" and (row.get("city") or "0") not in ("", "0"):
            into.skipped["cities (Plausible names them by GeoNames id)"] += 1
        if table == "custom_events" and row["name"].strip() == "pageview":
            continue
        for column, name in feeds:
            if column not in row:
                continue
            value = _value(name, row[column])
            into.add(day, DIMENSIONS[name].number, value, counts)


def _day(text: str, filename: str, line: int) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise Refused(line, f"{filename}: {text[:40]!r} is not a date (YYYY-MM-DD)") from None


def _number(row: dict[str, str], column: str, filename: str, line: int) -> int:
    text = (row.get(column) or "0").strip() or "0"
    try:
        value = int(float(text))
    except ValueError:
        raise Refused(line, f"{filename}: {column} {text[:40]!r} is not a number") from None
    if value < 0 or value > 2**31:
        raise Refused(line, f"{filename}: {column} {value} is out of range")
    return value


def _counts(table: str, row: dict[str, str], filename: str, line: int) -> Counts:
    def n(column: str) -> int:
        return _number(row, column, filename, line)

    visits = n({"entry_pages": "entrances", "exit_pages": "exits"}.get(table, "visits"))
    if table == "custom_events":
        return Counts(visitors=n("visitors"), events=n("events"))
    if table == "pages":
        return Counts(visitors=n("visitors"), pageviews=n("pageviews"))
    return Counts(
        visitors=n("visitors"),
        visits=visits,
        pageviews=n("pageviews"),
        bounces=n("bounces"),
        duration=float(n("visit_duration")),
    )


def _value(name: str, text: str) -> str:
    text = text.strip()
    if name in ("source", "referrer") and text in DIRECT:
        return ""
    if name in ("country", "region") and text in UNKNOWN:
        return ""
    if name == "screen":
        return text.lower() if text.lower() in SCREENS else ""
    return "" if text in ("(not set)", "(none)") else text


# -- export ---------------------------------------------------------------------------------

# The numbers of a session table, in Plausible's column order.
SESSION_COLUMNS = ("visitors", "visits", "visit_duration", "bounces", "pageviews")
HEADERS: dict[str, tuple[str, ...]] = {
    "visitors": ("date", "visitors", "pageviews", "bounces", "visits", "visit_duration"),
    "sources": (
        "date", "source", "referrer", "utm_source", "utm_medium", "utm_campaign", "utm_content",
        "utm_term", "pageviews", "visitors", "visits", "visit_duration", "bounces",
    ),
    "pages": ("date", "hostname", "page", "visits", "visitors", "pageviews"),
    "entry_pages": (
        "date", "entry_page", "visitors", "entrances", "visit_duration", "bounces", "pageviews",
    ),
    "exit_pages": (
        "date", "exit_page", "visitors", "visit_duration", "exits", "bounces", "pageviews",
    ),
    "custom_events": ("date", "name", "link_url", "path", "visitors", "events"),
    "locations": ("date", "country", "region", "city", *SESSION_COLUMNS),
    "devices": ("date", "device", *SESSION_COLUMNS),
    "browsers": ("date", "browser", "browser_version", *SESSION_COLUMNS),
    "operating_systems": ("date", "operating_system", "operating_system_version", *SESSION_COLUMNS),
}  # fmt: skip


@dataclass
class Export:
    """A site's numbers per day in Plausible's tables: rows of cells, by table name."""

    rows: dict[str, list[list[Any]]] = field(default_factory=lambda: {t: [] for t in HEADERS})

    def add(self, table: str, day: date, values: Iterable[Any], c: Counts) -> None:
        """Add a row: the table's value columns, then its numbers in its own column order."""
        numbers = {
            "visitors": c.visitors,
            "visits": c.visits,
            "entrances": c.visits,
            "exits": c.visits,
            "pageviews": c.pageviews,
            "bounces": c.bounces,
            "visit_duration": round(c.duration),
            "events": c.events,
        }
        cells: list[Any] = [day.isoformat(), *values]
        cells += [numbers[column] for column in HEADERS[table][len(cells) :]]
        self.rows[table].append(cells)

    def zip(self) -> bytes:
        """The ZIP Plausible imports: one CSV per table, named for the days it covers."""
        days = [row[0] for rows in self.rows.values() for row in rows]
        span = f"{min(days).replace('-', '')}_{max(days).replace('-', '')}" if days else "0_0"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for table, header in HEADERS.items():
                archive.writestr(f"imported_{table}_{span}.csv", _csv(header, self.rows[table]))
        return buffer.getvalue()


def _csv(header: Iterable[str], rows: Iterable[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in sorted(rows, key=_order):
        writer.writerow(row)
    return out.getvalue()


def _order(row: list[Any]) -> tuple[Any, ...]:
    return tuple(str(cell) for cell in row)


def cells(name: str, value: str) -> Iterator[str]:
    """A dimension value as Plausible writes it (screen classes capitalised, direct named)."""
    if name == "screen":
        yield SCREENS.get(value, "")
    elif name == "source":
        yield value or "Direct / None"
    else:
        yield value
