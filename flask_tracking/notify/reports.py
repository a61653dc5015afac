"""Scheduled email reports: who gets them, what they say, and sending what is due.

The `reports` job (ops/jobs.py) calls `send_due()`: for every confirmed schedule, the latest
report due by now (notify/schedule.py) is claimed by inserting its row in `report_sent` — the
unique (schedule, period) key makes a period go once, across restarts and writers — and queued
in the mail outbox in the same transaction. The numbers are the report layer's (the same
Report the dashboard and the API read), so the email says what the API says for that period.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from flask_tracking import mail
from flask_tracking.dashboard.format import ChartLines, chart_svg
from flask_tracking.extensions import db
from flask_tracking.notify.models import ReportSchedule, ReportSent
from flask_tracking.notify.schedule import FREQUENCIES, Due, Frequency, latest_due
from flask_tracking.reports import stats
from flask_tracking.reports.dimensions import dimension
from flask_tracking.reports.experiments import ALPHA  # on the always-valid sequential p-value
from flask_tracking.reports.params import parse_view, query_for
from flask_tracking.reports.ranges import as_utc, zone_named
from flask_tracking.reports.results import Aggregate, GoalResult, Row
from flask_tracking.tracking import access
from flask_tracking.tracking.models import Experiment, Site
from flask_tracking.users.accounts import normalise_email
from flask_tracking.users.emails import link, off_request

logger = logging.getLogger("flask_tracking.notify")
TOP = 5  # rows of each list in the email
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class ScheduleError(Exception):
    """A schedule the rules refuse, with the reason to show."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def schedules_of(site: Site) -> list[ReportSchedule]:
    return list(
        db.session.scalars(
            select(ReportSchedule)
            .where(ReportSchedule.site_id == site.id)
            .order_by(ReportSchedule.email, ReportSchedule.frequency)
        )
    )


def _is_member(site: Site, email: str) -> bool:
    from flask_tracking.users.accounts import find_user

    user = find_user(email)
    return user is not None and access.role_of(user.id, site) is not None


def add_schedule(site: Site, email: str, frequency: str, weekday: int, hour: int) -> ReportSchedule:
    """Schedule a report to an address. A member's address starts at once; any other gets a
    link to confirm first (nobody is sent numbers they did not ask for)."""
    email = normalise_email(email)
    if frequency not in FREQUENCIES:
        raise ScheduleError(f"{frequency!r} is not one of {', '.join(FREQUENCIES)}.")
    if not 0 <= weekday <= 6 or not 0 <= hour <= 23:
        raise ScheduleError("Choose a weekday and an hour of the day.")
    token = secrets.token_urlsafe(32)
    member = _is_member(site, email)
    schedule = ReportSchedule(
        site_id=site.id,
        email=email,
        frequency=frequency,
        weekday=weekday,
        hour=hour,
        token_hash=_digest(token),
        confirmed_at=datetime.now(UTC) if member else None,
    )
    db.session.add(schedule)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise ScheduleError(f"{email} already gets the {frequency} report.") from None
    if not member:
        mail.queue(
            email,
            "report_confirm",
            f"Confirm the {frequency} report of {site.display_name}",
            site=site,
            schedule=schedule,
            confirm_url=link("notify.confirm", token=token),
        )
    db.session.commit()
    return schedule


def find_by_token(token: str) -> ReportSchedule | None:
    found: ReportSchedule | None = db.session.scalar(
        select(ReportSchedule).where(ReportSchedule.token_hash == _digest(token))
    )
    return found


def describe(schedule: ReportSchedule) -> str:
    when = f"{schedule.hour:02d}:00"
    if schedule.frequency == "weekly":
        return f"every {WEEKDAYS[schedule.weekday]} at {when}"
    if schedule.frequency == "monthly":
        return f"on the first of every month at {when}"
    return f"every day at {when}"


@dataclass(frozen=True)
class ExperimentLine:
    """A running experiment as the report states it: visitors and primary-goal rate per
    variant, and each treatment's verdict (on the always-valid sequential p-value)."""

    name: str
    goal: str
    variants: list[tuple[str, int, float]]  # (variant, exposed visitors, conversion rate %)
    verdicts: list[str]


@dataclass(frozen=True)
class Digest:
    """What one report says."""

    site: Site
    first: date
    last: date
    totals: Aggregate
    pages: list[Row]
    sources: list[Row]
    countries: list[Row]
    goals: list[GoalResult]
    experiments: list[ExperimentLine]
    chart: ChartLines
    dashboard_url: str


