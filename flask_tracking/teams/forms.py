"""Forms of the members page."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField
from wtforms.validators import Email, InputRequired, Length

from flask_tracking.tracking import access

ROLE_CHOICES = {role: access.ROLE_LABELS[role] for role in access.MEMBER_ROLES}
MEMBER_CHOICES = {**{role: role.capitalize() for role in access.MEMBER_ROLES}, "remove": "Remove"}


class InviteForm(FlaskForm):
    """Invite an address with a role."""

    email = EmailField("Email", validators=[InputRequired(), Email(), Length(max=254)])
    role = SelectField("Role", choices=ROLE_CHOICES, default=access.VIEWER)


class MemberForm(FlaskForm):
    """A member's new role, or their removal."""

    role = SelectField("Role", choices=MEMBER_CHOICES)


class TransferForm(FlaskForm):
    """The member who becomes the owner."""

    user_id = SelectField("New owner", coerce=int, validators=[InputRequired()])
