"""Alerts end to end: rules read from the real event store (traffic spooled and drained by the
real writer), debounced, delivered to a real HTTP receiver on loopback that checks the
signature, to a Slack-shaped receiver, and by email through the outbox; retries with backoff;
targets on internal networks refused (SSRF); editors manage them, viewers cannot."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_tracking.extensions import db
from flask_tracking.ingest import drain
from flask_tracking.mail.models import OutgoingMail
from flask_tracking.notify import alerts, channels
from flask_tracking.notify.alerts import State, step
from flask_tracking.notify.models import AlertChannel, AlertDelivery, AlertRule
from flask_tracking.reports.goals import make_goal
from flask_tracking.tracking.experiments import Draft, add_experiment, set_status
from flask_tracking.tracking.goals import add_goal
from flask_tracking.tracking.models import Membership, Site
from flask_tracking.users import accounts
from tests.api.conversions.test_experiments import exposure, visitor
from tests.api.helpers import new_site, spool_event
from tests.conftest import PASSWORD
from tests.receiver import Receiver

pytestmark = pytest.mark.integration

OWNER = "owner@example.com"
HOSTILE = '/<img src=x onerror="alert(1)">&'
MINUTE = timedelta(minutes=1)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver().start()
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture
def app(app_factory: Any) -> Flask:
    """Receivers on loopback are allowed here (an operator's own network)."""
    made: Flask = app_factory(
        ALERTS_ALLOW_PRIVATE_TARGETS=True, PUBLIC_URL="https://stats.example.com"
    )
    return made


def site_of(app: Flask) -> int:
    site_id, _key = new_site(app, email=OWNER, name="Shop")
    return site_id


def channel(app: Flask, site_id: int, kind: str, target: str) -> int:
    with app.test_request_context():
        site = db.session.get(Site, site_id)
        assert site is not None
        return alerts.add_channel(site, kind, kind.title(), target).id


def rule(app: Flask, site_id: int, kind: str, channel_ids: list[int], **options: Any) -> int:
    with app.app_context():
        site = db.session.get(Site, site_id)
        assert site is not None
        return alerts.add_rule(site, kind, channel_ids=channel_ids, **options).id


def evaluate(app: Flask, now: datetime) -> int:
    with app.app_context():
        return alerts.evaluate(now)


def deliver(app: Flask, now: datetime) -> alerts.Sent:
    with app.app_context():
        return alerts.deliver_due(now)


def deliveries(app: Flask) -> list[tuple[str, str, int]]:
    with app.app_context():
        rows = db.session.scalars(select(AlertDelivery).order_by(AlertDelivery.id))
        return [(d.event, d.status, d.attempts) for d in rows]


def visitors_at(app: Flask, site_id: int, count: int, at: datetime, path: str = "/") -> None:
    for number in range(count):
        spool_event(app, site_id, visitor(number), at, path, referrer="https://news.example/")
    assert drain(app) == count


# -- debounce ------------------------------------------------------------------------------


def test_debounce_fires_after_k_readings_once_and_recovers_once() -> None:
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    quiet = timedelta(minutes=30)
    state, said = State(), []
    readings = [True, False, True, True, True, True, False, False, True, True, True]
    for minute, over in enumerate(readings):
        state, event = step(state, over, start + minute * MINUTE, consecutive=2, quiet=quiet)
        said.append(event)
    # One reading over is not enough; the second in a row fires; then nothing while it lasts;
    # one "recovered"; crossing again within the quiet period stays quiet.
    assert said == [None, None, None, "fired", None, None, "recovered", None, None, None, None]
    assert state.fired_at == start + 3 * MINUTE and not state.firing
    # After the quiet period, a crossing that lasts fires again.
    later = start + 3 * MINUTE + quiet
    state, event = step(state, True, later, consecutive=2, quiet=quiet)
    assert event == "fired" and state.firing and state.fired_at == later


# -- a spike, delivered to a signed webhook ------------------------------------------------


def test_a_traffic_spike_fires_one_alert_stays_quiet_and_sends_one_recovered(
    app: Flask, receiver: Receiver
) -> None:
    site_id = site_of(app)
    hook = channel(app, site_id, "webhook", receiver.url)
    rule(app, site_id, "spike", [hook], threshold=5, consecutive=2, quiet_minutes=30)
    now = datetime.now(UTC).replace(microsecond=0)
    assert evaluate(app, now) == 0  # no traffic
    visitors_at(app, site_id, 8, now - MINUTE, path=HOSTILE)  # the spike: 8 visitors
    assert evaluate(app, now) == 0  # over once: not yet
    assert evaluate(app, now + MINUTE) == 1  # over twice in a row: fires
    for minute in (2, 3):  # still over: quiet
        assert evaluate(app, now + minute * MINUTE) == 0
    assert deliver(app, now + 3 * MINUTE).sent == 1
    assert evaluate(app, now + 10 * MINUTE) == 1  # the minute is over: recovered
    assert evaluate(app, now + 11 * MINUTE) == 0
    assert deliver(app, now + 11 * MINUTE).sent == 1
    assert deliveries(app) == [("fired", "sent", 1), ("recovered", "sent", 1)]

    with app.app_context():
        secret = db.session.get(AlertChannel, hook).secret  # type: ignore[union-attr]
    fired, recovered = [json.loads(r.body) for r in receiver.received]
    for received in receiver.received:
        header = received.headers[channels.SIGNATURE_HEADER]
        assert channels.verify(secret, received.body, header)
        assert not channels.verify("whsec_wrong", received.body, header)
        assert not channels.verify(secret, received.body + b" ", header)
        assert received.headers["Content-Type"] == "application/json"
    assert fired["event"] == "fired" and fired["value"] == 8 and fired["threshold"] == 5
    assert fired["title"] == "Shop: at least 5 visitors in the last 5 minutes"
    assert fired["top"]["Top pages"] == [{"value": HOSTILE, "visitors": 8}]
    assert fired["top"]["Top sources"][0]["value"] == "news.example"
    assert fired["url"].startswith("https://stats.example.com/sites/")
    assert recovered["event"] == "recovered" and recovered["value"] == 0


def test_a_signature_is_refused_when_old_and_accepted_with_a_rotated_secret() -> None:
    body = b'{"event":"test"}'
    header = channels.sign("whsec_a", body, at=1_000_000)
    assert channels.verify("whsec_a", body, header, now=1_000_100)
    assert not channels.verify("whsec_a", body, header, now=1_000_000 + 301)  # a replay
    both = header + "," + channels.sign("whsec_b", body, at=1_000_000).split(",")[1]
    assert channels.verify("whsec_b", body, both, now=1_000_000)
    assert not channels.verify("whsec_a", body, "v1=abc", now=1_000_000)


def test_a_receiver_that_fails_twice_gets_the_message_once_after_retries(
    app: Flask, receiver: Receiver
) -> None:
    receiver.statuses = [500, 500]
    site_id = site_of(app)
    hook = channel(app, site_id, "webhook", receiver.url)
    now = datetime.now(UTC)
    with app.test_request_context():
        sent = alerts.send_test(db.session.get(AlertChannel, hook), db.session.get(Site, site_id))  # type: ignore[arg-type]
        assert (sent.status, sent.attempts) == ("pending", 1)
        assert sent.last_error == "the receiver answered 500"
    assert deliver(app, now + 10 * MINUTE).retrying == 1  # the backoff: 30 s, then 1 min
    assert deliveries(app) == [("test", "pending", 2)]
    assert deliver(app, now + 10 * MINUTE + timedelta(seconds=30)).sent == 0  # not due yet
    assert deliver(app, now + 20 * MINUTE).sent == 1
    assert deliver(app, now + 60 * MINUTE) == alerts.Sent()  # nothing more
    assert deliveries(app) == [("test", "sent", 3)]
    assert [r.status for r in receiver.received] == [500, 500, 200]
    assert len(receiver.accepted()) == 1
    assert len({r.body for r in receiver.received}) == 1  # the same message each time


def test_a_delivery_is_given_up_after_the_last_attempt(
    app_factory: Any, receiver: Receiver
) -> None:
    app = app_factory(ALERTS_ALLOW_PRIVATE_TARGETS=True, ALERTS_MAX_ATTEMPTS=2)
    receiver.statuses = [503, 503, 503]
    site_id = site_of(app)
    hook = channel(app, site_id, "webhook", receiver.url)
    with app.test_request_context():
        alerts.send_test(db.session.get(AlertChannel, hook), db.session.get(Site, site_id))  # type: ignore[arg-type]
    assert deliver(app, datetime.now(UTC) + 5 * MINUTE).given_up == 1
    assert deliveries(app) == [("test", "failed", 2)]
    assert len(receiver.received) == 2


# -- SSRF ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "ftp://example.com/hook",
        "http://user:secret@example.com/hook",
        "not a url",
        "http://[::1/",
    ],
)
def test_internal_or_odd_webhook_targets_are_refused(app_factory: Any, target: str) -> None:
    app = app_factory()  # ALERTS_ALLOW_PRIVATE_TARGETS off, as in production
    site_id = site_of(app)
    for kind in ("webhook", "slack"):
        with pytest.raises(alerts.RuleError):
            channel(app, site_id, kind, target)
    with app.app_context():
        assert db.session.scalars(select(AlertChannel)).all() == []


