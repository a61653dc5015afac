"""The dashboard's current view as CSV files in a zip, one per panel.

Cells are tracked values typed by strangers: any that a spreadsheet would read as a formula
(starting with =, +, -, @, a tab or a carriage return) gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any

from flask_tracking.dashboard.page import DashboardData
from flask_tracking.reports.results import Breakdown

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: Any) -> Any:
    """Return a text cell that no spreadsheet will evaluate; other values as they are."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Return RFC 4180 CSV text with every cell neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(cell) for cell in header])
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return out.getvalue()


def zip_of(data: DashboardData) -> bytes:
    """Return the zip of every panel of the dashboard `data`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files_of(data):
            archive.writestr(name, text.encode("utf-8"))
    return buffer.getvalue()


def files_of(data: DashboardData) -> list[tuple[str, str]]:
    """Return (file name, CSV text) for the metrics, the chart and every breakdown."""
    files = [("metrics.csv", _metrics(data)), ("timeseries.csv", _series(data))]
    for panel in data.breakdowns.values():
        files.append((f"{panel.dimension.name}.csv", _breakdown(panel)))
    if data.event and data.props is not None:
        props = [(data.event, p.key, p.value, p.visitors, p.events) for p in data.props]
        columns = ("event", "property", "value", "visitors", "events")
        files.append(("event_properties.csv", csv_text(columns, props)))
    if data.goals:
        files.append(("goals.csv", _goals(data)))
    if data.funnel is not None:
        files.append(("funnel.csv", _funnel(data)))
    files.append(("README.txt", readme(data)))
    return files


# A breakdown's columns after its value(s): (column, measure, meaning). A row leaves empty the
# numbers its dimension does not have (Dimension.measures), never 0: a spreadsheet would
# average a 0.
BREAKDOWN_COLUMNS = (
    ("visitors", "visitors", "unique visitors with this value in the period"),
    ("visits", "visits", "visits (sessions) with this value; empty for pages and custom events"),
    ("pageviews", "pageviews", "pageviews; empty for custom events"),
    ("events", "events", "custom events of this name; empty for other dimensions"),
    ("bounce_rate", "bounce_rate", "percent of visits that bounced (one pageview); visits only"),
    ("visit_duration_s", "visit_duration", "average visit duration in seconds; visits only"),
    ("share_pct", "share", "percent of the period's unique visitors"),
)


def _breakdown(panel: Breakdown) -> str:
    dim = panel.dimension
    measures = {*dim.measures, "share"}
    coded = dim.names is not None
    rows = []
    for row in panel.rows:
        numbers = {
            "visitors": row.visitors,
            "visits": row.visits,
            "pageviews": row.pageviews,
            "events": row.events,
            "bounce_rate": round(row.bounce_rate, 1),
            "visit_duration": round(row.visit_duration),
            "share": round(row.share, 2),
        }
        cells = [numbers[m] if m in measures else "" for _, m, _ in BREAKDOWN_COLUMNS]
        rows.append([row.label, *([row.value] if coded else []), *cells])
    header = [dim.label, *([f"{dim.name}_code"] if coded else [])]
    return csv_text([*header, *(column for column, _, _ in BREAKDOWN_COLUMNS)], rows)


def readme(data: DashboardData) -> str:
    """Return README.txt: the period and filters of the export, and what each column means."""
    query = data.query
    lines = [
        "Flask-Tracking export",
        f"Period: {query.range.start.isoformat()} to {query.range.end.isoformat()} (UTC, end "
        f"excluded), reported in the site's time zone {query.timezone}.",
        "Filters: " + ("; ".join(f.label for f in data.view.filters) or "none"),
        "",
        "metrics.csv: the top metrics (value, the previous period's, change in percent).",
        "timeseries.csv: the chart, one row per bucket, with the previous period's bucket.",
        "<dimension>.csv: one file per panel, one row per value, ranked by visitors.",
        "  The first column is the value as the dashboard shows it; country.csv adds the",
        "  ISO 3166-1 code. A number that does not apply to the dimension is left empty:",
    ]
    lines += [f"  {column}: {meaning}" for column, _, meaning in BREAKDOWN_COLUMNS]
    lines += [
        "goals.csv, funnel.csv, event_properties.csv: present when the view has goals, a",
        "  funnel or a custom event's properties open.",
        "Text cells that a spreadsheet would run as a formula start with an apostrophe.",
    ]
    return "\r\n".join(lines) + "\r\n"


def _goals(data: DashboardData) -> str:
    rows = []
    for found in data.goals:
        now, before = found.current, found.previous
        revenue = "" if now.revenue is None else now.revenue
        rows.append(
            (
                found.goal.name,
                found.goal.description,
                now.visitors,
                now.conversions,
                round(now.rate, 2),
                revenue,
                "" if now.average is None else now.average,
                found.goal.currency,
                "" if before is None else before.visitors,
                "" if before is None else before.conversions,
                "" if before is None else round(before.rate, 2),
                "" if before is None or before.revenue is None else before.revenue,
            )
        )
    header = (
        "goal",
        "counts",
        "unique_conversions",
        "conversions",
        "conversion_rate_pct",
        "revenue",
        "average_revenue",
        "currency",
        "previous_unique_conversions",
        "previous_conversions",
        "previous_conversion_rate_pct",
        "previous_revenue",
    )
    return csv_text(header, rows)


def _funnel(data: DashboardData) -> str:
    result = data.funnel
    assert result is not None
    rows = [
        (
            index + 1,
            step.goal.name,
            step.visits,
            step.visitors,
            round(result.of_entered(index), 2),
            round(result.of_previous(index), 2) if index else "",
            result.dropped(index) if index else "",
            "" if step.median_seconds is None else round(step.median_seconds, 1),
        )
        for index, step in enumerate(result.steps)
    ]
    unit = "visitor_days" if result.across_visits else "visits"
    header = (
        "step",
        "goal",
        unit,
        "visitors",
        "pct_of_entered",
        "pct_of_previous_step",
        "dropped_off",
        "median_seconds_from_previous_step",
    )
    return csv_text(header, rows)


def _metrics(data: DashboardData) -> str:
    current, previous = data.aggregate.current, data.aggregate.previous
    rows = []
    for card in data.cards:
        before = previous.value(card.name) if previous else None
        change = data.aggregate.change(card.name)
        rows.append(
            (
                card.name,
                _number(current.value(card.name)),
                "" if before is None else _number(before),
                "" if change is None else round(change, 1),
            )
        )
    rows.append(("current_visitors", data.realtime, "", ""))
    return csv_text(("metric", "value", "previous_period", "change_pct"), rows)


def _series(data: DashboardData) -> str:
    rows = [
        (
            point.start.isoformat(),
            label,
            point.value if index < data.begun else "",  # the future is not a zero
            "" if point.previous is None else point.previous,
        )
        for index, (point, label) in enumerate(zip(data.series.points, data.labels, strict=True))
    ]
    return csv_text(("bucket_start_utc", "bucket", data.series.metric, "previous_period"), rows)


def _blank(value: int | None) -> int | str:
    return "" if value is None else value


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 2)
