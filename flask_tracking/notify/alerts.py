"""Alerts: rules on a site's traffic, read every ALERTS_INTERVAL by the writer's `alerts` job,
debounced, and delivered to the rule's channels (notify/channels.py) with retries.

A rule reads one value from the event store (the same report layer the dashboard reads):

    spike       visitors of the last 5 minutes >= N
    drop        visitors of the last H hours < N
    change      visitors of the last H hours against the same hours a week before: |±%| >= X
    goal        a goal's conversions in the last H hours >= N (or < N)
    experiment  a running experiment whose primary goal reached significance (the always-valid
                sequential p-value, safe to read every minute) or whose split is off its
                weights (sample-ratio mismatch)

Debounce (step()): a rule fires after K readings over its threshold in a row, says nothing more
while it stays over, sends one "recovered" when a reading clears, and does not fire again
within its quiet period after firing. Each message becomes one delivery per channel, recorded
and retried with backoff (the mail outbox's) until sent or given up after ALERTS_MAX_ATTEMPTS.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from flask_tracking.extensions import db
from flask_tracking.mail.outbox import LEASE, retry_delay
from flask_tracking.notify import channels
from flask_tracking.notify.models import AlertChannel, AlertDelivery, AlertRule
from flask_tracking.reports import stats
from flask_tracking.reports.dimensions import dimension
from flask_tracking.reports.experiments import ALPHA  # on the always-valid sequential p-value
from flask_tracking.reports.ranges import DateRange, as_utc
from flask_tracking.tracking.models import Experiment, Site
from flask_tracking.users.emails import link, off_request

logger = logging.getLogger("flask_tracking.notify")

KINDS = {
    "spike": "Spike — visitors in the last 5 minutes at least N",
    "drop": "Drop — visitors in the last H hours fewer than N",
    "change": "Change — visitors in the last H hours against a week before, by ±X %",
    "goal": "Goal — a goal's conversions in the last H hours",
    "experiment": "Experiment — significant result or sample-ratio mismatch",
}
SPIKE_WINDOW = timedelta(minutes=5)
TOP = 5
HISTORY = 50  # deliveries shown on the page and the API


class RuleError(ValueError):
    """A rule or channel the rules refuse, with the reason to show."""


# -- debounce (pure) ------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    streak: int = 0
    firing: bool = False
    fired_at: datetime | None = None


def step(
    state: State, over: bool, now: datetime, *, consecutive: int, quiet: timedelta
) -> tuple[State, str | None]:
    """The next state after a reading, and the message it sends: "fired", "recovered" or
    None."""
    if not over:
        return State(0, False, state.fired_at), ("recovered" if state.firing else None)
    streak = state.streak + 1
    if state.firing:
        return State(streak, True, state.fired_at), None
    rested = state.fired_at is None or now >= state.fired_at + quiet
    if streak >= consecutive and rested:
        return State(streak, True, now), "fired"
    return State(streak, False, state.fired_at), None


# -- rules ----------------------------------------------------------------------------------


def rules_of(site: Site) -> list[AlertRule]:
    return list(
        db.session.scalars(
            select(AlertRule).where(AlertRule.site_id == site.id).order_by(AlertRule.id)
        )
    )


def channels_of(site: Site) -> list[AlertChannel]:
    return list(
        db.session.scalars(
            select(AlertChannel).where(AlertChannel.site_id == site.id).order_by(AlertChannel.id)
        )
    )


def deliveries_of(site: Site, limit: int = HISTORY) -> list[AlertDelivery]:
    return list(
        db.session.scalars(
            select(AlertDelivery)
            .where(AlertDelivery.site_id == site.id)
            .order_by(AlertDelivery.id.desc())
            .limit(limit)
        )
    )


def describe(rule: AlertRule) -> str:
    n = f"{rule.threshold:g}"
    hours = "the last hour" if rule.hours == 1 else f"the last {rule.hours} hours"
    if rule.kind == "spike":
        return f"at least {n} visitors in the last 5 minutes"
    if rule.kind == "drop":
        return f"fewer than {n} visitors in {hours}"
    if rule.kind == "change":
        return f"visitors in {hours} changed by {n} % or more against a week before"
    if rule.kind == "goal":
        side = "fewer than" if rule.below else "at least"
        return f"{side} {n} conversions of “{rule.subject}” in {hours}"
    return f"experiment “{rule.subject}” reaches significance or shows a sample-ratio mismatch"


def add_channel(site: Site, kind: str, name: str, target: str) -> AlertChannel:
    try:
        target = channels.check_target(kind, target)
    except channels.TargetRefused as error:
        raise RuleError(str(error)) from None
    channel = AlertChannel(
        site_id=site.id,
        kind=kind,
        name=(name.strip() or channels.KINDS[kind])[:80],
        target=target,
        secret=channels.new_secret() if kind == "webhook" else "",
    )
    db.session.add(channel)
    db.session.commit()
    return channel


def add_rule(
    site: Site,
    kind: str,
    *,
    threshold: float = 0.0,
    hours: int = 1,
    subject: str = "",
    below: bool = False,
    consecutive: int = 2,
    quiet_minutes: int = 60,
    channel_ids: list[int] | tuple[int, ...] = (),
) -> AlertRule:
    """Add a rule, checked: its goal or experiment exists, its channels are the site's."""
    if kind not in KINDS:
        raise RuleError(f"Choose one of {', '.join(KINDS)}.")
    if not 1 <= hours <= 168 or not 1 <= consecutive <= 60 or not 0 <= quiet_minutes <= 10080:
        raise RuleError("Hours are 1 to 168, readings 1 to 60, quiet minutes 0 to 10,080.")
    if not 0 <= threshold <= 1e9:  # NaN fails it too
        raise RuleError("The threshold is a number from 0 up.")
    subject = subject.strip()
    if kind == "goal" and subject not in {goal.name for goal in site.definitions}:
        raise RuleError("Choose one of the site's goals.")
    if kind == "experiment" and _experiment(site, subject) is None:
        raise RuleError("Choose one of the site's experiments.")
    if kind not in ("goal", "experiment"):
        subject = ""
    mine = {channel.id: channel for channel in channels_of(site)}
    if not channel_ids or any(i not in mine for i in channel_ids):
        raise RuleError("Choose at least one of the site's channels.")
    rule = AlertRule(
        site_id=site.id,
        kind=kind,
        threshold=float(threshold),
        hours=hours,
        subject=subject,
        below=below and kind == "goal",
        consecutive=consecutive,
        quiet_minutes=quiet_minutes,
        channels=[mine[i] for i in dict.fromkeys(channel_ids)],
    )
    db.session.add(rule)
    db.session.commit()
    return rule


