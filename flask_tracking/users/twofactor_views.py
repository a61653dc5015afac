"""Two-factor login: the code after the password, and turning it on and off in the settings."""

from __future__ import annotations

import json
import time
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from flask_tracking.extensions import db, limiter
from flask_tracking.users import audit, securitykeys, twofactor
from flask_tracking.users.forms import ConfirmForm, DisableTwoFactorForm, TwoFactorCodeForm
from flask_tracking.users.models import User
from flask_tracking.users.passwords import verify_password
from flask_tracking.users.views import TWO_FACTOR_PENDING, _login_failed, _start_session

two_factor = Blueprint("two_factor", __name__)

PENDING_SECONDS = 300  # the password step is forgotten after five minutes without a code
SETUP = "two_factor_setup"  # session key: the secret being set up, until confirmed


def _pending_user() -> tuple[User, str, str] | None:
    pending = session.get(TWO_FACTOR_PENDING)
    if not isinstance(pending, dict) or time.time() - float(pending.get("t", 0)) > PENDING_SECONDS:
        return None
    user = db.session.get(User, pending.get("u"))
    if user is None or not user.totp_secret:
        return None
    target = str(pending.get("n") or url_for("tracking.index"))
    return user, target, str(pending.get("m") or "password")


def _pending_key() -> str:
    pending = session.get(TWO_FACTOR_PENDING)
    return f"2fa:{pending.get('u') if isinstance(pending, dict) else request.remote_addr}"


def accept_second_factor(user: User, code: str) -> str | None:
    """Check a code from the app, else a recovery code; return which worked, or None."""
    if twofactor.check_code(user, code):
        return "app"
    if twofactor.use_recovery_code(user, code):
        return "recovery"
    return None


@two_factor.route("/login/code", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["TWO_FACTOR_RATE_LIMIT"],
    methods=["POST"],
    key_func=_pending_key,
    deduct_when=lambda _response: _login_failed(),
)
def code() -> Any:
    """The second step of logging in: a code from the authenticator app or a recovery code."""
    found = _pending_user()
    if found is None:
        session.pop(TWO_FACTOR_PENDING, None)
        flash("Log in again: the code step waits five minutes at most.", "info")
        return redirect(url_for("users.login"))
    user, target, method = found
    form = TwoFactorCodeForm()
    keys = bool(securitykeys.keys_of(user))
    if form.validate_on_submit():
        used = accept_second_factor(user, form.code.data or "")
        if used is not None:
            if used == "recovery":
                audit.record(user.id, "recovery_code_used")
            factor = "a recovery code" if used == "recovery" else "a code"
            response = _logged_in(user, f"{method} and {factor}", bool(form.remember.data))
            response.headers["Location"] = target
            response.status_code = 302
            if used == "recovery":
                left = twofactor.recovery_codes_left(user)
                flash(f"You used a recovery code: {left} left.", "warning")
            return response
        g.login_failed = True
        current_app.logger.info("failed second factor for user %s", user.id)
        audit.record(user.id, "two_factor_failed")
        db.session.commit()
        form.code.errors = ["That code is not right (or was used already)."]
        return render_template("users/two_factor_code.html", form=form, keys=keys), 200
    return render_template("users/two_factor_code.html", form=form, keys=keys)


def _logged_in(user: User, how: str, remember: bool) -> Response:
    """Both factors passed: log it, start the session, remember the browser if asked."""
    audit.record(user.id, "login", how)
    _start_session(user)
    response = make_response()
    if remember:
        days = float(current_app.config["TWO_FACTOR_REMEMBER_DAYS"])
        response.set_cookie(
            twofactor.REMEMBER_COOKIE,
            twofactor.remember_token(user),
            max_age=int(days * 86400),
            httponly=True,
            secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
            samesite="Lax",
        )
    return response


def _refused(refused: securitykeys.KeyRefused, status: int = 400) -> tuple[Response, int]:
    return jsonify(error=str(refused)), status


@two_factor.route("/login/key/options", methods=["POST"])
def key_login_options() -> Any:
    """The challenge for a security key, for the login waiting on its second factor."""
    found = _pending_user()
    if found is None:
        return _refused(securitykeys.KeyRefused("No login is waiting: log in again."))
    try:
        options = securitykeys.authentication_options(found[0])
    except securitykeys.KeyRefused as refused:
        return _refused(refused)
    return current_app.response_class(options, mimetype="application/json")


@two_factor.route("/login/key", methods=["POST"])
@limiter.limit(
    lambda: current_app.config["TWO_FACTOR_RATE_LIMIT"],
    key_func=_pending_key,
    deduct_when=lambda _response: _login_failed(),
)
def key_login() -> Any:
    """The second step of logging in with a security key: check its signed answer."""
    found = _pending_user()
    if found is None:
        return _refused(securitykeys.KeyRefused("No login is waiting: log in again."))
    user, target, method = found
    try:
        answer = securitykeys.parse_answer(request.get_data())
        key = securitykeys.authenticate(user, answer["credential"])
    except securitykeys.KeyRefused as refused:
        db.session.rollback()
        g.login_failed = True
        audit.record(user.id, "two_factor_failed", "security key")
        db.session.commit()
        return _refused(refused)
    how = f"{method} and a security key ({key.name})"
    response = _logged_in(user, how, bool(answer.get("remember")))
    response.set_data(json.dumps({"next": target}))
    response.mimetype = "application/json"
    return response


