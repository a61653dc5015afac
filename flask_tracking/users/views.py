"""Register, log in and log out; the settings page: password, login sessions, API keys."""

from __future__ import annotations

import re
import time

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
from flask_tracking.tracking.sites import sites_of
from flask_tracking.urls import is_safe_redirect
from flask_tracking.users import accounts, apikeys, audit, emails, logins, sso, twofactor
from flask_tracking.users.forms import (
    AccountForm,
    ApiKeyForm,
    ChangePasswordForm,
    ConfirmForm,
    DeleteAccountForm,
    ForgotPasswordForm,
    LoginForm,
    RegisterForm,
    ResetPasswordForm,
)
from flask_tracking.users.models import ApiKey, User

users = Blueprint("users", __name__)

login_manager.login_view = "users.login"
login_manager.login_message_category = "info"


SESSION_TOKEN = "login"  # noqa: S105 - the session cookie key holding the login token
# Session key: the user whose password was right and who still owes a code (users/twofactor).
TWO_FACTOR_PENDING = "two_factor_pending"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Return the user of the cookie's login session, if that session is still live."""
    # ASCII digits only, and few enough for an INTEGER: "²".isdigit() is True but int() refuses it.
    if not re.fullmatch(r"[0-9]{1,10}", user_id) or int(user_id) >= 2**31:
        return None
    token = session.get(SESSION_TOKEN)
    if not isinstance(token, str):
        return None
    return logins.user_for(int(user_id), token)


def _start_session(user: User) -> None:
    """Log the user in with a fresh session, so a planted session id is worthless."""
    session.clear()
    logins.forget_old(user)
    session[SESSION_TOKEN] = logins.start(
        user, request.headers.get("User-Agent", ""), request.remote_addr
    )
    login_user(user)


def finish_login(user: User, next_url: str | None, method: str) -> Response:
    """The first factor (a password, single sign-on) was right: start the session, or ask for
    the second factor first; then go on to `next` when it stays on this site."""
    target = next_url if is_safe_redirect(next_url) else url_for("tracking.index")
    remembered = request.cookies.get(twofactor.REMEMBER_COOKIE)
    if user.totp_secret and not twofactor.remembered(user, remembered):
        session.clear()
        session[TWO_FACTOR_PENDING] = {
            "u": user.id,
            "n": target,
            "t": int(time.time()),
            "m": method,
        }
        db.session.commit()
        return redirect(url_for("two_factor.code"))
    audit.record(user.id, "login", method)
    _start_session(user)
    return redirect(str(target))


def _end_session() -> None:
    """Log out this browser: its login session is revoked, so no copy of the cookie works."""
    logins.end(session.get(SESSION_TOKEN))
    logout_user()
    session.clear()


def _passwords_off(what: str) -> tuple[str, int] | None:
    """With single sign-on only (OIDC_PASSWORD_LOGIN off), the password pages say so."""
    if sso.password_login():
        return None
    return render_template("users/passwords_off.html", what=what), 403


def _login_failed() -> bool:
    """Count only failed attempts towards the login rate limits."""
    return bool(g.get("login_failed", False))


def _email_key(kind: str = "login") -> str:
    return f"{kind}-email:" + accounts.normalise_email(request.form.get("email", ""))


# Neither the form nor its answer may tell whether an address has an account: an attacker
# could list a tool's users that way. Only a complete, valid registration reaches the unique
# index, and a taken address then gets this, which fits every reason the account might not
# be made. (Once email exists, the owner of the address will be told instead.)
NOT_REGISTERED = (
    "We could not create an account with these details. If you already have an account, "
    "log in instead."
)