def _experiment(site: Site, key: str) -> Experiment | None:
    found: Experiment | None = db.session.scalar(
        select(Experiment).where(Experiment.site_id == site.id, Experiment.key == key)
    )
    return found


# -- readings -------------------------------------------------------------------------------


@dataclass
class Reading:
    value: float | None  # None: nothing to judge (no baseline, experiment not running)
    over: bool
    fields: list[tuple[str, str]] = field(default_factory=list)
    top: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _report(site: Site, start: datetime, end: datetime) -> stats.Report:
    period = DateRange(start, end, "alert window", "hour")
    return stats.Report(stats.ReportQuery(site.id, site.timezone, period, (), site.definitions))


def _visitors(site: Site, start: datetime, end: datetime) -> int:
    return _report(site, start, end).aggregate(compare=False).current.visitors


def read(rule: AlertRule, now: datetime) -> Reading:
    """The rule's value now, and whether it is over its threshold."""
    site, n = rule.site, rule.threshold
    window = timedelta(hours=rule.hours)
    if rule.kind == "spike":
        visitors = stats.realtime(site.id, now)
        report = _report(site, now - SPIKE_WINDOW, now)
        top = {
            heading: [
                {"value": row.label or row.value, "visitors": row.visitors}
                for row in report.breakdown(dimension(name), limit=TOP).rows
            ]
            for heading, name in (("Top sources", "source"), ("Top pages", "page"))
        }
        return Reading(visitors, visitors >= n, top=top)
    if rule.kind == "drop":
        visitors = _visitors(site, now - window, now)
        return Reading(visitors, visitors < n)
    if rule.kind == "change":
        current = _visitors(site, now - window, now)
        week = timedelta(days=7)
        before = _visitors(site, now - week - window, now - week)
        fields = [("A week before", f"{before:,}"), ("Now", f"{current:,}")]
        if before == 0:
            return Reading(None, False, fields)
        change = 100.0 * (current - before) / before
        return Reading(round(change, 1), abs(change) >= n, fields)
    if rule.kind == "goal":
        results = _report(site, now - window, now).goals(compare=False)
        found = next((r for r in results if r.goal.name == rule.subject), None)
        conversions = found.current.conversions if found else 0
        return Reading(conversions, conversions < n if rule.below else conversions >= n)
    return _read_experiment(site, rule.subject, now)


