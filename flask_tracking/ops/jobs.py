"""Scheduled work, in one place: what runs, how often, and where.

Every job runs in the process that owns the event store — the writer of `flask-tracking
serve` (or of `flask-tracking writer`), which calls `Schedule.run_due()` after each pass over
the spool — or once, on demand, with `flask-tracking jobs run` (for cron, when no server runs;
while one runs, it runs them itself and the command says so).

    salts       every pass          delete visitor-hash salts older than yesterday
    rollups     ROLLUP_INTERVAL     close finished days; refresh today's sessions and rollups
    retention   RETENTION_INTERVAL  delete events and sessions past each site's retention
    erasures    ROLLUP_INTERVAL     erase the visitors' data that admins asked to erase
    imports     ROLLUP_INTERVAL     import uploaded files; delete row-level imports
    reports     REPORTS_INTERVAL    queue the scheduled email reports that are due
    alerts      ALERTS_INTERVAL     read the alert rules; queue what fired or recovered
    deliveries  MAIL_INTERVAL       send alert deliveries that are due, retry with backoff
    mail        MAIL_INTERVAL       send queued email, retry failures with backoff
    audit       RETENTION_INTERVAL  delete account security-log events past AUDIT_LOG_DAYS
    billing     BILLING_INTERVAL    quotas, ended trials and subscriptions, purges (billing on)

A job returns what it did, and whether it has more to do at once (the retention purge works in
bounded batches: it comes back at the next pass until nothing old is left).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from flask_tracking.extensions import db
from flask_tracking.tracking.models import Site

if TYPE_CHECKING:
    from flask_tracking.ingest.writer import Writer

logger = logging.getLogger("flask_tracking.jobs")
RETRY_SECONDS = 60.0  # a failed job (the database away, say) is tried again after this at most


@dataclass(frozen=True)
class Outcome:
    summary: str
    again: bool = False  # more to do: run at the next pass rather than after the interval


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    interval_key: str | None  # the config key of its seconds between runs; None: every pass
    run: Callable[[Writer, bool], Outcome]  # (the writer, whether asked for now)


def rotate_salts(writer: Writer, _now: bool) -> Outcome:
    writer.rotate_salts()
    return Outcome("salts older than yesterday deleted")


def refresh_rollups(writer: Writer, now: bool) -> Outcome:
    # On schedule, derive's own clock decides (the drain may have just refreshed).
    writer.derive(force=now, quiet=False)
    return Outcome("finished days closed, today's sessions and rollups refreshed")


def purge_expired(writer: Writer, _now: bool) -> Outcome:
    """Delete, site by site, the events and sessions older than the site's retention (its own
    or RETENTION_DAYS, and with billing on at most its plan's), one bounded batch of days per
    site and run."""
    config = writer.app.config
    default = int(config["RETENTION_DAYS"])
    keep_rollups = bool(config["RETENTION_KEEP_ROLLUPS"])
    batch_days = max(1, int(config["RETENTION_BATCH_DAYS"]))
    sites = db.session.execute(
        select(Site.id, Site.retention_days, Site.owner_id).order_by(Site.id)
    ).all()
    plan_days = _plan_retention({owner for _site, _own, owner in sites}, config)
    db.session.remove()
    now_ms = int(time.time() * 1000)
    store = writer.store
    deleted = purged_sites = 0
    again = False
    for site_id, own, owner in sites:
        limits = [days for days in (own or default, plan_days.get(owner, 0)) if days > 0]
        if not limits:
            continue
        days = min(limits)
        before = writer.sites.local_day(site_id, now_ms) - days
        rows, more = store.purge(  # type: ignore[attr-defined]
            site_id, before, keep_rollups=keep_rollups, max_days=batch_days
        )
        if rows:
            deleted += rows
            purged_sites += 1
            logger.info("site %s: deleted %d rows older than %d days", site_id, rows, days)
        again = again or more
    return Outcome(f"{deleted} rows past their retention deleted ({purged_sites} site(s))", again)


def _plan_retention(owners: set[int], config: Any) -> dict[int, int]:
    """With billing on, each account's plan's retention (days): no site keeps data longer."""
    if config.get("BILLING_PROVIDER", "none") == "none":
        return {}
    from flask_tracking.billing.service import plan_of

    return {owner: days for owner in owners if (days := plan_of(owner)[0].retention_days) > 0}


def erase_visitors(writer: Writer, _now: bool) -> Outcome:
    """Carry out the erasure requests (tracking/erasure.py), with the writer's rollups."""
    from flask_tracking.reports import rollups
    from flask_tracking.tracking.erasure import carry_out

    return Outcome(f"{carry_out(writer.store, rollups.build)} erasure request(s) carried out")


def run_imports(writer: Writer, _now: bool) -> Outcome:
    """Import the uploaded files waiting; delete the row-level imports being deleted."""
    from flask_tracking.imports.service import run_pending
    from flask_tracking.reports import rollups

    return Outcome(f"{run_pending(writer.store, rollups.build)} import(s) handled")


