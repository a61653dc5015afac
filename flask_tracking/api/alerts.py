"""/sites/{site_id}/alerts: the site's alert rules, channels and deliveries
(notify/alerts.py), as its Alerts page manages them."""

from __future__ import annotations

from sqlalchemy import select
from werkzeug.wrappers import Response

from flask_tracking.api.auth import Call
from flask_tracking.api.errors import ApiError, invalid
from flask_tracking.api.schemas import (
    AlertChannelIn,
    AlertChannelOut,
    AlertDeliveryOut,
    AlertRuleIn,
    AlertRuleOut,
    AlertsOut,
)
from flask_tracking.api.spec import operation
from flask_tracking.extensions import db
from flask_tracking.notify import alerts
from flask_tracking.notify.models import AlertChannel, AlertDelivery, AlertRule
from flask_tracking.tracking.models import Site
from flask_tracking.users.apikeys import READ, READ_WRITE

TAG = "Alerts"


def rule_out(rule: AlertRule) -> AlertRuleOut:
    return AlertRuleOut(
        id=rule.id,
        kind=rule.kind,  # type: ignore[arg-type]
        description=alerts.describe(rule),
        threshold=rule.threshold,
        hours=rule.hours,
        subject=rule.subject,
        below=rule.below,
        consecutive=rule.consecutive,
        quiet_minutes=rule.quiet_minutes,
        channels=[channel.id for channel in rule.channels],
        firing=rule.firing,
        last_value=rule.last_value,
        checked_at=rule.checked_at,
        fired_at=rule.fired_at,
        created_at=rule.created_at,
    )


def channel_out(channel: AlertChannel) -> AlertChannelOut:
    return AlertChannelOut(
        id=channel.id,
        kind=channel.kind,  # type: ignore[arg-type]
        name=channel.name,
        target=channel.target,
        secret=channel.secret,
        created_at=channel.created_at,
    )


def delivery_out(delivery: AlertDelivery) -> AlertDeliveryOut:
    return AlertDeliveryOut(
        id=delivery.id,
        channel_id=delivery.channel_id,
        rule_id=delivery.rule_id,
        event=delivery.event,  # type: ignore[arg-type]
        status=delivery.status,  # type: ignore[arg-type]
        attempts=delivery.attempts,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        sent_at=delivery.sent_at,
    )


def _rule(site: Site, alert_id: int) -> AlertRule:
    rule: AlertRule | None = db.session.scalar(
        select(AlertRule).where(AlertRule.id == alert_id, AlertRule.site_id == site.id)
    )
    if rule is None:
        raise ApiError(404, "not_found", "No such alert.")
    return rule


def _channel(site: Site, channel_id: int) -> AlertChannel:
    channel: AlertChannel | None = db.session.scalar(
        select(AlertChannel).where(AlertChannel.id == channel_id, AlertChannel.site_id == site.id)
    )
    if channel is None:
        raise ApiError(404, "not_found", "No such channel.")
    return channel


@operation(
    "GET",
    "/sites/{site_id}/alerts",
    scope=READ,
    tag=TAG,
    response=AlertsOut,
    summary="List alert rules, channels and deliveries",
)
def list_alerts(call: Call) -> AlertsOut:
    """The site's alert rules with their state, its channels, and the latest deliveries
    (newest first): what was sent where, how many attempts it took, the last error."""
    site = call.own_site()
    return AlertsOut(
        rules=[rule_out(rule) for rule in alerts.rules_of(site)],
        channels=[channel_out(channel) for channel in alerts.channels_of(site)],
        deliveries=[delivery_out(d) for d in alerts.deliveries_of(site)],
    )


@operation(
    "POST",
    "/sites/{site_id}/alerts",
    scope=READ_WRITE,
    tag=TAG,
    body=AlertRuleIn,
    response=AlertRuleOut,
    status=201,
    summary="Add an alert rule",
)
def create_alert(call: Call, body: AlertRuleIn) -> AlertRuleOut:
    """Add a rule that sends to some of the site's channels; a goal rule names one of the
    site's goals, an experiment rule one of its experiments."""
    try:
        rule = alerts.add_rule(
            call.own_site(),
            body.kind,
            threshold=body.threshold,
            hours=body.hours,
            subject=body.subject,
            below=body.below,
            consecutive=body.consecutive,
            quiet_minutes=body.quiet_minutes,
            channel_ids=body.channels,
        )
    except alerts.RuleError as error:
        raise invalid({"kind": str(error)}, str(error)) from None
    return rule_out(rule)


@operation(
    "GET",
    "/sites/{site_id}/alerts/{alert_id}",
    scope=READ,
    tag=TAG,
    response=AlertRuleOut,
    summary="Read an alert rule",
)
def get_alert(call: Call, alert_id: int) -> AlertRuleOut:
    """One alert rule of the site, with its state."""
    return rule_out(_rule(call.own_site(), alert_id))


@operation(
    "DELETE",
    "/sites/{site_id}/alerts/{alert_id}",
    scope=READ_WRITE,
    tag=TAG,
    status=204,
    summary="Remove an alert rule",
)
def delete_alert(call: Call, alert_id: int) -> Response:
    """Remove the rule (its past deliveries stay in the history)."""
    db.session.delete(_rule(call.own_site(), alert_id))
    db.session.commit()
    return Response(status=204)


@operation(
    "POST",
    "/sites/{site_id}/alerts/channels",
    scope=READ_WRITE,
    tag=TAG,
    body=AlertChannelIn,
    response=AlertChannelOut,
    status=201,
    summary="Add an alert channel",
)
def create_alert_channel(call: Call, body: AlertChannelIn) -> AlertChannelOut:
    """Add an email address, a signed webhook or a Slack incoming webhook alerts can go to.
    A webhook gets its signing secret in the answer."""
    try:
        channel = alerts.add_channel(call.own_site(), body.kind, body.name, body.target)
    except alerts.RuleError as error:
        raise invalid({"target": str(error)}, str(error)) from None
    return channel_out(channel)


@operation(
    "DELETE",
    "/sites/{site_id}/alerts/channels/{channel_id}",
    scope=READ_WRITE,
    tag=TAG,
    status=204,
    summary="Remove an alert channel",
)
def delete_alert_channel(call: Call, channel_id: int) -> Response:
    """Remove the channel: rules stop sending to it, and its deliveries go with it."""
    db.session.delete(_channel(call.own_site(), channel_id))
    db.session.commit()
    return Response(status=204)


@operation(
    "POST",
    "/sites/{site_id}/alerts/channels/{channel_id}/test",
    scope=READ_WRITE,
    tag=TAG,
    response=AlertDeliveryOut,
    summary="Send a test through a channel",
)
def test_alert_channel(call: Call, channel_id: int) -> AlertDeliveryOut:
    """Send a test message now and return its delivery: `sent`, or `pending` with the error
    when the receiver did not take it (it is then retried like any delivery)."""
    site = call.own_site()
    return delivery_out(alerts.send_test(_channel(site, channel_id), site))
