"""What reports return: frozen value objects, the same for pages, CSV exports and the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_tracking.reports.dimensions import Dimension, metric
from flask_tracking.reports.goals import Goal
from flask_tracking.reports.queries import Conversions, Counts


class Rates:
    """Bounce rate and visit duration, for anything that counts visits, bounces and duration."""

    __slots__ = ()
    visits: int
    bounces: int
    duration: float

    @property
    def bounce_rate(self) -> float:
        """Return the percentage of visits with at most one pageview."""
        return 100.0 * self.bounces / self.visits if self.visits else 0.0

    @property
    def visit_duration(self) -> float:
        """Return the mean visit duration in seconds."""
        return self.duration / self.visits if self.visits else 0.0


@dataclass(frozen=True, slots=True)
class Metrics(Rates):
    """The top metrics of a period."""

    visitors: int
    visits: int
    pageviews: int
    events: int
    bounces: int
    duration: float

    @classmethod
    def of(cls, counts: Counts) -> Metrics:
        """Return the metrics of summed counts."""
        return cls(
            counts.visitors,
            counts.visits,
            counts.pageviews,
            counts.events,
            counts.bounces,
            counts.duration,
        )

    @property
    def views_per_visit(self) -> float:
        """Return pageviews per visit (0 without visits)."""
        return self.pageviews / self.visits if self.visits else 0.0

    def value(self, name: str) -> float:
        """Return the metric called `name` (one of dimensions.METRICS)."""
        return float(getattr(self, metric(name)))


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A period's metrics and, when compared, the previous period's."""

    current: Metrics
    previous: Metrics | None

    def change(self, name: str) -> float | None:
        """Return the change of a metric in percent, or None when there is nothing to compare."""
        if self.previous is None:
            return None
        before, now = self.previous.value(name), self.current.value(name)
        if name == "bounce_rate":  # a rate changes in points, not in percent of itself
            return now - before if self.previous.visits and self.current.visits else None
        if before == 0:
            return None
        return 100.0 * (now - before) / before


@dataclass(frozen=True, slots=True)
class Point:
    """One bucket of a time series."""

    start: datetime
    value: int
    previous: int | None


@dataclass(frozen=True, slots=True)
class Series:
    """A metric per bucket, with the previous period's bucket of the same index."""

    metric: str
    bucket: str
    points: list[Point]


@dataclass(frozen=True, slots=True)
class Row(Rates):
    """One value of a breakdown."""

    value: str
    label: str
    visitors: int
    visits: int
    pageviews: int
    events: int
    bounces: int
    duration: float
    share: float  # of the period's visitors, in percent
    # On a shared dashboard: how many values with too few visitors this row stands for
    # ("Other", dashboard/privacy.py); 0 for an ordinary row.
    folded: int = 0


@dataclass(frozen=True, slots=True)
class Breakdown:
    """A ranked page of a dimension's values."""

    dimension: Dimension
    rows: list[Row]
    total: int  # how many distinct values there are
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class PropRow:
    """One property value of a custom event."""

    key: str
    value: str
    visitors: int
    events: int


@dataclass(frozen=True, slots=True)
class GoalMetrics:
    """A goal's numbers in one period."""

    visitors: int  # unique conversions
    conversions: int  # total conversions
    rate: float  # converted visitors / all visitors of the period, in percent
    revenue: float | None  # None for a goal without revenue
    average: float | None  # revenue per conversion that carried a value

    @classmethod
    def of(cls, goal: Goal, found: Conversions, visitors: int) -> GoalMetrics:
        """Return a goal's metrics from its conversions and the period's visitors."""
        revenue = average = None
        if goal.has_revenue:
            revenue = round(found.revenue, 2)
            average = round(found.revenue / found.valued, 2) if found.valued else 0.0
        rate = 100.0 * found.visitors / visitors if visitors else 0.0
        return cls(found.visitors, found.conversions, rate, revenue, average)

    def value(self, name: str) -> float | None:
        """Return the metric called `name` (a field)."""
        found = getattr(self, name)
        return None if found is None else float(found)


GOAL_METRICS = ("visitors", "conversions", "rate", "revenue", "average")


@dataclass(frozen=True, slots=True)
class GoalResult:
    """One goal of a report: its definition, its period's metrics and the previous period's."""

    goal: Goal
    current: GoalMetrics
    previous: GoalMetrics | None

    def change(self, name: str) -> float | None:
        """Return the change of a metric in percent (in points for the rate), or None."""
        if self.previous is None:
            return None
        before, now = self.previous.value(name), self.current.value(name)
        if before is None or now is None:
            return None
        if name == "rate":
            return now - before
        return 100.0 * (now - before) / before if before else None