def send_mail(_writer: Writer, _now: bool) -> Outcome:
    """Send the queued email that is due (mail/outbox.py)."""
    from flask_tracking.mail import deliver_due

    done = deliver_due()
    return Outcome(
        f"{done.sent} message(s) sent, {done.retrying} to retry, {done.given_up} given up"
    )


def send_reports(_writer: Writer, _now: bool) -> Outcome:
    """Queue the scheduled email reports that are due (notify/reports.py)."""
    from flask_tracking.notify.reports import send_due

    return Outcome(f"{send_due()} scheduled report(s) queued")


def check_alerts(_writer: Writer, _now: bool) -> Outcome:
    """Read every alert rule and queue what fired or recovered (notify/alerts.py)."""
    from flask_tracking.notify.alerts import evaluate

    return Outcome(f"{evaluate()} alert message(s) queued")


def deliver_alerts(_writer: Writer, _now: bool) -> Outcome:
    """Send the alert deliveries that are due (webhooks, Slack, email through the outbox)."""
    from flask_tracking.notify.alerts import deliver_due

    done = deliver_due()
    return Outcome(f"{done.sent} alert(s) sent, {done.retrying} to retry, {done.given_up} given up")


def purge_audit_log(_writer: Writer, _now: bool) -> Outcome:
    """Delete security-log events older than AUDIT_LOG_DAYS (users/audit.py)."""
    from flask_tracking.users import audit

    return Outcome(f"{audit.purge()} security-log event(s) past AUDIT_LOG_DAYS deleted")


def run_billing(writer: Writer, _now: bool) -> Outcome:
    """Each account's standing from its usage and subscription (billing/service.py)."""
    if writer.app.config.get("BILLING_PROVIDER", "none") == "none":
        return Outcome("billing is off")
    from flask_tracking.billing.service import run_job

    summary = run_job(writer.store)
    writer.sites.invalidate()  # the collector's view of who may collect
    return Outcome(summary)


JOBS = (
    Job("salts", "delete visitor-hash salts older than yesterday", None, rotate_salts),
    Job(
        "rollups",
        "close finished days; refresh today's sessions, markers and rollups",
        "ROLLUP_INTERVAL",
        refresh_rollups,
    ),
    Job(
        "retention",
        "delete events and sessions past each site's retention (RETENTION_DAYS by default)",
        "RETENTION_INTERVAL",
        purge_expired,
    ),
    Job(
        "erasures",
        "erase the visitors' data that admins asked to erase; recount their days",
        "ROLLUP_INTERVAL",
        erase_visitors,
    ),
    Job(
        "imports",
        "import the uploaded files waiting; delete the row-level imports being deleted",
        "ROLLUP_INTERVAL",
        run_imports,
    ),
    Job(
        "reports",
        "queue the scheduled email reports that are due, once per recipient and period",
        "REPORTS_INTERVAL",
        send_reports,
    ),
    Job(
        "alerts",
        "read the alert rules; queue what fired or recovered",
        "ALERTS_INTERVAL",
        check_alerts,
    ),
    Job(
        "deliveries",
        "send alert deliveries that are due; retry failures with backoff",
        "MAIL_INTERVAL",
        deliver_alerts,
    ),
    Job("mail", "send queued email; retry failures with backoff", "MAIL_INTERVAL", send_mail),
    Job(
        "audit",
        "delete security-log events older than AUDIT_LOG_DAYS",
        "RETENTION_INTERVAL",
        purge_audit_log,
    ),
    Job(
        "billing",
        "quota states from this month's usage; end trials and subscriptions; purge locked "
        "accounts past their retention (when billing is on)",
        "BILLING_INTERVAL",
        run_billing,
    ),
)


class Schedule:
    """When each job last ran in this process, and running the ones that are due."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self._next: dict[str, float] = {}  # job name -> monotonic time it is due

    def run_due(self, now: float | None = None) -> list[tuple[str, Outcome]]:
        """Run every job whose time has come; a failing job is logged and retried later."""
        now = time.monotonic() if now is None else now
        done = []
        for job in JOBS:
            if self._next.get(job.name, 0.0) > now:
                continue
            interval = float(self.writer.app.config[job.interval_key]) if job.interval_key else 0.0
            try:
                with self.writer.app.app_context():
                    outcome = job.run(self.writer, False)
            except Exception:  # the writer must go on: the job is tried again soon
                retry = min(interval, RETRY_SECONDS)
                logger.exception("job %s failed; it runs again in %.0f s", job.name, retry)
                self._next[job.name] = now + retry
                continue
            self._next[job.name] = now if outcome.again else now + interval
            done.append((job.name, outcome))
        return done

    def run_all(self, only: str | None = None) -> list[tuple[str, Outcome]]:
        """Run each job (or the named one) now, until it has nothing more to do; failures
        raised: `jobs run`. Returns each job's last outcome."""
        done = []
        for job in JOBS:
            if only is None or job.name == only:
                with self.writer.app.app_context():
                    outcome = job.run(self.writer, True)
                    while outcome.again:
                        outcome = job.run(self.writer, True)
                done.append((job.name, outcome))
        return done
