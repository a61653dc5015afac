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
        rows = [
            (
                row.label,
                row.visitors,
                row.visits,
                row.pageviews,
                row.events,
                round(row.bounce_rate, 1),
                round(row.visit_duration),
                round(row.share, 2),
            )
            for row in panel.rows
        ]
        header = (
            panel.dimension.label,
            "visitors",
            "visits",
            "pageviews",
            "events",
            "bounce_rate",
            "visit_duration_s",
            "share_pct",
        )
        files.append((f"{panel.dimension.name}.csv", csv_text(header, rows)))
    if data.event and data.props is not None:
        props = [(data.event, p.key, p.value, p.visitors, p.events) for p in data.props]
        columns = ("event", "property", "value", "visitors", "events")
        files.append(("event_properties.csv", csv_text(columns, props)))
    if data.goals:
        files.append(("goals.csv", _goals(data)))
    if data.funnel is not None:
        files.append(("funnel.csv", _funnel(data)))
    return files


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
            point.value,
            "" if point.previous is None else point.previous,
        )
        for point, label in zip(data.series.points, data.labels, strict=True)
    ]
    return csv_text(("bucket_start_utc", "bucket", data.series.metric, "previous_period"), rows)


def _blank(value: int | None) -> int | str:
    return "" if value is None else value


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 2)