@users.route("/register/", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["REGISTER_RATE_LIMIT_IP"], methods=["POST"])
@limiter.limit(
    lambda: current_app.config["REGISTER_RATE_LIMIT_EMAIL"],
    methods=["POST"],
    key_func=lambda: _email_key("register"),
)
def register() -> str | Response | tuple[str, int]:
    """Create an account and log straight into it; follow a same-site `next` (an invitation
    being accepted), with `email` filling the address in."""
    if (off := _passwords_off("register")) is not None:
        return off
    form = RegisterForm()
    next_url = request.args.get("next")
    if request.method == "GET" and request.args.get("email"):
        form.email.data = request.args["email"][:254]
    if form.validate_on_submit():
        try:
            user = accounts.register(
                form.email.data or "", form.password.data or "", form.name.data or ""
            )
        except accounts.EmailTaken:
            form.form_errors.append(NOT_REGISTERED)
            return render_template("users/register.html", form=form), 200
        else:
            emails.send_verification(user)
            db.session.commit()
            _start_session(user)
            if is_safe_redirect(next_url):
                return redirect(str(next_url))
            if current_app.config["REQUIRE_EMAIL_VERIFICATION"]:
                return redirect(url_for(".verification_pending"))
            flash("Welcome! Add your first site below.", "success")
            return redirect(url_for("tracking.view_sites"))  # the page with the form
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
    if request.method == "POST" and (off := _passwords_off("login")) is not None:
        return off
    form = LoginForm()
    next_url = request.args.get("next")
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data or "", form.password.data or "")
        if user is not None:
            return finish_login(user, next_url, "password")
        g.login_failed = True
        current_app.logger.info("failed login for %r", form.email.data)
        known = accounts.find_user(form.email.data or "")
        if known is not None:  # the owner should see someone trying their password
            audit.record(known.id, "login_failed")
            db.session.commit()
        form.password.errors = ["Invalid email or password."]
        return render_template("users/login.html", form=form), 200
    return render_template("users/login.html", form=form)


@users.route("/logout/", methods=["GET", "POST"])
def logout() -> str | Response:
    """Log out on a CSRF-checked POST; a GET only asks for confirmation."""
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        _end_session()
        flash("You have been logged out.", "info")
        return redirect(url_for("tracking.index"))
    if not current_user.is_authenticated:
        return redirect(url_for("tracking.index"))
    return render_template("users/logout.html", form=form)


# -- by email: a forgotten password, a confirmed address ------------------------------------


@users.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["PASSWORD_RESET_RATE_LIMIT_IP"], methods=["POST"])
@limiter.limit(
    lambda: current_app.config["PASSWORD_RESET_RATE_LIMIT_EMAIL"],
    methods=["POST"],
    key_func=lambda: _email_key("reset"),
)
def forgot_password() -> str | Response | tuple[str, int]:
    """Send a reset link to an account's address. The answer is the same whether or not the
    address has an account, and the mail leaves later, off this request."""
    if (off := _passwords_off("reset")) is not None:
        return off
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        user = accounts.find_user(form.email.data or "")
        if user is not None:
            emails.send_password_reset(user)
            db.session.commit()
        return render_template("users/forgot_password.html", form=form, sent=True)
    return render_template("users/forgot_password.html", form=form, sent=False)


@users.route("/password/reset/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT_IP"], methods=["POST"])
def reset_password(token: str) -> str | Response | tuple[str, int]:
    """Choose a new password from a reset link: every session of the account ends, and this
    browser is logged in afresh. A used, expired or altered link is refused."""
    if (off := _passwords_off("reset")) is not None:
        return off
    user = emails.user_of_reset(token)
    if user is None:
        return render_template("users/link_invalid.html", what="password reset"), 400
    form = ResetPasswordForm(user)
    if form.validate_on_submit():
        audit.record(user.id, "password_reset")
        accounts.reset_password(user, form.password.data or "")
        logins.end_all(user)
        _start_session(user)
        flash("Your password is changed. Every other browser has been logged out.", "success")
        return redirect(url_for("tracking.index"))
    status = 400 if request.method == "POST" else 200
    return render_template("users/reset_password.html", form=form, user=user), status


@users.route("/verify-email/", methods=["GET", "POST"])
@login_required
@limiter.limit(
    lambda: current_app.config["PASSWORD_RESET_RATE_LIMIT_EMAIL"],
    methods=["POST"],
    key_func=lambda: f"verify-resend:{current_user.get_id()}",
)
def verification_pending() -> str | Response:
    """Ask to confirm the address (REQUIRE_EMAIL_VERIFICATION), and send the link again."""
    user = current_user._get_current_object()
    if user.email_verified_at is not None:
        return redirect(url_for("tracking.index"))
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        emails.send_verification(user)
        db.session.commit()
        flash(f"We sent a new link to {user.email}.", "success")
        return redirect(url_for(".verification_pending"))
    return render_template("users/verify_pending.html", form=form, user=user)


