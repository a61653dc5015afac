"""An account's standing: its plan, trials, the provider's events, quotas, locks and purges.

Everything that changes a subscription goes through here, whichever provider reported it
(providers.py turns Stripe's webhooks and the local checkout into `ProviderEvent`s):

- **idempotent**: each provider event is recorded (`BillingEvent`, unique per provider and
  id) in the transaction of the change it causes, so the same event again changes nothing;
- **order-independent**: a subscription keeps the provider's time of the state it holds
  (`state_at`), and an older event does not overwrite a newer state;
- **owned**: an event finds its account by the provider's customer id stored when the
  account started its checkout, never by what the event's body claims alone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from flask_tracking.billing import plans_of
from flask_tracking.billing.models import (
    ACTIVE,
    ENDED,
    FULL,
    LOCKED,
    OK,
    OVER,
    PAST_DUE,
    TRIALING,
    WARNED,
    BillingEvent,
    Payment,
    Subscription,
)
from flask_tracking.billing.plans import Plan
from flask_tracking.billing.usage import by_account, month_of
from flask_tracking.database import write_transaction
from flask_tracking.extensions import db
from flask_tracking.tracking.models import Site
from flask_tracking.users import audit
from flask_tracking.users.models import User

if TYPE_CHECKING:
    from flask_tracking.events import EventStore

logger = logging.getLogger("flask_tracking.billing")


class BillingRefused(Exception):
    """What an account asked cannot be done (shown to it as is)."""


# -- the plan an account is on --------------------------------------------------------------


def subscription_of(user_id: int) -> Subscription | None:
    return db.session.scalar(select(Subscription).where(Subscription.user_id == user_id))


def plan_of(user_id: int) -> tuple[Plan, Subscription | None]:
    """The terms an account has: its subscription's (as bought), or the default plan's."""
    subscription = subscription_of(user_id)
    if subscription is not None:
        return Plan.from_terms(subscription.terms), subscription
    plans = plans_of(current_app)
    return plans.plans[plans.default], None


def ensure_subscription(user_id: int) -> Subscription:
    """The account's row, made on the default plan when it has none (in the transaction)."""
    subscription = subscription_of(user_id)
    if subscription is None:
        plans = plans_of(current_app)
        subscription = Subscription(user_id=user_id, status=ACTIVE, provider="", quota_state=OK)
        _put_on(subscription, plans.plans[plans.default], "")
        subscription.customer_id = subscription.subscription_id = ""
        subscription.quota_used = 0
        db.session.add(subscription)
    return subscription


def _put_on(subscription: Subscription, plan: Plan, price: str) -> None:
    subscription.plan = plan.key
    subscription.plan_version = plan.version
    subscription.terms_json = json.dumps(plan.terms())
    subscription.price = price


def may_start_trial(user_id: int, plan: Plan) -> bool:
    """A trial is once per account, on a plan that offers one, before any payment."""
    subscription = subscription_of(user_id)
    if plan.trial_days <= 0:
        return False
    if subscription is None:
        return True
    paid = db.session.scalar(
        select(Payment.id).where(Payment.user_id == user_id, Payment.status == "paid").limit(1)
    )
    return subscription.trial_ends_at is None and paid is None


def start_trial(user: User, plan_key: str, now: datetime | None = None) -> Subscription:
    now = now or datetime.now(UTC)
    plan = plans_of(current_app).get(plan_key)
    if plan is None:
        raise BillingRefused("There is no such plan.")
    if not may_start_trial(user.id, plan):
        raise BillingRefused("This account cannot start a trial of this plan.")
    with write_transaction():
        subscription = ensure_subscription(user.id)
        _put_on(subscription, plan, "")
        subscription.status = TRIALING
        subscription.trial_ends_at = now + timedelta(days=plan.trial_days)
        subscription.locked_at = None
        audit.record(user.id, "billing_trial_started", f"{plan.name}, {plan.trial_days} days")
    return subscription


def site_allowed(user_id: int) -> str | None:
    """Why the account may not add another site (its plan's limit), or None."""
    plan, subscription = plan_of(user_id)
    if subscription is not None and subscription.status == LOCKED:
        return "This account is locked: see Billing."
    owned = len(db.session.scalars(select(Site.id).where(Site.owner_id == user_id)).all())
    if owned >= plan.sites:
        return f"The {plan.name} plan includes {plan.sites} site(s): upgrade to add more."
    return None