def digest(site: Site, first: date, last: date, now: datetime) -> Digest:
    """The numbers of local days [first, last] of the site, with the period before."""
    view = parse_view({"period": "custom", "from": first.isoformat(), "to": last.isoformat()})
    query = query_for(site.id, site.timezone, view, now, site.definitions)
    with stats.Report(query) as report:
        totals = report.aggregate(compare=True)
        rows = {
            name: report.breakdown(dimension(name), limit=TOP).rows
            for name in ("page", "source", "country")
        }
        goals = report.goals(compare=True) if site.definitions else []
        chart = chart_svg(report.timeseries("visitors", compare=True))
    return Digest(
        site=site,
        first=first,
        last=last,
        totals=totals,
        pages=rows["page"],
        sources=rows["source"],
        countries=rows["country"],
        goals=goals,
        experiments=[
            _experiment(site, row, now) for row in site.experiments if row.status == "running"
        ],
        chart=chart,
        dashboard_url=link(
            "dashboard.show",
            site_id=site.id,
            period="custom",
            **{"from": first.isoformat(), "to": last.isoformat()},
        ),
    )


def _experiment(site: Site, row: Experiment, now: datetime) -> ExperimentLine:
    definition = row.definition
    result = stats.experiment_results(site.id, definition, now=now)
    primary = definition.goals[0]
    variants = [
        (v.name, result.exposed.get(v.name, 0), result.rate(v.name, primary))
        for v in definition.variants
    ]
    verdicts = []
    for variant in definition.variants[1:]:
        outcome = result.outcome(variant.name, primary)
        p = None if outcome is None else outcome.comparison.sequential_p_value
        if outcome is None or p is None:
            verdicts.append(f"{variant.name}: not enough data yet")
            continue
        difference = f"{outcome.comparison.difference * 100:+.2f} points"
        judged = "significant" if p < ALPHA else "not significant yet"
        verdicts.append(f"{variant.name}: {difference} against the control, {judged} (p = {p:.3f})")
    if result.sample_ratio_mismatch:
        verdicts.append("Warning: the traffic split is off its weights (sample-ratio mismatch).")
    return ExperimentLine(definition.name, primary.name, variants, verdicts)


def _due(schedule: ReportSchedule, now: datetime) -> Due | None:
    frequency: Frequency = schedule.frequency  # type: ignore[assignment]
    since = as_utc(schedule.confirmed_at or schedule.created_at)
    zone = zone_named(schedule.site.timezone)
    return latest_due(frequency, schedule.weekday, schedule.hour, zone, now=now, since=since)


def send_due(now: datetime | None = None) -> int:
    """Queue every report due by `now` that has not gone yet; return how many."""
    now = now or datetime.now(UTC)
    with off_request():
        return _send_due(now)


def _send_due(now: datetime) -> int:
    queued = 0
    schedules = list(
        db.session.scalars(select(ReportSchedule).where(ReportSchedule.confirmed_at.is_not(None)))
    )
    for schedule in schedules:
        due = _due(schedule, now)
        if due is None:
            continue
        db.session.add(ReportSent(schedule_id=schedule.id, first_day=due.first, last_day=due.last))
        try:
            db.session.flush()  # the claim: a period already sent stops here
        except IntegrityError:
            db.session.rollback()
            continue
        try:
            _queue(schedule, digest(schedule.site, due.first, due.last, now))
        except Exception:  # one site's failure (its store away) must not stop the others
            db.session.rollback()
            logger.exception("report %s for %s not sent", schedule.id, schedule.email)
            continue
        db.session.commit()
        queued += 1
    return queued


def _unsubscriber() -> URLSafeSerializer:
    return URLSafeSerializer(str(current_app.config["SECRET_KEY"]), salt="report-unsubscribe")


def unsubscribe_token(schedule: ReportSchedule) -> str:
    """The unsubscribe link's token: the schedule's id, signed — the same in every email, so
    an old report's link works as well as the last one's."""
    return str(_unsubscriber().dumps(schedule.id))


def find_by_unsubscribe_token(token: str) -> ReportSchedule | None:
    try:
        schedule_id = _unsubscriber().loads(token)
    except BadData:
        return None
    return db.session.get(ReportSchedule, schedule_id) if isinstance(schedule_id, int) else None


def _queue(schedule: ReportSchedule, found: Digest) -> None:
    unsubscribe = link("notify.unsubscribe", token=unsubscribe_token(schedule))
    span = (
        found.first.isoformat()
        if found.first == found.last
        else f"{found.first.isoformat()} to {found.last.isoformat()}"
    )
    mail.queue(
        schedule.email,
        "report",
        f"{found.site.display_name}: {schedule.frequency} report, {span}",
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        digest=found,
        span=span,
        schedule=schedule,
        when=describe(schedule),
        unsubscribe_url=unsubscribe,
        change=_change,
        number=_number,
    )


def _number(value: float, kind: str = "count") -> str:
    if kind == "percent":
        return f"{value:.1f} %"
    if kind == "duration":
        minutes, seconds = divmod(round(value), 60)
        return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
    return f"{round(value):,}"


def _change(totals: Aggregate, name: str) -> str:
    change = totals.change(name)
    if change is None:
        return "—"
    unit = " points" if name == "bounce_rate" else " %"
    return f"{change:+.1f}{unit}"
