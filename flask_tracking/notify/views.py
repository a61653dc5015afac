"""A site's Email reports and Alerts pages (editors), and the links in the emails: confirm a
report sent to an outside address, unsubscribe in one click (RFC 8058) without logging in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import select

from flask_tracking.extensions import csrf, db
from flask_tracking.notify import alerts, channels, reports
from flask_tracking.notify.forms import ChannelForm, RuleForm, ScheduleForm
from flask_tracking.notify.models import AlertChannel, AlertRule, ReportSchedule
from flask_tracking.tracking import access
from flask_tracking.tracking.models import Site
from flask_tracking.users.forms import ConfirmForm

notify = Blueprint("notify", __name__)


_site = access.site_or_abort  # 404 without a role, 403 when too low


def _page(site: Site, form: ScheduleForm, status: int = 200) -> Any:
    return (
        render_template(
            "notify/reports.html",
            site=site,
            form=form,
            schedules=reports.schedules_of(site),
            describe=reports.describe,
            confirm=ConfirmForm(),
        ),
        status,
    )


@notify.route("/sites/<id:site_id>/reports", methods=["GET", "POST"])
@login_required
def reports_page(site_id: int) -> Any:
    """The site's scheduled email reports; schedule one (POST)."""
    site = _site(site_id)
    form = ScheduleForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return _page(site, form, 400)
        try:
            schedule = reports.add_schedule(
                site,
                form.email.data or "",
                form.frequency.data or "",
                int(form.weekday.data or 0),
                int(form.hour.data or 0),
            )
        except reports.ScheduleError as error:
            form.email.errors = [str(error)]
            return _page(site, form, 400)
        if schedule.confirmed_at is None:
            flash(f"We sent {schedule.email} a link to confirm; reports start after it.", "info")
        else:
            flash(f"{schedule.email} gets the report {reports.describe(schedule)}.", "success")
        return redirect(url_for(".reports_page", site_id=site.id))
    return _page(site, ScheduleForm(formdata=None))