def test_a_target_made_internal_later_is_refused_at_delivery(
    app: Flask, receiver: Receiver
) -> None:
    site_id = site_of(app)
    hook = channel(app, site_id, "webhook", receiver.url)
    app.config["ALERTS_ALLOW_PRIVATE_TARGETS"] = False  # the operator turns it off
    with app.test_request_context():
        sent = alerts.send_test(db.session.get(AlertChannel, hook), db.session.get(Site, site_id))  # type: ignore[arg-type]
        assert sent.status == "pending" and "internal address" in sent.last_error
    assert receiver.received == []


# -- Slack and email -----------------------------------------------------------------------


def test_slack_gets_block_kit_with_strangers_text_escaped(app: Flask, receiver: Receiver) -> None:
    site_id = site_of(app)
    slack = channel(app, site_id, "slack", receiver.url)
    rule(app, site_id, "spike", [slack], threshold=1, consecutive=1)
    now = datetime.now(UTC)
    visitors_at(app, site_id, 2, now - MINUTE, path=HOSTILE)
    assert evaluate(app, now) == 1
    assert deliver(app, now).sent == 1
    [received] = receiver.received
    assert channels.SIGNATURE_HEADER not in received.headers  # Slack's URL is the secret
    payload = json.loads(received.body)
    assert payload["text"] == "Shop: at least 1 visitors in the last 5 minutes"
    kinds = [block["type"] for block in payload["blocks"]]
    assert kinds[:2] == ["header", "section"] and kinds[-1] == "actions"
    pages = next(b for b in payload["blocks"] if "Top pages" in b.get("text", {}).get("text", ""))
    text = pages["text"]["text"]
    assert '&lt;img src=x onerror="alert(1)"&gt;&amp;' in text and "<img" not in text