@users.route("/verify-email/<token>", methods=["GET", "POST"])
def verify_email(token: str) -> str | Response | tuple[str, int]:
    """Confirm an address from its link: a GET shows a button (mail scanners follow links),
    the POST confirms."""
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        user = emails.verify(token)
        if user is None:
            return render_template("users/link_invalid.html", what="confirmation"), 400
        flash(f"Thank you: {user.email} is confirmed.", "success")
        return redirect(url_for("tracking.index"))
    if emails.peek_verify(token) is None:
        return render_template("users/link_invalid.html", what="confirmation"), 400
    return render_template("users/confirm_link.html", form=form, action="Confirm my address")


@users.route("/settings/email/<token>", methods=["GET", "POST"])
def confirm_email_change(token: str) -> str | Response | tuple[str, int]:
    """Move the account to the new address of a change link; the old address is told."""
    found = emails.read_change(token)
    if found is None:
        return render_template("users/link_invalid.html", what="email change"), 400
    user, new_email = found
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        old_email = user.email
        try:
            audit.record(user.id, "email_changed", f"{old_email} to {new_email}")
            accounts.change_email(user, new_email)
        except accounts.EmailTaken:
            return render_template("users/link_invalid.html", what="email change"), 400
        emails.send_change_notice(user, old_email)
        db.session.commit()
        flash(f"Your email address is now {user.email}: log in with it from now on.", "success")
        return redirect(url_for("tracking.index"))
    return render_template(
        "users/confirm_link.html", form=form, action=f"Use {new_email} for my account"
    )


# Where an account whose address is not confirmed yet may go when REQUIRE_EMAIL_VERIFICATION
# is on: confirming it, asking for the link again, logging out, and static files.
UNVERIFIED_ALLOWED = frozenset(
    {
        "users.verification_pending",
        "users.verify_email",
        "users.logout",
        "members.accept",  # an invitation's link proves the address too
        "two_factor.code",
        "static",
    }
)


@users.before_app_request
def _require_verified_email() -> Response | None:
    if (
        current_app.config["REQUIRE_EMAIL_VERIFICATION"]
        and request.endpoint not in UNVERIFIED_ALLOWED
        and current_user.is_authenticated
        and current_user.email_verified_at is None
    ):
        return redirect(url_for("users.verification_pending"))
    return None


# -- settings: account, password, sessions, API keys ----------------------------------------


def _settings_page(
    form: ApiKeyForm | None = None,
    *,
    new_key: ApiKey | None = None,
    secret: str | None = None,
    password_form: ChangePasswordForm | None = None,
    account_form: AccountForm | None = None,
    delete_form: DeleteAccountForm | None = None,
) -> str:
    user = current_user._get_current_object()
    return render_template(
        "users/settings.html",
        form=form or ApiKeyForm(current_user, formdata=None),
        password_form=password_form or ChangePasswordForm(formdata=None),
        account_form=account_form or AccountForm(formdata=None, obj=user),
        delete_form=delete_form or DeleteAccountForm(formdata=None),
        site_count=len(sites_of(user)),
        confirm=ConfirmForm(),
        keys=apikeys.keys_of(current_user),
        scope_labels=apikeys.SCOPE_LABELS,
        sessions=logins.live_sessions(current_user),
        audit_events=audit.events_of(user.id),
        audit_kinds=audit.KINDS,
        audit_days=int(current_app.config["AUDIT_LOG_DAYS"]),
        this_session=logins.current_id(session.get(SESSION_TOKEN)),
        sso_identities=sso.identities_of(user) if sso.enabled() else [],
        has_password=user.password_hash != sso.NO_PASSWORD,
        new_key=new_key,
        secret=secret,
    )


@users.route("/settings/")
@login_required
def settings() -> str:
    """Show the user's settings: account, password, sessions, API keys, deletion."""
    return _settings_page()


@users.route("/settings/password", methods=["POST"])
@login_required
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT_EMAIL"],
    key_func=lambda: f"password-change:{current_user.get_id()}",
    deduct_when=lambda _response: _login_failed(),
)
def change_password() -> Response | tuple[str, int]:
    """Change the password: every other session ends, and this one starts afresh."""
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        return _settings_page(password_form=form), 400
    user = current_user._get_current_object()
    if not accounts.change_password(user, form.current.data or "", form.new.data or ""):
        g.login_failed = True
        form.current.errors = ["That is not your current password."]
        return _settings_page(password_form=form), 400
    audit.record(user.id, "password_changed")
    logins.end_all(user)
    _start_session(user)
    flash("Your password is changed. Every other browser has been logged out.", "success")
    return redirect(url_for(".settings"))