def _read_experiment(site: Site, key: str, now: datetime) -> Reading:
    row = _experiment(site, key)
    if row is None or row.status != "running":
        return Reading(None, False)
    result = stats.experiment_results(site.id, row.definition, now=now)
    fields = [(f"Visitors in {name}", f"{count:,}") for name, count in result.exposed.items()]
    primary = row.definition.goals[0].name if row.definition.goals else None
    significant = [
        o
        for o in result.outcomes
        if o.goal.name == primary
        and o.comparison.sequential_p_value is not None
        and o.comparison.sequential_p_value < ALPHA
    ]
    for outcome in significant:
        fields.append(
            (
                f"{outcome.variant} on {outcome.goal.name}",
                f"{outcome.comparison.difference * 100:+.2f} points "
                f"(sequential p = {outcome.comparison.sequential_p_value:.4f})",
            )
        )
    if result.sample_ratio_mismatch:
        fields.append(("Sample-ratio mismatch", f"p = {result.sample_ratio_p:.2g}"))
    ps = [o.comparison.sequential_p_value for o in significant]
    value = min((p for p in ps if p is not None), default=result.sample_ratio_p)
    return Reading(value, bool(significant) or result.sample_ratio_mismatch, fields)


# -- messages -------------------------------------------------------------------------------


def message(rule: AlertRule, event: str, reading: Reading, now: datetime) -> dict[str, Any]:
    site = rule.site
    value = "—" if reading.value is None else f"{reading.value:g}"
    said = describe(rule)
    if event == "fired":
        title = f"{site.display_name}: {said}"
        text = f"Alert on {site.display_name}: {said} (now {value})."
    else:
        title = f"{site.display_name}: recovered — {said}"
        text = f"Recovered on {site.display_name}: no longer {said} (now {value})."
    fields = [("Value", value), ("Threshold", f"{rule.threshold:g}"), *reading.fields]
    return {
        "event": event,
        "site": {"id": site.id, "name": site.display_name},
        "rule": {"id": rule.id, "kind": rule.kind, "description": said},
        "title": title,
        "text": text,
        "value": reading.value,
        "threshold": rule.threshold,
        "fields": fields,
        "top": reading.top,
        "url": link("dashboard.show", site_id=site.id, period="day"),
        "at": now.isoformat(),
    }


def test_message(channel: AlertChannel, site: Site, now: datetime) -> dict[str, Any]:
    return {
        "event": "test",
        "site": {"id": site.id, "name": site.display_name},
        "rule": None,
        "title": f"{site.display_name}: a test of the channel “{channel.name}”",
        "text": "This is a test from Flask-Tracking: alerts of this site will arrive like this.",
        "value": None,
        "threshold": None,
        "fields": [],
        "top": {},
        "url": link("notify.alerts_page", site_id=site.id),
        "at": now.isoformat(),
    }


def _record(
    site_id: int, channel: AlertChannel, rule_id: int | None, body: dict[str, Any], now: datetime
) -> Any:
    delivery = AlertDelivery(
        next_attempt_at=now,
        created_at=now,
        site_id=site_id,
        channel_id=channel.id,
        rule_id=rule_id,
        event=body["event"],
        payload=json.dumps(body),
    )
    db.session.add(delivery)
    return delivery


