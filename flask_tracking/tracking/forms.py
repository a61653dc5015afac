"""Forms of the tracking blueprint."""

from __future__ import annotations

import uuid
from functools import cache
from zoneinfo import available_timezones

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    FieldList,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError

from flask_tracking.ingest.exclusions import parse_networks, parse_path_patterns
from flask_tracking.ingest.hit import storable
from flask_tracking.reports import experiments as experiment_rules
from flask_tracking.reports import funnels as funnel_rules
from flask_tracking.reports import goals as goal_rules
from flask_tracking.tracking.sites import MAX_RETENTION_DAYS, InvalidSiteURL, normalise_base_url

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
    # A text field with the zones as suggestions (a datalist: the browser searches it as you
    # type); the add form starts with the browser's own zone. Empty means UTC; a POST without
    # the field keeps an edited site's zone (the field keeps the object's value).
    timezone = StringField(
        "Time zone",
        description="Where your reports' days, weeks and months begin, e.g. Europe/Berlin.",
        validators=[Length(max=64)],
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
    )

    def validate_timezone(self, field: StringField) -> None:
        """Accept only a zone of the IANA time zone database (empty: UTC, for a new site
        added without the browser's zone)."""
        if not field.data:
            field.data = "UTC"
        elif field.data not in timezone_names():
            raise ValidationError("Choose a time zone from the list, e.g. Europe/Berlin or UTC.")

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

    retention_days = IntegerField(
        "Keep events for (days)",
        description="Older events are deleted every hour. Empty: the server's default.",
        validators=[Optional(), NumberRange(min=1, max=MAX_RETENTION_DAYS)],
    )

    umami_id = StringField(
        "Umami website id",
        description="Moving from Umami? Give the old website id (a UUID) and its trackers' "
        "events (POST /api/send) come here, with no change to your pages. Empty: none.",
        validators=[Optional(), Length(max=36)],
        filters=[lambda value: value.strip().lower() if isinstance(value, str) else value],
    )

    def validate_umami_id(self, field: StringField) -> None:
        """A UUID, not another site's."""
        if not field.data:
            field.data = None
            return
        try:
            field.data = str(uuid.UUID(field.data))
        except ValueError:
            raise ValidationError("A website id is a UUID, e.g. 2f0c4a5e-….") from None

    def validate_timezone(self, field: StringField) -> None:
        """Accept only a zone of the IANA time zone database: an edited site has one."""
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


class GoalForm(FlaskForm):
    """Add a goal to a site (the rules, and their messages, are reports/goals.py's). Made
    with prefix="goal": its fields share the settings page with the site's own."""

    name = StringField("Goal name", validators=[InputRequired(), Length(max=goal_rules.MAX_NAME)])
    kind = SelectField(
        "Counts",
        choices=lambda: [("page", "Visits to a page"), ("event", "A custom event")],
        validate_choice=False,
    )
    path = StringField(
        "Page path",
        description="Starts with /; * matches within one segment, ** across them, "
        "e.g. /signup/done or /blog/**.",
    )
    event = StringField("Event name", description="As your pages send it, e.g. Signup.")
    property = StringField("Property", description="Optional: count only events where…")
    property_value = StringField("is", description="…this property has this value.")
    revenue_property = StringField(
        "Revenue property", description="Optional: a numeric property holding the amount."
    )
    currency = StringField("Currency", description="ISO 4217 code, e.g. EUR.")
    definition: goal_rules.Goal | None = None

    def validate(self, extra_validators: object = None) -> bool:
        """Check the fields, then the goal they define; a bad definition names its field."""
        if not super().validate(extra_validators):
            return False
        try:
            # Only the chosen kind's fields: the others may hold what was typed before
            # switching kinds.
            if self.kind.data == "page":
                self.definition = goal_rules.make_goal(self.name.data, "page", path=self.path.data)
            else:
                self.definition = goal_rules.make_goal(
                    self.name.data,
                    self.kind.data,
                    event=self.event.data,
                    prop_key=self.property.data,
                    prop_value=self.property_value.data,
                    revenue_prop=self.revenue_property.data,
                    currency=self.currency.data,
                )
        except goal_rules.InvalidGoal as error:
            self.add_error(error.field, str(error))
            return False
        return True

    def add_error(self, name: str, message: str) -> None:
        """Show a message under the field it is about (the name field for the whole goal)."""
        field = self._fields.get(name) or self.name  # unprefixed names, as the rules say
        field.errors = [*field.errors, message]


