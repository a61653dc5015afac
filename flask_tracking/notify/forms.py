"""The forms of the Email reports and Alerts pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    FloatField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import Email, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from flask_tracking.notify.alerts import KINDS as RULE_KINDS
from flask_tracking.notify.channels import KINDS
from flask_tracking.notify.reports import WEEKDAYS


class ScheduleForm(FlaskForm):
    email = EmailField("Send to", validators=[InputRequired(), Email(), Length(max=254)])
    frequency = SelectField(
        "How often",
        choices={"weekly": "Weekly", "daily": "Daily", "monthly": "Monthly (on the 1st)"},
    )
    weekday = SelectField(
        "On (weekly)", choices={str(i): name for i, name in enumerate(WEEKDAYS)}, default="0"
    )
    hour = SelectField(
        "At (the site's time)", choices={str(h): f"{h:02d}:00" for h in range(24)}, default="8"
    )


class ChannelForm(FlaskForm):
    kind = SelectField("Kind", choices=KINDS)
    name = StringField("Name", validators=[Optional(), Length(max=80)])
    target = StringField(
        "Address or URL",
        validators=[InputRequired(), Length(max=2000)],
        description="An email address, a webhook URL, or a Slack incoming-webhook URL.",
    )


class RuleForm(FlaskForm):
    kind = SelectField("When", choices=RULE_KINDS)
    threshold = FloatField(
        "Threshold (N visitors, N conversions, or X %)",
        validators=[InputRequired(), NumberRange(min=0, max=1e9)],
        default=100,
    )
    hours = IntegerField(
        "Window (hours, for drop, change and goal)",
        validators=[InputRequired(), NumberRange(min=1, max=168)],
        default=1,
    )
    goal = SelectField("Goal (goal rules)", choices=[], validate_choice=False)
    below = BooleanField("Fire when conversions fall below the threshold (goal rules)")
    experiment = SelectField("Experiment (experiment rules)", choices=[], validate_choice=False)
    consecutive = IntegerField(
        "Readings over the threshold in a row before it fires (one a minute)",
        validators=[InputRequired(), NumberRange(min=1, max=60)],
        default=2,
    )
    quiet_minutes = IntegerField(
        "Quiet period after it fires (minutes)",
        validators=[InputRequired(), NumberRange(min=0, max=10080)],
        default=60,
    )
    channels = SelectMultipleField(
        "Send to",
        coerce=int,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        validators=[InputRequired(message="Choose at least one channel.")],
    )