def test_email_alerts_go_through_the_outbox_escaped(app: Flask) -> None:
    site_id = site_of(app)
    email = channel(app, site_id, "email", "On-Call@Example.com")
    rule(app, site_id, "spike", [email], threshold=2, consecutive=1)
    now = datetime.now(UTC)
    visitors_at(app, site_id, 3, now - MINUTE, path=HOSTILE)
    assert evaluate(app, now) == 1
    assert deliver(app, now).sent == 1
    with app.app_context():
        [mail] = db.session.scalars(select(OutgoingMail)).all()
        assert (mail.kind, mail.to_address) == ("alert", "On-Call@example.com")
        assert mail.subject == "Shop: at least 2 visitors in the last 5 minutes"
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;&amp;" in mail.html_body
        assert "<img src=x" not in mail.html_body
        assert HOSTILE in mail.text_body and "Value: 3" in mail.text_body


# -- the other rules -----------------------------------------------------------------------


def test_drop_change_and_goal_rules_read_the_store(app: Flask) -> None:
    site_id = site_of(app)
    email = channel(app, site_id, "email", "oncall@example.com")
    now = datetime.now(UTC).replace(microsecond=0)
    with app.app_context():
        site = db.session.get(Site, site_id)
        add_goal(site, make_goal("Pricing", "page", path="/pricing"))
    visitors_at(app, site_id, 2, now - timedelta(days=7, minutes=30))  # a week before: 2
    visitors_at(app, site_id, 5, now - 30 * MINUTE, path="/pricing")  # now: 5
    drop = rule(app, site_id, "drop", [email], threshold=10, hours=1, consecutive=1)
    calm = rule(app, site_id, "drop", [email], threshold=5, hours=1, consecutive=1)
    change = rule(app, site_id, "change", [email], threshold=100, hours=1, consecutive=1)
    bigger = rule(app, site_id, "change", [email], threshold=200, hours=1, consecutive=1)
    goal = rule(app, site_id, "goal", [email], threshold=5, subject="Pricing", consecutive=1)
    few = rule(app, site_id, "goal", [email], threshold=3, subject="Pricing", below=True)
    assert evaluate(app, now) == 3
    with app.app_context():
        state = {r.id: (r.firing, r.last_value) for r in db.session.scalars(select(AlertRule))}
    assert state[drop] == (True, 5)  # 5 < 10
    assert state[calm] == (False, 5)  # 5 is not < 5
    assert state[change] == (True, 150.0)  # +150 % against 2
    assert state[bigger] == (False, 150.0)
    assert state[goal] == (True, 5)
    assert state[few] == (False, 5)


