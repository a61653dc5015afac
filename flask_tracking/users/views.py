"""Register, log in and log out."""

from __future__ import annotations

import re

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from flask_tracking.extensions import db, limiter, login_manager
from flask_tracking.urls import is_safe_redirect
from flask_tracking.users import accounts
from flask_tracking.users.forms import ConfirmForm, LoginForm, RegisterForm
from flask_tracking.users.models import User

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
