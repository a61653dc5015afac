"""Forms of the users blueprint."""

from __future__ import annotations

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import Email, InputRequired, Length, Optional, ValidationError

from flask_tracking.users.accounts import find_user


class RegisterForm(FlaskForm):
    """Create an account."""

    name = StringField("Name", validators=[Optional(), Length(max=120)])
    email = EmailField("Email", validators=[InputRequired(), Email(), Length(max=254)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=1024)])

    def validate_email(self, field: EmailField) -> None:
        """Refuse an email that already has an account."""
        if field.data and find_user(field.data) is not None:
            raise ValidationError("A user with that email already exists.")

    def validate_password(self, field: PasswordField) -> None:
        """Require the configured minimum length."""
        minimum = int(current_app.config["MIN_PASSWORD_LENGTH"])
        if len(field.data or "") < minimum:
            raise ValidationError(f"The password must be at least {minimum} characters long.")


class LoginForm(FlaskForm):
    """Sign in with email and password."""

    email = EmailField("Email", validators=[InputRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=1024)])


class ConfirmForm(FlaskForm):
    """A bare form: its CSRF token is what confirms a destructive POST."""
