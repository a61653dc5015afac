"""Register, log in and log out; the settings page with its API keys."""

from __future__ import annotations

import re

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from flask_tracking.extensions import db, limiter, login_manager
from flask_tracking.urls import is_safe_redirect
from flask_tracking.users import accounts, apikeys
from flask_tracking.users.forms import ApiKeyForm, ConfirmForm, LoginForm, RegisterForm
from flask_tracking.users.models import ApiKey, User

users = Blueprint("users", __name__)

login_manager.login_view = "users.login"
login_manager.login_message_category = "info"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Return the user stored in the session, if it still exists."""
    # ASCII digits only, and few enough for an INTEGER: "²".isdigit() is True but int() refuses it.
    if not re.fullmatch(r"[0-9]{1,10}", user_id) or int(user_id) >= 2**31:
        return None
    return db.session.get(User, int(user_id))


def _start_session(user: User) -> None:
    """Log the user in with a fresh session, so a planted session id is worthless."""
    session.clear()
    login_user(user)


def _login_failed() -> bool:
    """Count only failed attempts towards the login rate limits."""
    return bool(g.get("login_failed", False))


def _email_key() -> str:
    return "login-email:" + accounts.normalise_email(request.form.get("email", ""))


@users.route("/register/", methods=["GET", "POST"])
def register() -> str | Response:
    """Create an account and log straight into it."""
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = accounts.register(
                form.email.data or "", form.password.data or "", form.name.data or ""
            )
        except accounts.EmailTaken:
            form.email.errors = ["A user with that email already exists."]
        else:
            _start_session(user)
            flash("Welcome! Add your first site below.", "success")
            return redirect(url_for("tracking.index"))
    return render_template("users/register.html", form=form)


@users.route("/login/", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT_IP"],
    methods=["POST"],
    deduct_when=lambda _response: _login_failed(),
)
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT_EMAIL"],
    methods=["POST"],
    key_func=_email_key,
    deduct_when=lambda _response: _login_failed(),
)
def login() -> str | Response | tuple[str, int]:
    """Log in; follow `next` only when it stays on this site."""
    form = LoginForm()
    next_url = request.args.get("next")
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data or "", form.password.data or "")
        if user is not None:
            _start_session(user)
            return redirect(next_url if is_safe_redirect(next_url) else url_for("tracking.index"))
        g.login_failed = True
        current_app.logger.info("failed login for %r", form.email.data)
        form.password.errors = ["Invalid email or password."]
        return render_template("users/login.html", form=form), 200
    return render_template("users/login.html", form=form)


@users.route("/logout/", methods=["GET", "POST"])
def logout() -> str | Response:
    """Log out on a CSRF-checked POST; a GET only asks for confirmation."""
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        logout_user()
        session.clear()
        flash("You have been logged out.", "info")
        return redirect(url_for("tracking.index"))
    if not current_user.is_authenticated:
        return redirect(url_for("tracking.index"))
    return render_template("users/logout.html", form=form)


# -- settings: API keys ----------------------------------------------------------------------


def _settings_page(
    form: ApiKeyForm, new_key: ApiKey | None = None, secret: str | None = None
) -> str:
    return render_template(
        "users/settings.html",
        form=form,
        confirm=ConfirmForm(),
        keys=apikeys.keys_of(current_user),
        scope_labels=apikeys.SCOPE_LABELS,
        new_key=new_key,
        secret=secret,
    )


@users.route("/settings/")
@login_required
def settings() -> str:
    """Show the user's settings: their API keys, and a form to make one."""
    return _settings_page(ApiKeyForm(current_user, formdata=None))


@users.route("/settings/api-keys/", methods=["POST"])
@login_required
def create_api_key() -> Response | tuple[str, int]:
    """Make an API key and show its secret, this once; a bad form is a 400 and makes nothing."""
    form = ApiKeyForm(current_user)
    if not form.validate_on_submit():
        return _settings_page(form), 400
    key, secret = apikeys.create_key(
        current_user, form.name.data or "", form.scope.data, form.selected_site
    )
    response = make_response(_settings_page(ApiKeyForm(current_user, formdata=None), key, secret))
    # The page holds a live secret: no browser or proxy may keep a copy of it.
    response.headers["Cache-Control"] = "no-store"
    return response


@users.route("/settings/api-keys/<id:key_id>/revoke", methods=["POST"])
@login_required
def revoke_api_key(key_id: int) -> Response:
    """Revoke one of the user's API keys: it stops working at once and stays listed."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400, description="The form expired; reload the page and try again.")
    key = apikeys.key_of(current_user, key_id)
    if key is None:
        abort(404)
    if key.active:
        apikeys.revoke_key(key)
        flash(f"Revoked the API key “{key.name}”. Programs using it can no longer connect.", "info")
    else:
        flash(f"The API key “{key.name}” was already revoked.", "info")
    return redirect(url_for(".settings"))