class FunnelForm(FlaskForm):
    """Add a funnel: a name and up to 8 of the site's goals, in order (empty steps skipped).
    Made with prefix="funnel", like GoalForm."""

    name = StringField("Funnel name", validators=[InputRequired(), Length(max=goal_rules.MAX_NAME)])
    steps = FieldList(
        SelectField("Step", coerce=int, validate_choice=False),
        min_entries=funnel_rules.MAX_STEPS,
        max_entries=funnel_rules.MAX_STEPS,
    )
    across_visits = BooleanField(
        "Follow a visitor across their visits of the day",
        description="Without it, the steps must happen in one visit. A visitor cannot be "
        "followed from one day to the next: their cookieless id changes every day.",
    )

    def offer(self, goals: list[tuple[int, str]]) -> FunnelForm:
        """Offer the site's goals (id, name) in each step."""
        for step in self.steps:
            step.choices = [(0, "—"), *goals]
        return self

    def goal_ids(self) -> list[int]:
        """Return the chosen goals, in order, empty steps left out."""
        return [int(step.data) for step in self.steps if step.data]


class ExperimentForm(FlaskForm):
    """Add an experiment: a key, a name, variants (one per line, "name" or "name = weight",
    the control first), a primary goal and up to 5 secondary goals. It starts as a draft,
    or running from now. Made with prefix="experiment"."""

    key = StringField(
        "Key",
        validators=[InputRequired(), Length(max=64)],
        description="What your pages call it: flaskTracking.experiment('this-key', …).",
    )
    name = StringField("Name", validators=[InputRequired(), Length(max=goal_rules.MAX_NAME)])
    variants = TextAreaField(
        "Variants",
        validators=[InputRequired()],
        default="control = 50\nnew = 50",
        description="One per line, the control first: a name, or a name = weight "
        "(whole numbers; the shares are the weights over their sum).",
    )
    primary = SelectField("Primary goal", coerce=int, validate_choice=False)
    secondary = FieldList(
        SelectField("Secondary goal", coerce=int, validate_choice=False),
        min_entries=experiment_rules.MAX_SECONDARY,
        max_entries=experiment_rules.MAX_SECONDARY,
    )
    start_now = BooleanField("Start now", default=True)

    def offer(self, goals: list[tuple[int, str]]) -> ExperimentForm:
        """Offer the site's goals (id, name)."""
        self.primary.choices = [(0, "—"), *goals]
        for field in self.secondary:
            field.choices = [(0, "—"), *goals]
        return self

    def goal_ids(self) -> list[int]:
        """Return the chosen goals, the primary first, empty choices left out."""
        chosen = [self.primary.data, *(field.data for field in self.secondary)]
        return [int(goal_id) for goal_id in chosen if goal_id]

    def variant_pairs(self) -> list[tuple[str, int]]:
        """Return (name, weight) per non-empty line; a weight that is not a whole number is
        reported on the field (ValueError)."""
        pairs = []
        for line in (self.variants.data or "").splitlines():
            if not line.strip():
                continue
            name, equals, weight = line.rpartition("=")
            if not equals:
                pairs.append((line.strip(), 1))
                continue
            text = weight.strip()
            if not text.lstrip("-").isdigit() or not text.isascii():
                raise ValueError(f"{line.strip()!r}: the weight after = is a whole number.")
            pairs.append((name.strip(), int(text)))
        return pairs


class EraseForm(FlaskForm):
    """Erase visitors' data: one visitor id, or a page and a time range (the site's time)."""

    visitor_id = IntegerField("Visitor id (from the raw events)", validators=[Optional()])
    page = StringField("Or every visitor of the page", validators=[Optional(), Length(max=2048)])
    start = DateTimeLocalField("From", format="%Y-%m-%dT%H:%M", validators=[Optional()])
    end = DateTimeLocalField("To", format="%Y-%m-%dT%H:%M", validators=[Optional()])
