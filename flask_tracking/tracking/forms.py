"""Forms of the tracking blueprint."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from flask_tracking.ingest.exclusions import parse_networks, parse_path_patterns
from flask_tracking.ingest.hit import storable
from flask_tracking.tracking.sites import InvalidSiteURL, normalise_base_url

# Present in the system's zone database but no place's time: "localtime" is whatever the
# server is set to, "Factory" and "posixrules" are tzdata internals.
_NOT_PLACES = frozenset({"localtime", "Factory", "posixrules"})


@cache
def timezone_names() -> tuple[str, ...]:
    """Return the IANA zone names a site may use, sorted (read once: it walks the disk)."""
    return tuple(sorted(available_timezones() - _NOT_PLACES))


def storable_text(_form: FlaskForm, field: StringField) -> None:
    """A field validator: refuse what no page can show or column store (control characters,
    lone surrogates)."""
    if field.data and not storable(field.data):
        raise ValidationError(f"The {field.label.text.lower()} may not contain control characters.")


class SiteForm(FlaskForm):
    """Add or edit a site."""

    base_url = StringField("Site address", validators=[InputRequired(), Length(max=2048)])
    name = StringField("Name", validators=[Optional(), Length(max=120), storable_text])

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

    # Checked in validate_timezone rather than against the choices, for a clearer message;
    # a POST without the field keeps the site's zone (SelectField leaves the object's value).
    timezone = SelectField(
        "Time zone",
        description="Where your reports' days, weeks and months begin, e.g. Europe/Berlin.",
        choices=lambda: [(name, name) for name in timezone_names()],
        validate_choice=False,
    )

    def validate_timezone(self, field: SelectField) -> None:
        """Accept only a zone of the IANA time zone database."""
        if field.data not in timezone_names():
            raise ValidationError("Choose a time zone from the list, e.g. Europe/Berlin or UTC.")

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