# -- the job --------------------------------------------------------------------------------


def evaluate(now: datetime | None = None) -> int:
    """Read every rule, step its debounce, queue what fires or recovers; return how many
    messages were queued."""
    now = now or datetime.now(UTC)
    queued = 0
    with off_request():
        for rule_id in db.session.scalars(select(AlertRule.id).order_by(AlertRule.id)).all():
            rule = db.session.get(AlertRule, rule_id)
            if rule is None:
                continue
            try:
                reading = read(rule, now)
            except Exception:  # one site's store away must not stop the others
                db.session.rollback()
                logger.exception("alert %s could not be read", rule_id)
                continue
            state = State(rule.streak, rule.firing, rule.fired_at and as_utc(rule.fired_at))
            state, event = step(
                state,
                reading.over,
                now,
                consecutive=rule.consecutive,
                quiet=timedelta(minutes=rule.quiet_minutes),
            )
            rule.streak, rule.firing, rule.fired_at = state.streak, state.firing, state.fired_at
            rule.last_value, rule.checked_at = reading.value, now
            if event:
                body = message(rule, event, reading, now)
                for channel in rule.channels:
                    _record(rule.site_id, channel, rule.id, body, now)
                    queued += 1
            db.session.commit()
    return queued


@dataclass
class Sent:
    sent: int = 0
    retrying: int = 0
    given_up: int = 0


def deliver_due(now: datetime | None = None) -> Sent:
    """Send the deliveries that are due; a failure is retried with backoff."""
    now = now or datetime.now(UTC)
    due = db.session.scalars(
        select(AlertDelivery.id)
        .where(AlertDelivery.status == "pending", AlertDelivery.next_attempt_at <= now)
        .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id)
        .limit(50)
    ).all()
    done = Sent()
    with off_request():
        for delivery_id in due:
            if not _claim(delivery_id, now):
                continue
            outcome = attempt(db.session.get(AlertDelivery, delivery_id), now)  # type: ignore[arg-type]
            setattr(done, outcome, getattr(done, outcome) + 1)
    return done


def _claim(delivery_id: int, now: datetime) -> bool:
    result = db.session.execute(
        update(AlertDelivery)
        .where(
            AlertDelivery.id == delivery_id,
            AlertDelivery.status == "pending",
            AlertDelivery.next_attempt_at <= now,
        )
        .values(next_attempt_at=now + LEASE)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def attempt(delivery: AlertDelivery, now: datetime) -> str:
    """Try one delivery now: "sent", "retrying" or "given_up"."""
    delivery.attempts += 1
    try:
        channels.deliver(delivery.channel, json.loads(delivery.payload))
    except (channels.DeliveryFailed, channels.TargetRefused) as error:
        db.session.rollback()  # an email queued in the outbox goes with it (never half)
        delivery = db.session.get(AlertDelivery, delivery.id)  # type: ignore[assignment]
        delivery.attempts += 1
        delivery.last_error = str(error)[:500]
        if delivery.attempts >= int(current_app.config["ALERTS_MAX_ATTEMPTS"]):
            delivery.status = "failed"
            logger.error("alert delivery %s given up: %s", delivery.id, delivery.last_error)
            outcome = "given_up"
        else:
            delivery.next_attempt_at = now + retry_delay(delivery.attempts)
            outcome = "retrying"
        db.session.commit()
        return outcome
    delivery.status, delivery.sent_at, delivery.last_error = "sent", now, ""
    db.session.commit()
    return "sent"


def send_test(channel: AlertChannel, site: Site, now: datetime | None = None) -> AlertDelivery:
    """Send a test message through a channel at once (the page's "send test" button); a
    failure is recorded and retried like any delivery."""
    now = now or datetime.now(UTC)
    delivery: AlertDelivery = _record(site.id, channel, None, test_message(channel, site, now), now)
    delivery.next_attempt_at = now + LEASE  # this request sends it
    db.session.commit()
    attempt(delivery, now)
    return delivery
