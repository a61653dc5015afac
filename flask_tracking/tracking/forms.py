"""Forms of the tracking blueprint."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from flask_tracking.ingest.exclusions import parse_networks, parse_path_patterns
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


class SiteSettingsForm(SiteForm):
    """Edit a site, including what its collector ignores."""

    excluded_ips = TextAreaField(
        "Excluded IP addresses",
        description="One address or CIDR range per line, e.g. 203.0.113.0/24 or 2001:db8::/32.",
        validators=[Optional(), Length(max=20_000)],
    )
    excluded_paths = TextAreaField(
        "Excluded paths",
        description="One pattern per line, starting with /; * matches anything, e.g. /admin/*.",
        validators=[Optional(), Length(max=20_000)],
    )

    def validate_excluded_ips(self, field: TextAreaField) -> None:
        """Every line must be an address or a network."""
        try:
            parse_networks(field.data or "")
        except ValueError as error:
            raise ValidationError(str(error)) from None

    def validate_excluded_paths(self, field: TextAreaField) -> None:
        """Every line must be a path pattern."""
        try:
            parse_path_patterns(field.data or "")
        except ValueError as error:
            raise ValidationError(str(error)) from None