@two_factor.route("/settings/two-factor/keys/options", methods=["POST"])
@login_required
def key_options() -> Any:
    """The options for adding a security key (two-factor login must be on)."""
    user = current_user._get_current_object()
    if not user.totp_secret:
        return _refused(securitykeys.KeyRefused("Turn two-factor login on first."))
    try:
        options = securitykeys.registration_options(user)
    except securitykeys.KeyRefused as refused:
        return _refused(refused)
    return current_app.response_class(options, mimetype="application/json")


@two_factor.route("/settings/two-factor/keys", methods=["POST"])
@login_required
def add_key() -> Any:
    """Keep the security key the browser just made, under the name given."""
    user = current_user._get_current_object()
    if not user.totp_secret:
        return _refused(securitykeys.KeyRefused("Turn two-factor login on first."))
    try:
        answer = securitykeys.parse_answer(request.get_data())
        key = securitykeys.register(user, str(answer.get("name") or ""), answer["credential"])
    except securitykeys.KeyRefused as refused:
        db.session.rollback()
        return _refused(refused)
    audit.record(user.id, "security_key_added", key.name)
    db.session.commit()
    flash(f"Security key “{key.name}” added.", "success")
    return jsonify(next=url_for(".settings"))


@two_factor.route("/settings/two-factor/keys/<id:key_id>/remove", methods=["POST"])
@login_required
def remove_key(key_id: int) -> Any:
    """Remove one of the user's security keys."""
    form = ConfirmForm()
    user = current_user._get_current_object()
    if not form.validate_on_submit():
        abort(400)
    key = securitykeys.remove(user, key_id)
    if key is None:
        abort(404)
    audit.record(user.id, "security_key_removed", key.name)
    db.session.commit()
    flash(f"Security key “{key.name}” removed.", "info")
    return redirect(url_for(".settings"))


@two_factor.route("/settings/two-factor", methods=["GET"])
@login_required
def settings() -> str:
    """Whether two-factor login is on, and the forms to set it up or turn it off."""
    return _page()


def _page(**context: Any) -> str:
    user = current_user._get_current_object()
    secret = session.get(SETUP)
    setup = None
    if not user.totp_secret and isinstance(secret, str):
        uri = twofactor.provisioning_uri(secret, user)
        setup = {"secret": secret, "qr": twofactor.qr_svg(uri)}
    return render_template(
        "users/two_factor.html",
        user=user,
        setup=setup,
        codes_left=twofactor.recovery_codes_left(user) if user.totp_secret else 0,
        keys=securitykeys.keys_of(user) if user.totp_secret else [],
        remove_form=ConfirmForm(),
        confirm_form=context.pop("confirm_form", None) or TwoFactorCodeForm(formdata=None),
        disable_form=context.pop("disable_form", None) or DisableTwoFactorForm(formdata=None),
        **context,
    )


@two_factor.route("/settings/two-factor/setup", methods=["POST"])
@login_required
def setup() -> Any:
    """Make a new secret for this browser to confirm (not active until a code confirms it)."""
    if current_user.totp_secret:
        return redirect(url_for(".settings"))
    session[SETUP] = twofactor.new_secret()
    return redirect(url_for(".settings"))


@two_factor.route("/settings/two-factor/enable", methods=["POST"])
@login_required
@limiter.limit(
    lambda: current_app.config["TWO_FACTOR_RATE_LIMIT"],
    key_func=lambda: f"2fa-enable:{current_user.get_id()}",
    deduct_when=lambda _response: _login_failed(),
)
def enable() -> Any:
    """Confirm the new secret with a first code; show the recovery codes once."""
    secret = session.get(SETUP)
    form = TwoFactorCodeForm()
    if not isinstance(secret, str) or not form.validate_on_submit():
        return _page(confirm_form=form), 400
    audit.record(current_user.id, "two_factor_on")
    codes = twofactor.enable(current_user._get_current_object(), secret, form.code.data or "")
    if codes is None:
        db.session.rollback()  # not on: nothing to log
        g.login_failed = True
        form.code.errors = ["That code does not match: check the app's clock, and try again."]
        return _page(confirm_form=form), 400
    session.pop(SETUP, None)
    return _page(recovery_codes=codes)


@two_factor.route("/settings/two-factor/disable", methods=["POST"])
@login_required
@limiter.limit(
    lambda: current_app.config["TWO_FACTOR_RATE_LIMIT"],
    key_func=lambda: f"2fa-disable:{current_user.get_id()}",
    deduct_when=lambda _response: _login_failed(),
)
def disable() -> Response | tuple[str, int]:
    """Turn two-factor login off: the password and a code (or a recovery code) are asked."""
    user = current_user._get_current_object()
    form = DisableTwoFactorForm()
    if not user.totp_secret or not form.validate_on_submit():
        return _page(disable_form=form), 400
    if not verify_password(form.password.data or "", user.password_hash):
        g.login_failed = True
        form.password.errors = ["That is not your password."]
        return _page(disable_form=form), 400
    if accept_second_factor(user, form.code.data or "") is None:
        g.login_failed = True
        form.code.errors = ["That code is not right (or was used already)."]
        return _page(disable_form=form), 400
    audit.record(user.id, "two_factor_off")
    twofactor.disable(user)
    flash("Two-factor login is off.", "info")
    return redirect(url_for(".settings"))