@users.route("/settings/account", methods=["POST"])
@login_required
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT_EMAIL"],
    key_func=lambda: f"account-change:{current_user.get_id()}",
    deduct_when=lambda _response: _login_failed(),
)
def update_account() -> Response | tuple[str, int]:
    """Change the account's name and email (a new email asks for the password)."""
    form = AccountForm()
    if not form.validate_on_submit():
        return _settings_page(account_form=form), 400
    user = current_user._get_current_object()
    try:
        wanted = accounts.update_account(
            user, form.name.data or "", form.email.data or "", form.current.data or ""
        )
    except accounts.WrongPassword:
        g.login_failed = True
        form.current.errors = ["Type your current password to change the email address."]
        return _settings_page(account_form=form), 400
    except accounts.EmailTaken:
        form.email.errors = ["That address cannot be used for this account."]
        return _settings_page(account_form=form), 400
    if wanted is None:
        flash("Your account is saved.", "success")
    else:
        emails.send_change_confirmation(user, wanted)
        audit.record(user.id, "email_change_requested", wanted)
        db.session.commit()
        flash(
            f"We sent a link to {wanted}: your address changes when you open it. "
            f"Until then, log in with {user.email}.",
            "success",
        )
    return redirect(url_for(".settings") + "#account")


@users.route("/settings/delete", methods=["POST"])
@login_required
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT_EMAIL"],
    key_func=lambda: f"account-delete:{current_user.get_id()}",
    deduct_when=lambda _response: _login_failed(),
)
def delete_account() -> Response | tuple[str, int]:
    """Delete the account, its sites and all their data, then log out."""
    form = DeleteAccountForm()
    if not form.validate_on_submit():
        return _settings_page(delete_form=form), 400
    user = current_user._get_current_object()
    typed = accounts.normalise_email(form.confirm_email.data or "")
    if typed != user.email:
        form.confirm_email.errors = ["Type the email address of this account, as shown above."]
        return _settings_page(delete_form=form), 400
    try:
        sites = accounts.delete_account(user, form.password.data or "")
    except accounts.WrongPassword:
        g.login_failed = True
        form.password.errors = ["That is not your password."]
        return _settings_page(delete_form=form), 400
    logout_user()
    session.clear()
    flash(f"Your account is deleted, with {sites} site(s) and all their data.", "info")
    return redirect(url_for("tracking.index"))


@users.route("/settings/sessions/<id:session_id>/end", methods=["POST"])
@login_required
def end_session(session_id: int) -> Response:
    """End one of the user's other login sessions (a browser they no longer use)."""
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form expired; reload the page and try again.")
    audit.record(current_user.id, "session_ended")
    if not logins.end_one(current_user, session_id):
        db.session.rollback()
        abort(404)
    if session_id == logins.current_id(session.get(SESSION_TOKEN)):
        logout_user()
        session.clear()
        flash("You have been logged out.", "info")
        return redirect(url_for(".login"))
    flash("That session has ended: the browser is logged out.", "info")
    return redirect(url_for(".settings") + "#sessions")


@users.route("/settings/sessions/end-all", methods=["POST"])
@login_required
def end_all_sessions() -> Response:
    """Log out everywhere, this browser included."""
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form expired; reload the page and try again.")
    audit.record(current_user.id, "sessions_ended")
    logins.end_all(current_user)
    logout_user()
    session.clear()
    flash("You have been logged out everywhere.", "info")
    return redirect(url_for(".login"))


@users.route("/settings/api-keys/", methods=["POST"])
@login_required
def create_api_key() -> Response | tuple[str, int]:
    """Make an API key and show its secret, this once; a bad form is a 400 and makes nothing."""
    form = ApiKeyForm(current_user)
    if not form.validate_on_submit():
        return _settings_page(form), 400
    audit.record(current_user.id, "api_key_created", form.name.data or "")
    key, secret = apikeys.create_key(
        current_user, form.name.data or "", form.scope.data, form.selected_site
    )
    response = make_response(_settings_page(new_key=key, secret=secret))
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
        audit.record(current_user.id, "api_key_revoked", key.name)
        apikeys.revoke_key(key)
        flash(f"Revoked the API key “{key.name}”. Programs using it can no longer connect.", "info")
    else:
        flash(f"The API key “{key.name}” was already revoked.", "info")
    return redirect(url_for(".settings"))
