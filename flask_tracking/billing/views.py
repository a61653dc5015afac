"""Billing pages: the account's plan, usage and invoices; checkout, the portal, the provider's
webhook; the local provider's own checkout; the operator's admin area.

Every route answers 404 while billing is off (BILLING_PROVIDER=none). A page acts on the
logged-in account only (no account id in its URLs); the admin area answers 404 to anyone
who is not an admin; the webhook is exempt from CSRF and trusts nothing but the signature.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import HiddenField, IntegerField, StringField
from wtforms.validators import AnyOf, NumberRange

from flask_tracking.billing import enabled, plans_of, providers, service, usage
from flask_tracking.billing.models import ACTIVE, PAST_DUE, Payment, Subscription
from flask_tracking.extensions import db
from flask_tracking.tracking.models import Site
from flask_tracking.users.forms import ConfirmForm
from flask_tracking.users.models import User

billing = Blueprint("billing", __name__)


@billing.before_request
def _only_when_on() -> None:
    if not enabled(current_app):
        abort(404)


class ChoiceForm(FlaskForm):
    """A plan, and (to subscribe) one of its prices."""

    plan = HiddenField()
    price = HiddenField()


def _account_page(status: int = 200) -> Any:
    user = current_user._get_current_object()
    plan, subscription = service.plan_of(user.id)
    used = usage.this_month(user.id)
    invoices: list[providers.Invoice] = []
    invoice_error = ""
    try:
        invoices = providers.provider_of(current_app).invoices(user)
    except providers.ProviderError as error:
        invoice_error = str(error)
    return (
        render_template(
            "billing/account.html",
            plan=plan,
            subscription=subscription,
            plans=plans_of(current_app),
            forecast=usage.forecast(used, plan.events_per_month),
            state=service.quota_state(used, plan),
            history=usage.history(user.id),
            month_label=usage.label,
            invoices=invoices,
            invoice_error=invoice_error,
            may_trial={p.key: service.may_start_trial(user.id, p) for p in plans_of(current_app)},
            form=ChoiceForm(formdata=None),
            confirm=ConfirmForm(formdata=None),
            provider=current_app.config["BILLING_PROVIDER"],
        ),
        status,
    )


@billing.route("/billing")
@login_required
def account() -> Any:
    """The account's plan, this month's usage and its forecast, the history, the invoices."""
    if request.args.get("checkout") == "done":
        flash("Thank you: your subscription starts as soon as the payment is confirmed.", "info")
    return _account_page()


@billing.route("/billing/trial", methods=["POST"])
@login_required
def trial() -> Any:
    form = ChoiceForm()
    if not form.validate_on_submit():
        return _account_page(400)
    try:
        service.start_trial(current_user._get_current_object(), form.plan.data or "")
    except service.BillingRefused as refused:
        flash(str(refused), "error")
        return _account_page(400)
    flash("Your trial has started.", "info")
    return redirect(url_for(".account"))


@billing.route("/billing/checkout", methods=["POST"])
@login_required
def checkout() -> Any:
    """Send the account to the provider's checkout for a plan's price."""
    form = ChoiceForm()
    plan = plans_of(current_app).get(form.plan.data or "")
    price = plan.price(form.price.data or "") if plan else None
    if not form.validate_on_submit() or plan is None or price is None:
        flash("Choose one of the plans' prices.", "error")
        return _account_page(400)
    user = current_user._get_current_object()
    held = service.subscription_of(user.id)
    if (
        current_app.config["BILLING_PROVIDER"] == "stripe"
        and held is not None
        and held.subscription_id
        and held.status in (ACTIVE, PAST_DUE)
    ):
        # A second subscription would charge twice: plans change in the portal (with
        # Stripe's proration), which the webhooks then report.
        return portal()
    try:
        target = providers.provider_of(current_app).checkout(
            user, plan, price, url_for(".account", _external=True)
        )
    except providers.ProviderError as error:
        flash(f"The payment provider did not answer: {error} Try again in a moment.", "error")
        return _account_page(502)
    return redirect(target, 303)


@billing.route("/billing/portal", methods=["POST"])
@login_required
def portal() -> Any:
    """Send the account to where it changes its card or cancels (the provider's portal)."""
    if not ConfirmForm().validate_on_submit():
        return _account_page(400)
    try:
        target = providers.provider_of(current_app).portal(
            current_user._get_current_object(), url_for(".account", _external=True)
        )
    except providers.ProviderError as error:
        flash(str(error), "error")
        return _account_page(502)
    return redirect(target, 303)


@billing.route("/billing/webhooks/stripe", methods=["POST"])
def stripe_webhook() -> Any:
    """Stripe's events (checkout, subscriptions, invoices), signed with the endpoint's secret:
    a bad signature is a 400 that changes nothing; an event seen before changes nothing."""
    if current_app.config["BILLING_PROVIDER"] != "stripe":
        abort(404)
    provider = providers.provider_of(current_app)
    try:
        event = provider.parse(request.get_data(cache=False), dict(request.headers))
    except providers.InvalidWebhook as error:
        return jsonify(
            error={"status": 400, "code": "invalid_signature", "message": str(error)}
        ), 400
    return jsonify(received=True, outcome=service.apply(event))


# -- the local provider's pages -----------------------------------------------------------------


def _local() -> providers.LocalProvider:
    provider = providers.provider_of(current_app)
    if not isinstance(provider, providers.LocalProvider):
        abort(404)
    return provider


@billing.route("/billing/local/checkout/<token>", methods=["GET", "POST"])
@login_required
def local_checkout(token: str) -> Any:
    """The local provider's checkout: the order, and a button that pays at once."""
    provider = _local()
    user = current_user._get_current_object()
    try:
        plan, price = provider.order(token, user)
    except LookupError as error:
        flash(str(error), "error")
        return redirect(url_for(".account"))
    form = ConfirmForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        provider.pay(user, plan, price)
        flash(f"Paid (test payment): you are on {plan.name}.", "info")
        return redirect(url_for(".account"))
    return render_template("billing/local_checkout.html", plan=plan, price=price, form=form)


@billing.route("/billing/local/portal", methods=["GET", "POST"])
@login_required
def local_portal() -> Any:
    """The local provider's portal: cancel the subscription."""
    provider = _local()
    user = current_user._get_current_object()
    form = ConfirmForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        outcome = provider.cancel(user)
        flash(f"Subscription cancelled ({outcome}).", "info")
        return redirect(url_for(".account"))
    plan, subscription = service.plan_of(user.id)
    return render_template(
        "billing/local_portal.html", plan=plan, subscription=subscription, form=form
    )


# -- the operator's admin area --------------------------------------------------------------------


class AdminForm(FlaskForm):
    action = StringField(validators=[AnyOf(["plan", "extend", "lock", "unlock"])])
    plan = StringField()  # checked against the plans by the service
    days = IntegerField(default=14, validators=[NumberRange(1, 365)])


def _admin() -> User:
    user = current_user._get_current_object()
    if not getattr(user, "is_admin", False):
        abort(404)
    return user  # type: ignore[no-any-return]


@billing.route("/admin/accounts")
@login_required
def admin_accounts() -> Any:
    """Every account: plan, standing, usage this month, last payment."""
    _admin()
    used = usage.by_account(usage.month_of(datetime.now(UTC)))
    users = db.session.scalars(select(User).order_by(User.id)).all()
    subscriptions = {s.user_id: s for s in db.session.scalars(select(Subscription))}
    last_paid = dict(
        db.session.execute(
            select(Payment.user_id, func.max(Payment.created_at))
            .where(Payment.status == "paid")
            .group_by(Payment.user_id)
        ).all()
    )
    sites = dict(
        db.session.execute(select(Site.owner_id, func.count()).group_by(Site.owner_id)).all()
    )
    form = AdminForm(formdata=None)
    rows = [
        {
            "user": user,
            "subscription": subscriptions.get(user.id),
            "plan": service.plan_of(user.id)[0],
            "used": used.get(user.id, 0),
            "paid": last_paid.get(user.id),
            "sites": sites.get(user.id, 0),
        }
        for user in users
    ]
    return render_template(
        "billing/admin.html", rows=rows, form=form, plans=list(plans_of(current_app))
    )


@billing.route("/admin/accounts/<id:user_id>", methods=["POST"])
@login_required
def admin_account(user_id: int) -> Any:
    """Change an account's plan, extend its trial, lock or unlock it (in its security log)."""
    admin = _admin()
    target = db.session.get(User, user_id)
    if target is None:
        abort(404)
    form = AdminForm()
    if not form.validate_on_submit():
        flash(
            "That action is not valid: "
            + "; ".join(f"{name}: {', '.join(errors)}" for name, errors in form.errors.items()),
            "error",
        )
        return redirect(url_for(".admin_accounts"), 303)
    try:
        if form.action.data == "plan":
            service.change_plan(target, form.plan.data or "", admin)
        elif form.action.data == "extend":
            service.extend_trial(target, int(form.days.data or 0), admin)
        else:
            service.set_locked(target, form.action.data == "lock", admin)
    except service.BillingRefused as refused:
        flash(str(refused), "error")
    else:
        flash(f"{target.email}: done.", "info")
    return redirect(url_for(".admin_accounts"), 303)
