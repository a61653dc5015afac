"""The form that schedules a report."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField
from wtforms.validators import Email, InputRequired, Length

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
