"""Billable events per account and UTC month, as the writer stored them (events/schema.py
USAGE: added in the same transaction as the events, so a replayed spool batch counts nothing
twice). Imported history (flask-tracking import) is not billed."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from flask_tracking.events import current_store
from flask_tracking.events.tables import tables


def month_of(moment: datetime) -> int:
    """yyyymm of a moment in UTC."""
    moment = moment.astimezone(UTC)
    return moment.year * 100 + moment.month


def this_month(account_id: int, now: datetime | None = None) -> int:
    return by_account(month_of(now or datetime.now(UTC))).get(account_id, 0)


def by_account(month: int) -> dict[int, int]:
    """Every account's stored events in a month."""
    store = current_store()
    u = tables("duckdb").usage
    rows = store.fetch(
        select(u.c.account_id, func.sum(u.c.events))
        .where(u.c.month == month)
        .group_by(u.c.account_id)
    )
    return {int(account): int(events) for account, events in rows}


def history(account_id: int, months: int = 12) -> list[tuple[int, int]]:
    """(yyyymm, events) of an account's last months with usage, newest first."""
    store = current_store()
    u = tables("duckdb").usage
    rows = store.fetch(
        select(u.c.month, func.sum(u.c.events))
        .where(u.c.account_id == account_id)
        .group_by(u.c.month)
        .order_by(u.c.month.desc())
        .limit(months)
    )
    return [(int(month), int(events)) for month, events in rows]


@dataclass(frozen=True)
class Forecast:
    used: int
    limit: int
    projected: int  # at the month-to-date rate, by the month's end

    @property
    def percent(self) -> int:
        return 100 * self.used // self.limit if self.limit else 0


def forecast(used: int, limit: int, now: datetime | None = None) -> Forecast:
    """Where the month ends at its rate so far (the elapsed part of the month, to the second)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    days = calendar.monthrange(now.year, now.month)[1]
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elapsed = max((now - start).total_seconds(), 3600.0)  # an hour at least: no wild guesses
    projected = round(used * days * 86400 / elapsed)
    return Forecast(used, limit, max(projected, used))


def label(month: int) -> str:
    return f"{calendar.month_name[month % 100]} {month // 100}"