def seat_allowed(owner_id: int, email: str, now: datetime | None = None) -> str | None:
    """Why the account may not invite one more person (its plan's seats: the owner and every
    member or pending invitee across its sites), or None."""
    from flask_tracking.tracking.models import Invitation, Membership

    now = now or datetime.now(UTC)
    plan, _subscription = plan_of(owner_id)
    sites = select(Site.id).where(Site.owner_id == owner_id).scalar_subquery()
    members = set(
        db.session.scalars(
            select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.site_id.in_(sites))
        )
    )
    invited = set(
        db.session.scalars(
            select(Invitation.email).where(
                Invitation.site_id.in_(sites),
                Invitation.accepted_at.is_(None),
                Invitation.expires_at > now,
            )
        )
    )
    people = members | invited
    if email in people or len(people) + 1 < plan.seats:
        return None
    return (
        f"The {plan.name} plan includes {plan.seats} seat(s), yours included: "
        "upgrade to invite more."
    )


def api_allowed(user_id: int) -> bool:
    plan, subscription = plan_of(user_id)
    return plan.api_access and not (subscription is not None and subscription.status == LOCKED)


def reports_hidden(owner_id: int) -> bool:
    """Whether the account is over quota on a plan that hides reports until upgrade."""
    subscription = subscription_of(owner_id)
    if subscription is None or subscription.quota_state != OVER:
        return False
    return Plan.from_terms(subscription.terms).over_quota == "hide"


def collector_flags() -> dict[int, str]:
    """Per account that must not collect: "locked", or "drop" over quota (the site cache)."""
    flags: dict[int, str] = {}
    for subscription in db.session.scalars(
        select(Subscription).where(
            (Subscription.status == LOCKED) | (Subscription.quota_state == OVER)
        )
    ):
        if subscription.status == LOCKED:
            flags[subscription.user_id] = "locked"
        elif Plan.from_terms(subscription.terms).over_quota == "drop":
            flags[subscription.user_id] = "drop"
    return flags


# -- provider events --------------------------------------------------------------------------

CHECKOUT, UPDATED, DELETED, PAID, FAILED = (
    "checkout_completed",
    "subscription_updated",
    "subscription_deleted",
    "invoice_paid",
    "invoice_failed",
)
# A provider's subscription statuses, as this app's.
STATUSES = {
    "active": ACTIVE,
    "trialing": ACTIVE,  # a provider-side trial is a paid plan not charged yet
    "past_due": PAST_DUE,
    "unpaid": PAST_DUE,
    "incomplete": PAST_DUE,
    "canceled": ENDED,
    "incomplete_expired": ENDED,
    "paused": ENDED,
}


@dataclass(frozen=True)
class ProviderEvent:
    """What a provider told, in its provider-neutral form."""

    provider: str
    id: str  # the provider's event id: seen once
    kind: str  # one of the kinds above, or the provider's own name for one this app ignores
    created: datetime  # when the provider made it (orders the subscription's states)
    customer: str
    account: int | None = None  # the account the checkout was started for (checkout only)
    subscription: str = ""
    status: str = ""  # the provider's subscription status
    plan: str = ""  # the plan key and price key the subscription charges, when known
    price: str = ""
    period_end: datetime | None = None
    invoice: str = ""
    number: str = ""
    amount: int = 0
    currency: str = ""
    url: str = ""


def apply(event: ProviderEvent) -> str:
    """Apply a provider event once; return what it did (also stored with the event)."""
    try:
        with write_transaction():
            if db.session.scalar(
                select(BillingEvent.id).where(
                    BillingEvent.provider == event.provider, BillingEvent.event_id == event.id
                )
            ):
                return "already handled"
            subscription = (
                db.session.scalar(
                    select(Subscription).where(
                        Subscription.provider == event.provider,
                        Subscription.customer_id == event.customer,
                    )
                )
                if event.customer
                else None
            )
            outcome = _handle(event, subscription)
            db.session.add(
                BillingEvent(
                    provider=event.provider,
                    event_id=event.id,
                    kind=event.kind[:60],
                    subject=(event.subscription or event.invoice)[:255],
                    user_id=subscription.user_id if subscription else None,
                    outcome=outcome[:200],
                )
            )
    except IntegrityError:  # the same event handled at the same moment elsewhere
        db.session.rollback()
        return "already handled"
    logger.info("billing event %s %s (%s): %s", event.provider, event.id, event.kind, outcome)
    return outcome


def _handle(event: ProviderEvent, subscription: Subscription | None) -> str:
    if subscription is None:
        return "no account has this customer: ignored"
    handler = _HANDLERS.get(event.kind)
    return handler(event, subscription) if handler else "not an event billing uses: ignored"


