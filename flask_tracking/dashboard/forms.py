"""Forms of the dashboard: creating a shared link, and opening a password-protected one."""

from __future__ import annotations

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired, Length, Optional, ValidationError


class ShareForm(FlaskForm):
    """Create a shared link, optionally protected by a password."""

    name = StringField(
        "Name (for you, e.g. who it is for)", validators=[Optional(), Length(max=120)]
    )
    password = PasswordField("Password (optional)", validators=[Optional(), Length(max=1024)])

    def validate_password(self, field: PasswordField) -> None:
        """A password, when given, is as long as an account's must be."""
        minimum = int(current_app.config["MIN_PASSWORD_LENGTH"])
        if field.data and len(field.data) < minimum:
            raise ValidationError(f"The password must be at least {minimum} characters long.")


class UnlockForm(FlaskForm):
    """The password of a protected shared link."""

    password = PasswordField("Password", validators=[InputRequired(), Length(max=1024)])