@notify.route("/sites/<id:site_id>/reports/<id:schedule_id>/remove", methods=["POST"])
@login_required
def remove_schedule(site_id: int, schedule_id: int) -> Any:
    site = _site(site_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    schedule = db.session.scalar(
        select(ReportSchedule).where(
            ReportSchedule.id == schedule_id, ReportSchedule.site_id == site.id
        )
    )
    if schedule is None:
        abort(404)
    db.session.delete(schedule)
    db.session.commit()
    flash(f"{schedule.email} no longer gets the {schedule.frequency} report.", "info")
    return redirect(url_for(".reports_page", site_id=site.id))


@notify.route("/reports/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str) -> Any:
    """Start a report to an outside address: a GET shows a button (mail scanners follow
    links), the POST confirms."""
    schedule = reports.find_by_token(token)
    if schedule is None:
        return render_template("users/link_invalid.html", what="report confirmation"), 400
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        schedule.confirmed_at = schedule.confirmed_at or datetime.now(UTC)
        db.session.commit()
        return render_template("notify/confirmed.html", schedule=schedule, done=True)
    return render_template("notify/confirmed.html", schedule=schedule, done=False, form=form)


@notify.route("/reports/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # RFC 8058: the mail client POSTs "List-Unsubscribe=One-Click", with no token
def unsubscribe(token: str) -> Any:
    """Stop a report from the link in it: a GET asks, a POST (the page's button or a mail
    client's one-click request) does it, without logging in."""
    schedule = reports.find_by_unsubscribe_token(token)
    if schedule is None:  # removed already (a second click), or a link that was never ours
        return render_template("notify/unsubscribed.html", schedule=None)
    if request.method == "POST":
        email, site_name = schedule.email, schedule.site.display_name
        db.session.delete(schedule)
        db.session.commit()
        return render_template(
            "notify/unsubscribed.html", schedule=None, email=email, site_name=site_name
        )
    return render_template("notify/unsubscribed.html", schedule=schedule)


def _channel_form(*, posted: bool) -> ChannelForm:
    # Prefixed: two forms share the page, and their fields' ids must differ.
    return ChannelForm(prefix="channel") if posted else ChannelForm(formdata=None, prefix="channel")


def _rule_form(site: Site, *, posted: bool) -> RuleForm:
    form = RuleForm(prefix="rule") if posted else RuleForm(formdata=None, prefix="rule")
    form.goal.choices = [(g.name, g.name) for g in site.definitions]
    form.experiment.choices = [(e.key, e.name) for e in site.experiments]
    form.channels.choices = [(c.id, f"{c.name} ({c.kind})") for c in alerts.channels_of(site)]
    return form


def _alerts_page(site: Site, rule: RuleForm, channel: ChannelForm, status: int = 200) -> Any:
    return (
        render_template(
            "notify/alerts.html",
            site=site,
            rule_form=rule,
            channel_form=channel,
            rules=alerts.rules_of(site),
            channels=alerts.channels_of(site),
            deliveries=alerts.deliveries_of(site),
            describe=alerts.describe,
            kinds=channels.KINDS,
            confirm=ConfirmForm(),
        ),
        status,
    )


@notify.route("/sites/<id:site_id>/alerts", methods=["GET", "POST"])
@login_required
def alerts_page(site_id: int) -> Any:
    """The site's alert rules, channels and deliveries; add a rule (POST)."""
    site = _site(site_id)
    if request.method == "GET":
        return _alerts_page(site, _rule_form(site, posted=False), _channel_form(posted=False))
    form = _rule_form(site, posted=True)
    if not form.validate_on_submit():
        return _alerts_page(site, form, _channel_form(posted=False), 400)
    kind = form.kind.data or ""
    try:
        rule = alerts.add_rule(
            site,
            kind,
            threshold=float(form.threshold.data or 0),
            hours=form.hours.data or 1,
            subject=(form.goal.data if kind == "goal" else form.experiment.data) or "",
            below=bool(form.below.data),
            consecutive=form.consecutive.data or 1,
            quiet_minutes=form.quiet_minutes.data or 0,
            channel_ids=list(form.channels.data or []),
        )
    except alerts.RuleError as error:
        form.kind.errors = [str(error)]
        return _alerts_page(site, form, _channel_form(posted=False), 400)
    flash(f"Alert added: {alerts.describe(rule)}.", "success")
    return redirect(url_for(".alerts_page", site_id=site.id))


@notify.route("/sites/<id:site_id>/alerts/channels", methods=["POST"])
@login_required
def add_channel(site_id: int) -> Any:
    """Add a channel alerts can be sent to."""
    site = _site(site_id)
    form = _channel_form(posted=True)
    if not form.validate_on_submit():
        return _alerts_page(site, _rule_form(site, posted=False), form, 400)
    try:
        channel = alerts.add_channel(
            site, form.kind.data or "", form.name.data or "", form.target.data or ""
        )
    except alerts.RuleError as error:
        form.target.errors = [str(error)]
        return _alerts_page(site, _rule_form(site, posted=False), form, 400)
    flash(f"Channel “{channel.name}” added; send it a test to see it arrive.", "success")
    return redirect(url_for(".alerts_page", site_id=site.id))


def _channel(site: Site, channel_id: int) -> AlertChannel:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    channel: AlertChannel | None = db.session.scalar(
        select(AlertChannel).where(AlertChannel.id == channel_id, AlertChannel.site_id == site.id)
    )
    if channel is None:
        abort(404)
    return channel


@notify.route("/sites/<id:site_id>/alerts/channels/<id:channel_id>/test", methods=["POST"])
@login_required
def test_channel(site_id: int, channel_id: int) -> Any:
    """Send a test message through a channel now; the delivery is recorded below."""
    site = _site(site_id)
    channel = _channel(site, channel_id)
    delivery = alerts.send_test(channel, site)
    if delivery.status == "sent":
        flash(f"Test sent to “{channel.name}”.", "success")
    else:
        flash(
            f"The test to “{channel.name}” failed ({delivery.last_error}); it is retried.", "error"
        )
    return redirect(url_for(".alerts_page", site_id=site.id))


@notify.route("/sites/<id:site_id>/alerts/channels/<id:channel_id>/remove", methods=["POST"])
@login_required
def remove_channel(site_id: int, channel_id: int) -> Any:
    site = _site(site_id)
    channel = _channel(site, channel_id)
    db.session.delete(channel)
    db.session.commit()
    flash(f"Channel “{channel.name}” removed.", "info")
    return redirect(url_for(".alerts_page", site_id=site.id))


@notify.route("/sites/<id:site_id>/alerts/<id:rule_id>/remove", methods=["POST"])
@login_required
def remove_rule(site_id: int, rule_id: int) -> Any:
    site = _site(site_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    rule = db.session.scalar(
        select(AlertRule).where(AlertRule.id == rule_id, AlertRule.site_id == site.id)
    )
    if rule is None:
        abort(404)
    db.session.delete(rule)
    db.session.commit()
    flash(f"Alert removed: {alerts.describe(rule)}.", "info")
    return redirect(url_for(".alerts_page", site_id=site.id))
