"""How the dashboard writes numbers, times and its fallback chart (template filters)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from flask import Blueprint

from flask_tracking.reports import stats
from flask_tracking.reports.names import flag, logo
from flask_tracking.reports.ranges import zone_named

VENDOR = Path(__file__).resolve().parent.parent / "static" / "vendor"
CHART_WIDTH, CHART_HEIGHT = 900, 220


@dataclass(frozen=True, slots=True)
class ChartLines:
    """SVG polyline points of the current and previous period, for the no-JavaScript chart."""

    width: int
    height: int
    current: str
    previous: str


def register(blueprint: Blueprint) -> None:
    """Make these filters available to every template."""
    blueprint.add_app_template_filter(thousands)
    blueprint.add_app_template_filter(metric_text)
    blueprint.add_app_template_filter(localtime)
    blueprint.add_app_template_filter(chart_svg)
    blueprint.add_app_template_filter(duration)
    blueprint.add_app_template_filter(points)
    blueprint.add_app_template_filter(percent_interval)
    blueprint.add_app_template_filter(p_value)
    blueprint.add_app_template_filter(flag)
    blueprint.add_app_template_filter(isodate)
    blueprint.add_app_template_global(logo)
    blueprint.add_app_template_global(icons_available)


def thousands(number: float | int | None) -> str:
    """Return 12,345 for 12345 (and 12.3k is left to charts)."""
    if number is None:
        return "—"
    return f"{number:,.0f}" if float(number).is_integer() else f"{number:,.1f}"


def duration(seconds: float) -> str:
    """Return "1h 2m", "3m 4s" or "5s"."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def metric_text(metrics: stats.Metrics | None, name: str) -> str:
    """Return a top metric as the dashboard shows it."""
    if metrics is None:
        return "—"
    if name == "bounce_rate":
        return f"{metrics.bounce_rate:.0f}%"
    if name == "visit_duration":
        return duration(metrics.visit_duration)
    if name == "views_per_visit":
        return f"{metrics.views_per_visit:.2f}"
    return thousands(metrics.value(name))


def localtime(moment: datetime, tz: str, *, end: bool = False) -> str:
    """Return a range boundary as a local date; an end (exclusive) shows the day before it."""
    local = moment.astimezone(zone_named(tz))
    if end:
        local -= timedelta(microseconds=1)
    return local.strftime("%d %b %Y")


def isodate(moment: datetime, tz: str, *, end: bool = False) -> str:
    """Return a range boundary as a local YYYY-MM-DD (an exclusive end: the day before)."""
    local = moment.astimezone(zone_named(tz))
    if end:
        local -= timedelta(microseconds=1)
    return local.date().isoformat()


def chart_svg(series: stats.Series, begun: int | None = None) -> ChartLines:
    """Return polylines of the series scaled to the chart's box (the previous one behind);
    the current one stops at the `begun` buckets that have begun."""
    values = [p.value for p in series.points][:begun]
    previous = [p.previous or 0 for p in series.points]
    peak = max([*values, *previous, 1])
    count = max(len(previous) - 1, 1)

    def points(numbers: list[int]) -> str:
        return " ".join(
            f"{CHART_WIDTH * i / count:.1f},{CHART_HEIGHT - 4 - (CHART_HEIGHT - 8) * n / peak:.1f}"
            for i, n in enumerate(numbers)
        )

    return ChartLines(CHART_WIDTH, CHART_HEIGHT, points(values), points(previous))


@cache
def chart_library_available() -> bool:
    """Tell whether `make assets` has put uPlot in static/vendor (the page works without)."""
    return (VENDOR / "uPlot.iife.min.js").is_file()


@cache
def world_sprite_available() -> bool:
    """Tell whether `make assets` has built the map's outlines as a file of their own."""
    return (VENDOR / "world.svg").is_file()


@cache
def icons_available() -> bool:
    """Tell whether `make assets` has built the logo sprite (rows show no logo without it)."""
    return (VENDOR / "icons.svg").is_file()


def points(value: float | None) -> str:
    """Return a difference of rates (a fraction) in percentage points, signed: +1.25 pp."""
    return "—" if value is None else f"{100 * value:+.2f} pp"


def percent_interval(interval: Any, unit: str = "%") -> str:
    """Return an interval of fractions in percent (or "pp"): [-1.20, +3.40] %."""
    if interval is None:
        return "—"
    return f"[{100 * interval.low:+.2f}, {100 * interval.high:+.2f}] {unit}"


def p_value(value: float | None) -> str:
    """Return a p-value as people read it: 0.042, or < 0.001."""
    if value is None:
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"