def _checkout(event: ProviderEvent, subscription: Subscription) -> str:
    if event.account != subscription.user_id:
        return "the checkout names another account: ignored"
    subscription.subscription_id = event.subscription or subscription.subscription_id
    return "checkout linked"


def _invoice(event: ProviderEvent, subscription: Subscription) -> str:
    _record_payment(event, subscription)
    if event.kind == FAILED and _newer(event, subscription):
        subscription.status = PAST_DUE
        subscription.state_at = event.created
        return "payment failed: past due"
    return "payment recorded"


def _changed(event: ProviderEvent, subscription: Subscription) -> str:
    if not _newer(event, subscription):
        return "older than the state held: ignored"
    current = subscription.subscription_id
    if event.kind == DELETED and event.subscription and event.subscription != current:
        return "not the account's current subscription: ignored"
    if event.kind == UPDATED and event.subscription and _ended(event):
        return "the subscription has ended: ignored"
    return _subscription_changed(event, subscription)


def _ended(event: ProviderEvent) -> bool:
    """Whether the provider already said this subscription ended (a deletion is final, even
    when a late update carries the same second)."""
    found = db.session.scalar(
        select(BillingEvent.id).where(
            BillingEvent.provider == event.provider,
            BillingEvent.kind == DELETED,
            BillingEvent.subject == event.subscription,
        )
    )
    return found is not None


def _newer(event: ProviderEvent, subscription: Subscription) -> bool:
    held = subscription.state_at
    return held is None or event.created >= _aware(held)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _subscription_changed(event: ProviderEvent, subscription: Subscription) -> str:
    subscription.state_at = event.created
    status = ENDED if event.kind == DELETED else STATUSES.get(event.status, PAST_DUE)
    if event.subscription:
        subscription.subscription_id = event.subscription
    subscription.current_period_end = event.period_end
    if status == ENDED:
        subscription.status = ENDED
        return end(subscription)
    plan = plans_of(current_app).get(event.plan)
    if plan is not None and (subscription.plan, subscription.price) != (event.plan, event.price):
        _put_on(subscription, plan, event.price)  # a change of plan: its current version
    subscription.status = status
    subscription.trial_ends_at = None
    subscription.locked_at = subscription.purged_at = None
    return f"now {status} on {subscription.plan} ({subscription.price or 'free'})"


_HANDLERS = {
    CHECKOUT: _checkout,
    PAID: _invoice,
    FAILED: _invoice,
    UPDATED: _changed,
    DELETED: _changed,
}


def _record_payment(event: ProviderEvent, subscription: Subscription) -> None:
    payment = db.session.scalar(
        select(Payment).where(
            Payment.provider == event.provider, Payment.invoice_id == event.invoice
        )
    )
    if payment is None:
        payment = Payment(
            provider=event.provider, invoice_id=event.invoice, created_at=event.created
        )
        db.session.add(payment)
    payment.user_id = subscription.user_id
    payment.number = event.number[:80]
    payment.amount = event.amount
    payment.currency = event.currency.upper()[:3]
    payment.status = "paid" if event.kind == PAID else "failed"
    payment.url = event.url[:2048]


def end(subscription: Subscription, now: datetime | None = None) -> str:
    """A subscription or trial is over: the plan's on_end — down to another plan, or locked."""
    now = now or datetime.now(UTC)
    plan = Plan.from_terms(subscription.terms)
    subscription.subscription_id = ""
    subscription.current_period_end = None
    if plan.on_end.startswith("downgrade:"):
        target = plans_of(current_app).get(plan.on_end.removeprefix("downgrade:"))
        if target is not None:
            _put_on(subscription, target, "")
            subscription.status = ACTIVE
            subscription.trial_ends_at = subscription.trial_ends_at or now
            return f"ended: down to {target.key}"
    subscription.status = LOCKED
    subscription.locked_at = now
    return "ended: locked"


# -- the operator ---------------------------------------------------------------------------


def change_plan(user: User, plan_key: str, by: User) -> None:
    plan = plans_of(current_app).get(plan_key)
    if plan is None:
        raise BillingRefused("There is no such plan.")
    with write_transaction():
        subscription = ensure_subscription(user.id)
        _put_on(subscription, plan, subscription.price if subscription.plan == plan_key else "")
        subscription.status = ACTIVE
        subscription.locked_at = subscription.purged_at = None
        audit.record(user.id, "billing_plan_changed", f"to {plan.name} by {by.email}")


