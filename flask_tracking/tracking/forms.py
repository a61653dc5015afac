"""Forms of the tracking blueprint."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from flask_tracking.tracking.sites import InvalidSiteURL, normalise_base_url


class SiteForm(FlaskForm):
    """Add or edit a site."""

    base_url = StringField("Site address", validators=[InputRequired(), Length(max=2048)])
    name = StringField("Name", validators=[Optional(), Length(max=120)])

    def validate_base_url(self, field: StringField) -> None:
        """Accept only an http(s) address with a host."""
        try:
            normalise_base_url(field.data or "")
        except InvalidSiteURL as error:
            raise ValidationError(str(error)) from None
