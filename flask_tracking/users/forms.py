"""Forms of the users blueprint."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask import current_app
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional, ValidationError

from flask_tracking.tracking import access
from flask_tracking.tracking.forms import storable_text
from flask_tracking.tracking.models import Site
from flask_tracking.users import apikeys
from flask_tracking.users.apikeys import READ, SCOPE_LABELS, SCOPES
from flask_tracking.users.models import User
from flask_tracking.users.passwords import weakness

# More active keys than this is a sign of keys made and forgotten: revoke some first.
MAX_ACTIVE_KEYS = 50
ALL_SITES = ""


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class RegisterForm(FlaskForm):
    """Create an account."""

    name = StringField("Name", validators=[Optional(), Length(max=120)])
    email = EmailField("Email", validators=[InputRequired(), Email(), Length(max=254)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=1024)])

    def validate_password(self, field: PasswordField) -> None:
        """Long enough, not common, not guessable from the email or name."""
        strong_enough(field.data, self.email.data, self.name.data)


class ChangePasswordForm(FlaskForm):
    """Change the password: the current one, and the new one."""

    current = PasswordField("Current password", validators=[InputRequired(), Length(max=1024)])
    new = PasswordField("New password", validators=[InputRequired(), Length(max=1024)])

    def validate_new(self, field: PasswordField) -> None:
        """Long enough, not common, not guessable from the account's email or name."""
        strong_enough(field.data, current_user.email, current_user.name)


class ForgotPasswordForm(FlaskForm):
    """Ask for a password-reset link."""

    email = EmailField("Email", validators=[InputRequired(), Email(), Length(max=254)])


class ResetPasswordForm(FlaskForm):
    """Choose a new password from a reset link (`user` is the link's account)."""

    password = PasswordField("New password", validators=[InputRequired(), Length(max=1024)])
    confirm = PasswordField("Repeat it", validators=[InputRequired(), Length(max=1024)])

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def validate_password(self, field: PasswordField) -> None:
        """Long enough, not common, not guessable from the account's email or name."""
        strong_enough(field.data, self.user.email, self.user.name)

    def validate_confirm(self, field: PasswordField) -> None:
        """The same password twice: no typo locks the user out again."""
        if field.data != self.password.data:
            raise ValidationError("The two passwords differ.")


class AccountForm(FlaskForm):
    """The account's name and email; a new email needs the current password."""

    name = StringField("Name", validators=[Optional(), Length(max=120)])
    email = EmailField(
        "Email", validators=[InputRequired(), Email(), Length(max=254)], filters=[_strip]
    )
    current = PasswordField(
        "Current password",
        validators=[Length(max=1024)],
        description="Needed to change the email address.",
    )


class DeleteAccountForm(FlaskForm):
    """Delete the account: the password, and the email typed out as a deliberate act."""

    password = PasswordField("Password", validators=[InputRequired(), Length(max=1024)])
    confirm_email = StringField(
        "Type your email address to confirm", validators=[InputRequired(), Length(max=254)]
    )


def strong_enough(password: str | None, *user_inputs: str | None) -> None:
    """Refuse a new password that is too short, common or guessable (users/passwords.py)."""
    minimum = int(current_app.config["MIN_PASSWORD_LENGTH"])
    problem = weakness(password or "", minimum, *(text or "" for text in user_inputs))
    if problem:
        raise ValidationError(problem)


class LoginForm(FlaskForm):
    """Sign in with email and password."""

    email = EmailField("Email", validators=[InputRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=1024)])


class ConfirmForm(FlaskForm):
    """A bare form: its CSRF token is what confirms a destructive POST."""


class ApiKeyForm(FlaskForm):
    """Make an API key for `user`: a name, a scope, and all their sites or one of them."""

    name = StringField(
        "Name",
        description="What will use the key, e.g. “Nightly export”.",
        filters=[_strip],
        validators=[DataRequired("Give the key a name."), Length(min=1, max=100), storable_text],
    )
    scope = SelectField(
        "Access",
        # {value: label}: WTForms 3.3 deprecates (value, label) tuples.
        choices={scope: SCOPE_LABELS[scope] for scope in SCOPES},
        default=READ,
    )
    # Checked in validate_site against the user's own sites, for a clearer message.
    site = SelectField("Sites", default=ALL_SITES, validate_choice=False)

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self._sites: Mapping[str, Site] = {
            str(site.id): site for site, _role in access.visible_sites(user.id)
        }
        self.site.choices = {
            ALL_SITES: "All sites",
            **{site_id: site.display_name for site_id, site in self._sites.items()},
        }

    @property
    def selected_site(self) -> Site | None:
        """Return the site the key is limited to, or None for all the user's sites."""
        return self._sites.get(self.site.data or ALL_SITES)

    def validate_site(self, field: SelectField) -> None:
        """Accept "all sites" or one of the user's own sites, nothing else."""
        if (field.data or ALL_SITES) != ALL_SITES and field.data not in self._sites:
            raise ValidationError("Choose one of your sites, or All sites.")

    def validate(self, extra_validators: Mapping[str, Sequence[Any]] | None = None) -> bool:
        """Check the fields, then that the user may still have one more active key."""
        if not super().validate(extra_validators):
            return False
        if apikeys.active_count(self.user) >= MAX_ACTIVE_KEYS:
            self.form_errors.append(
                f"You already have {MAX_ACTIVE_KEYS} active keys: revoke one you no longer use"
                " before making another."
            )
            return False
        return True


class TwoFactorCodeForm(FlaskForm):
    """A code from the authenticator app (or a recovery code), and whether to remember."""

    code = StringField(
        "Code", filters=[_strip], validators=[InputRequired(), Length(min=6, max=20)]
    )
    remember = BooleanField("Remember this browser for 30 days")


class DisableTwoFactorForm(FlaskForm):
    """Turning two-factor login off: the password and a code."""

    password = PasswordField("Password", validators=[InputRequired(), Length(max=1024)])
    code = StringField(
        "Code from the app, or a recovery code",
        filters=[_strip],
        validators=[InputRequired(), Length(min=6, max=20)],
    )
