"""k-anonymity on shared (public) dashboards: what a link's holder sees never singles out fewer
than k visitors (the link's `min_visitors`, 5 unless its owner chose otherwise).

- In every panel, the details view and the CSV export, values with fewer than k visitors are
  folded into one "Other" row (their counts summed; several of them may be one visitor, so it
  is an upper bound), which links nowhere. A custom event's property values likewise.
- The filter dialog suggests no value with fewer than k visitors.
- A filtered view (any filter, a goal's included) that leaves between 1 and k-1 visitors
  is refused (400, saying why): filters cannot isolate a handful of people.

Private dashboards (the owner's and members') are unchanged.
"""

from __future__ import annotations

from dataclasses import replace

from flask_tracking.dashboard.page import DashboardData
from flask_tracking.reports.dimensions import InvalidQuery
from flask_tracking.reports.results import Breakdown, PropRow, Row

OTHER = "Other"


def too_few(visitors: int, k: int) -> bool:
    """A count that could single someone out: some, but fewer than k."""
    return 0 < visitors < k


def check_view(visitors: int, filtered: bool, k: int) -> None:
    """Refuse a filtered view that leaves fewer than k visitors."""
    if filtered and too_few(visitors, k):
        raise InvalidQuery(
            f"This shared dashboard shows no view of fewer than {k} visitors, and these "
            "filters leave fewer: remove one, or choose a longer period."
        )


def fold(breakdown: Breakdown, k: int) -> Breakdown:
    """The breakdown with its values of fewer than k visitors folded into one "Other" row."""
    keep = [row for row in breakdown.rows if not too_few(row.visitors, k)]
    small = [row for row in breakdown.rows if too_few(row.visitors, k)]
    if not small:
        return breakdown
    other = Row(
        value="",
        label=f"{OTHER} ({len(small)} values with fewer than {k} visitors each)",
        visitors=sum(r.visitors for r in small),
        visits=sum(r.visits for r in small),
        pageviews=sum(r.pageviews for r in small),
        events=sum(r.events for r in small),
        bounces=sum(r.bounces for r in small),
        duration=sum(r.duration for r in small),
        share=min(100.0, sum(r.share for r in small)),
        folded=len(small),
    )
    return replace(breakdown, rows=[*keep, other])


def fold_props(rows: list[PropRow], k: int) -> list[PropRow]:
    keep = [row for row in rows if not too_few(row.visitors, k)]
    small = [row for row in rows if too_few(row.visitors, k)]
    if not small:
        return rows
    key = small[0].key if len({row.key for row in small}) == 1 else ""
    other = PropRow(key, OTHER, sum(r.visitors for r in small), sum(r.events for r in small))
    return [*keep, other]


def protect(data: DashboardData, k: int) -> DashboardData:
    """What a shared dashboard may show of `data` (k of 1 or less: everything)."""
    if k <= 1:
        return data
    view = data.view
    check_view(data.aggregate.current.visitors, bool(view.filters), k)
    return replace(
        data,
        breakdowns={name: fold(b, k) for name, b in data.breakdowns.items()},
        props=None if data.props is None else fold_props(data.props, k),
    )