def test_an_experiment_rule_fires_on_a_sample_ratio_mismatch(app: Flask) -> None:
    site_id = site_of(app)
    email = channel(app, site_id, "email", "oncall@example.com")
    now = datetime.now(UTC).replace(microsecond=0)
    with app.app_context():
        site = db.session.get(Site, site_id)
        signup = add_goal(site, make_goal("Signup", "event", event="Signup"))
        row = add_experiment(site, Draft("pricing", "Pricing", [("A", 1), ("B", 1)], [signup.id]))
        set_status(row, "running", now - timedelta(hours=1))
    for number in range(60):  # a 50/50 split seen as 55/5
        variant = "A" if number < 55 else "B"
        spool_event(
            app, site_id, visitor(number), now - 10 * MINUTE, "/", **exposure("pricing", variant)
        )
    drain(app)
    watch = rule(app, site_id, "experiment", [email], subject="pricing", consecutive=1)
    assert evaluate(app, now) == 1
    with app.app_context():
        fired = db.session.get(AlertRule, watch)
        assert fired is not None and fired.firing and fired.last_value is not None
        assert fired.last_value < 0.001
        [delivery] = db.session.scalars(select(AlertDelivery)).all()
        assert "Sample-ratio mismatch" in delivery.payload
    for kind in ("experiment", "goal"):  # a rule names one of the site's own
        with pytest.raises(alerts.RuleError, match="Choose one of the site's"):
            rule(app, site_id, kind, [email], subject="nope")


# -- the page ------------------------------------------------------------------------------


def login(app: Flask, email: str) -> Any:
    client = app.test_client()
    assert client.post("/login/", data={"email": email, "password": PASSWORD}).status_code == 302
    return client


def test_editors_manage_alerts_on_the_page_and_viewers_cannot(
    app: Flask, receiver: Receiver
) -> None:
    site_id = site_of(app)
    with app.app_context():
        for email, role in (("editor@example.com", "editor"), ("viewer@example.com", "viewer")):
            user = accounts.register(email, PASSWORD, verified=True)
            db.session.add(Membership(site_id=site_id, user_id=user.id, role=role))
        db.session.commit()
    editor = login(app, "editor@example.com")
    base = f"/sites/{site_id}/alerts"
    page = editor.get(base)
    assert page.status_code == 200 and "No channel yet" in page.get_data(as_text=True)
    refused = editor.post(
        base + "/channels",
        data={
            "channel-kind": "webhook",
            "channel-name": "Hook",
            "channel-target": "ftp://example.com/",
        },
    )
    assert refused.status_code == 400 and "http:// or https://" in refused.get_data(as_text=True)
    added = editor.post(
        base + "/channels",
        data={
            "channel-kind": "webhook",
            "channel-name": "<b>Hook</b>",
            "channel-target": receiver.url,
        },
    )
    assert added.status_code == 302
    with app.app_context():
        hook = db.session.scalars(select(AlertChannel)).one()
    page = editor.get(base).get_data(as_text=True)
    assert "&lt;b&gt;Hook&lt;/b&gt;" in page and hook.secret in page
    rule_data = {"rule-kind": "spike", "rule-threshold": "10", "rule-hours": "1",
                 "rule-consecutive": "2", "rule-quiet_minutes": "60"}  # fmt: skip
    no_channel = editor.post(base, data=rule_data)
    assert no_channel.status_code == 400
    made = editor.post(
        base,
        data={**rule_data, "rule-channels": str(hook.id)},
    )
    assert made.status_code == 302
    tested = editor.post(f"{base}/channels/{hook.id}/test", follow_redirects=True)
    text = tested.get_data(as_text=True)
    assert "Test sent to" in text and '<td class="delivery-status">sent</td>' in text
    assert len(receiver.accepted()) == 1
    viewer = login(app, "viewer@example.com")
    assert viewer.get(base).status_code == 403
    assert viewer.post(f"{base}/channels/{hook.id}/test").status_code == 403
    assert len(receiver.received) == 1
    with app.app_context():
        rule_id = db.session.scalars(select(AlertRule.id)).one()
    assert editor.post(f"{base}/{rule_id}/remove").status_code == 302
    assert editor.post(f"{base}/channels/{hook.id}/remove").status_code == 302
    with app.app_context():
        assert db.session.scalars(select(AlertRule)).all() == []
        assert db.session.scalars(select(AlertDelivery)).all() == []  # went with the channel