def extend_trial(user: User, days: int, by: User, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    if not 1 <= days <= 365:
        raise BillingRefused("Extend a trial by 1 to 365 days.")
    with write_transaction():
        subscription = subscription_of(user.id)
        if subscription is None or subscription.status != TRIALING:
            raise BillingRefused("This account is not on a trial.")
        base = max(_aware(subscription.trial_ends_at or now), now)
        subscription.trial_ends_at = base + timedelta(days=days)
        audit.record(user.id, "billing_trial_extended", f"{days} days by {by.email}")


def set_locked(user: User, locked: bool, by: User, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    with write_transaction():
        subscription = ensure_subscription(user.id)
        if locked:
            subscription.status = LOCKED
            subscription.locked_at = now
        else:
            subscription.status = ACTIVE
            subscription.locked_at = subscription.purged_at = None
        kind = "billing_locked" if locked else "billing_unlocked"
        audit.record(user.id, kind, f"by {by.email}")


# -- the writer's `billing` job ------------------------------------------------------------------


def quota_state(used: int, plan: Plan) -> str:
    """Where a month's usage stands against a plan: ok, warned (80 %), full (100 %, within
    the grace margin), over (past the grace margin: the over-quota behaviour applies)."""
    limit = plan.events_per_month
    if used > plan.limit_with_grace or (limit == 0 and used > 0):
        return OVER
    if used >= limit:
        return FULL
    if used * 5 >= limit * 4:
        return WARNED
    return OK


RANK = {OK: 0, WARNED: 1, FULL: 2, OVER: 3}


def run_job(store: EventStore, now: datetime | None = None) -> str:
    """End trials and subscriptions whose time is up, compute every account's quota state
    (telling the owner when it rises), and purge locked accounts past their retention."""
    now = now or datetime.now(UTC)
    used = by_account(month_of(now))
    changed = ended = purged = 0
    with write_transaction():
        held = {s.user_id: s for s in db.session.scalars(select(Subscription))}
        # Accounts with usage but no row yet (on the default plan); usage outlives a deleted
        # account, which has nothing left to bill.
        users = set(db.session.scalars(select(User.id).where(User.id.in_(set(used) - set(held)))))
        for user_id in sorted(set(held) | users):
            subscription = held.get(user_id) or ensure_subscription(user_id)
            if subscription.status == TRIALING and _aware(subscription.trial_ends_at or now) <= now:
                outcome = end(subscription, now)
                audit.record(user_id, "billing_trial_ended", outcome)
                ended += 1
            changed += _update_quota(subscription, used.get(user_id, 0), now)
    for subscription in db.session.scalars(
        select(Subscription).where(Subscription.status == LOCKED, Subscription.purged_at.is_(None))
    ).all():
        keep = timedelta(days=Plan.from_terms(subscription.terms).retention_days)
        if _aware(subscription.locked_at or now) + keep <= now:
            purge_account(store, subscription, now)
            purged += 1
    db.session.remove()
    return f"{changed} quota state(s) changed, {ended} trial(s) ended, {purged} account(s) purged"


def _update_quota(subscription: Subscription, used: int, now: datetime) -> int:
    plan = Plan.from_terms(subscription.terms)
    state = quota_state(used, plan)
    before = subscription.quota_state
    subscription.quota_used = used
    subscription.quota_checked_at = now
    if state == before:
        return 0
    subscription.quota_state = state
    if RANK[state] > RANK.get(before, 0):
        _warn(subscription, plan, state, used)
    return 1


def _warn(subscription: Subscription, plan: Plan, state: str, used: int) -> None:
    from flask_tracking.mail.outbox import queue
    from flask_tracking.users.emails import link, off_request

    user = db.session.get(User, subscription.user_id)
    if user is None:
        return
    subjects = {
        WARNED: f"You have used 80 % of your {plan.name} plan's events this month",
        FULL: f"You have used all the events of your {plan.name} plan this month",
        OVER: f"Over your {plan.name} plan's events: "
        + ("new events are not recorded" if plan.over_quota == "drop" else "reports are hidden"),
    }
    with off_request():
        queue(
            user.email,
            "billing_quota",
            subjects[state],
            user=user,
            plan=plan,
            state=state,
            used=used,
            url=link("billing.account"),
        )


def purge_account(store: EventStore, subscription: Subscription, now: datetime) -> None:
    """Delete the events of a locked account's sites (the account and its sites stay)."""
    sites = db.session.scalars(select(Site.id).where(Site.owner_id == subscription.user_id)).all()
    for site_id in sites:
        store.delete_site(site_id)
    with write_transaction():
        subscription.purged_at = now
        audit.record(subscription.user_id, "billing_data_purged", f"{len(sites)} site(s)")
    logger.info(
        "account %s locked past its retention: events of %d site(s) deleted",
        subscription.user_id,
        len(sites),
    )
