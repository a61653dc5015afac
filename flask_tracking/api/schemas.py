"""The API's request and response models: they validate requests and, through spec.py, are the
OpenAPI document's schemas. Timestamps are aware UTC datetimes, serialised ISO 8601 with "Z".

Request models forbid unknown fields, so a misspelt parameter is a 400 naming it rather than
a silently ignored option. Semantic rules that JSON Schema cannot express (a site address that
normalises, a network list, a custom period's dates) are then checked by the same functions
the web forms and the dashboard use, and answered with the same 400 envelope.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from flask_tracking.ingest.hit import MAX_EVENT_LENGTH, MAX_REFERRER_LENGTH
from flask_tracking.ingest.payload import MAX_PROP_KEY, MAX_PROPS
from flask_tracking.reports import experiments as experiment_rules
from flask_tracking.reports import goals as goal_rules
from flask_tracking.reports.dimensions import MAX_FILTER_VALUE, MAX_FILTERS
from flask_tracking.reports.params import MAX_EVENT_NAME
from flask_tracking.reports.ranges import as_utc, parse_date
from flask_tracking.reports.stats import MAX_LIMIT, MAX_SEARCH
from flask_tracking.tracking.forms import timezone_names
from flask_tracking.tracking.sites import MAX_RETENTION_DAYS

UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]


def _whole_number(value: Any) -> Any:
    """A query string's number: ASCII digits only (not "1.0", "1e3", "٣" or " 1")."""
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,9}", value):
        raise ValueError("Must be a whole number.")
    return value


def _true_or_false(value: Any) -> Any:
    """A query string's boolean: exactly "true" or "false", as the document says."""
    if isinstance(value, str):
        if value not in ("true", "false"):
            raise ValueError("Must be true or false.")
        return value == "true"
    return value


# Query string values are text: these read them exactly as documented, not leniently.
QueryInt = Annotated[int, BeforeValidator(_whole_number)]
QueryBool = Annotated[bool, BeforeValidator(_true_or_false)]


def _moment(value: Any) -> Any:
    """A body's date and time: ISO 8601 text with its offset (bodies are read strictly, and
    JSON has no date type)."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                "Must be an ISO 8601 date and time, e.g. 2026-03-10T08:00:00Z."
            ) from None
        if moment.tzinfo is None:
            raise ValueError("Must have a timezone offset, e.g. 2026-03-10T08:00:00Z.")
        return moment
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_moment)]
# A row's id: the databases' INTEGER, so a larger number is refused rather than overflowing.
RowId = Annotated[int, Field(ge=1, le=2**31 - 1)]


def _calendar_day(value: str) -> str:
    """A YYYY-MM-DD that is a real day (not 2026-02-30)."""
    parse_date(value)  # raises InvalidRange, a ValueError, with the dashboard's message
    return value


Day = Annotated[
    str,
    Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", json_schema_extra={"format": "date"}),
    AfterValidator(_calendar_day),
]
Period = Literal[
    "today", "yesterday", "7d", "30d", "month", "last_month", "year", "12mo", "all", "custom"
]
Metric = Literal[
    "visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"
]
ChartMetric = Literal["visitors", "visits", "pageviews"]
DimensionName = Literal[
    "page",
    "entry_page",
    "exit_page",
    "source",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "country",
    "region",
    "city",
    "browser",
    "os",
    "device",
    "screen",
    "event",
]
BreakdownDimension = Literal[DimensionName, "goal"]
Sort = Literal["visitors", "visits", "pageviews", "events"]
FILTER_PATTERN = (
    "^(" + "|".join(get_args(DimensionName)) + "):(is|is_not|contains|not_contains):|^goal:is:"
)
PropValue = str | int | float | bool


def _zones(schema: dict[str, Any]) -> None:
    schema["enum"] = list(timezone_names())


TimeZoneName = "TimeZone"  # its component in the OpenAPI document (see spec._shared_enums)
TimeZone = Annotated[
    str,
    Field(
        max_length=64,
        description="An IANA time zone: where the site's days, weeks and months begin.",
        json_schema_extra=_zones,
    ),
]


def _ip_address(value: str) -> str:
    """An IPv4 or IPv6 address, written as the standard library writes it."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("Must be an IPv4 or IPv6 address.") from None


# Text checked by the standard library (pydantic's IP types would take `false` for 0.0.0.0).
IpAddress = Annotated[
    str,
    Field(max_length=64, json_schema_extra={"anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}),
    AfterValidator(_ip_address),
]
Lines = Annotated[list[Annotated[str, Field(max_length=2048)]], Field(max_length=1000)]


class Input(BaseModel):
    """A request's query string or body: unknown names are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# Errors -------------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    """What went wrong."""

    status: int = Field(description="The HTTP status, repeated.")
    code: str = Field(description="A stable machine-readable code, e.g. `invalid_request`.")
    message: str = Field(description="A sentence for people.")
    details: dict[str, Any] = Field(description="For a 400: each bad field and its problem.")


class ErrorEnvelope(BaseModel):
    """The body of every 4xx and 5xx answer of the API."""

    error: ErrorBody


# Sites --------------------------------------------------------------------------------------


RetentionDays = Annotated[
    int | None,
    Field(ge=1, le=MAX_RETENTION_DAYS, description="Days of events kept; null: the default."),
]


class SiteOut(BaseModel):
    """A site, as its owner or a member sees it."""

    id: int
    role: Literal["owner", "admin", "editor", "viewer"] = Field(
        description="The key's user's role on the site (what the key may do there)."
    )
    name: str
    base_url: str
    display_name: str
    timezone: str
    excluded_ips: list[str] = Field(description="Addresses and CIDR ranges never counted.")
    excluded_paths: list[str] = Field(description="Path patterns never counted, e.g. /admin/*.")
    retention_days: int | None = Field(
        description="Days of events kept; null: the server's default (RETENTION_DAYS)."
    )
    umami_id: str | None = Field(
        description="The website id (a UUID) Umami's trackers name it by (POST /api/send); "
        "null: none."
    )
    created_at: UtcDateTime


class SiteList(BaseModel):
    """The sites a key may see, oldest first."""

    data: list[SiteOut]


class SiteCreate(Input):
    """A new site; fields are checked exactly as the web form checks them."""

    base_url: str = Field(
        min_length=1, max_length=2048, description="The site's address, e.g. https://example.com"
    )
    name: str = Field("", max_length=120)
    timezone: TimeZone = "UTC"
    excluded_ips: Lines = Field(default_factory=list)
    excluded_paths: Lines = Field(default_factory=list)
    retention_days: RetentionDays = None


class SiteUpdate(Input):
    """The fields to change; absent ones keep their value."""

    base_url: str | None = Field(None, min_length=1, max_length=2048)
    name: str | None = Field(None, max_length=120)
    timezone: TimeZone | None = None
    excluded_ips: Lines | None = None
    excluded_paths: Lines | None = None
    retention_days: RetentionDays = Field(
        None, description="Sent as null: back to the server's default; absent: unchanged."
    )
    umami_id: str | None = Field(
        None,
        pattern=r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$",
        description="The old Umami website id, so Umami's trackers send here; null: none; "
        "absent: unchanged. Another site's id is a 409.",
    )


# Stats --------------------------------------------------------------------------------------


class GoalIn(Input):
    """A goal: `kind` "page" with a `path` pattern (`*` within a segment, `**` across), or
    "event" with an `event` name and optionally a property condition and a revenue property."""

    name: str = Field(min_length=1, max_length=goal_rules.MAX_NAME)
    kind: Literal["page", "event"]
    path: str = Field("", max_length=goal_rules.MAX_PATTERN, description="e.g. /blog/**")
    event: str = Field("", max_length=goal_rules.MAX_EVENT, description="e.g. Signup")
    property: str = Field("", max_length=goal_rules.MAX_PROPERTY, description="e.g. plan")
    property_value: str = Field("", max_length=goal_rules.MAX_PROPERTY, description="e.g. pro")
    revenue_property: str = Field(
        "", max_length=goal_rules.MAX_PROPERTY, description="A numeric property, e.g. amount."
    )
    currency: str = Field("", max_length=3, description="ISO 4217, e.g. EUR (with revenue).")


class GoalOut(BaseModel):
    """A goal of a site."""

    id: int
    name: str
    kind: Literal["page", "event"]
    path: str
    event: str
    property: str
    property_value: str
    revenue_property: str
    currency: str
    description: str
    created_at: UtcDateTime


class GoalList(BaseModel):
    """A site's goals, in the order they were defined."""

    data: list[GoalOut]


class ReportIn(Input):
    """A scheduled email report of the site to one address. A member's address starts at
    once; any other address gets a link to confirm first."""

    email: str = Field(min_length=3, max_length=254, description="Where to send it.")
    frequency: Literal["daily", "weekly", "monthly"]
    weekday: int = Field(0, ge=0, le=6, description="Monday = 0 (weekly reports only).")
    hour: int = Field(8, ge=0, le=23, description="The hour of the site's time zone.")


class ReportOut(BaseModel):
    """A scheduled email report."""

    id: int
    email: str
    frequency: Literal["daily", "weekly", "monthly"]
    weekday: int
    hour: int
    status: Literal["active", "awaiting_confirmation"]
    schedule: str = Field(description="In words, e.g. every Monday at 08:00.")
    created_at: UtcDateTime


class ReportList(BaseModel):
    """A site's scheduled email reports."""

    data: list[ReportOut]


AlertKind = Literal["spike", "drop", "change", "goal", "experiment"]
ChannelKind = Literal["email", "webhook", "slack"]


class AlertChannelIn(Input):
    """Where alerts go: an email address, a webhook URL (signed JSON) or a Slack incoming
    webhook URL. URLs on loopback or private networks are refused unless the operator allows
    them (ALERTS_ALLOW_PRIVATE_TARGETS)."""

    kind: ChannelKind
    name: str = Field("", max_length=80)
    target: str = Field(min_length=3, max_length=2000, description="The address or URL.")


class AlertChannelOut(BaseModel):
    """An alert channel."""

    id: int
    kind: ChannelKind
    name: str
    target: str
    secret: str = Field(
        description="A webhook's signing secret: the Flask-Tracking-Signature header is "
        "t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.<body>'>. Empty for other kinds."
    )
    created_at: UtcDateTime


class AlertRuleIn(Input):
    """An alert rule: spike (visitors in the last 5 minutes >= threshold), drop (visitors in
    the last `hours` < threshold), change (visitors in the last `hours` against the same hours
    a week before, by ±threshold %), goal (conversions of the goal named `subject` in the last
    `hours` >= threshold, or < with `below`), experiment (the experiment keyed `subject` reaches
    significance or shows a sample-ratio mismatch)."""

    kind: AlertKind
    threshold: float = Field(0, ge=0, le=1e9)
    hours: int = Field(1, ge=1, le=168)
    subject: str = Field("", max_length=120, description="The goal's name or experiment's key.")
    below: bool = False
    consecutive: int = Field(2, ge=1, le=60, description="Readings over in a row to fire.")
    quiet_minutes: int = Field(60, ge=0, le=10080, description="No new firing for this long.")
    channels: list[int] = Field(min_length=1, max_length=20, description="Channel ids.")


class AlertRuleOut(BaseModel):
    """An alert rule and its state."""

    id: int
    kind: AlertKind
    description: str
    threshold: float
    hours: int
    subject: str
    below: bool
    consecutive: int
    quiet_minutes: int
    channels: list[int]
    firing: bool
    last_value: float | None
    checked_at: UtcDateTime | None
    fired_at: UtcDateTime | None
    created_at: UtcDateTime


class AlertDeliveryOut(BaseModel):
    """One message to one channel and how its delivery went."""

    id: int
    channel_id: int
    rule_id: int | None
    event: Literal["fired", "recovered", "test"]
    status: Literal["pending", "sent", "failed"]
    attempts: int
    last_error: str
    created_at: UtcDateTime
    sent_at: UtcDateTime | None


class AlertsOut(BaseModel):
    """A site's alert rules, channels and latest deliveries (newest first)."""

    rules: list[AlertRuleOut]
    channels: list[AlertChannelOut]
    deliveries: list[AlertDeliveryOut]


class FunnelIn(Input):
    """A funnel: 2 to 8 of the site's goals (ids), in order."""

    name: str = Field(min_length=1, max_length=goal_rules.MAX_NAME)
    steps: list[RowId] = Field(description="The goals' ids, in order: 2 to 8.")
    across_visits: bool = Field(
        False,
        description="Follow the steps across the visits of a visitor-day (the cookieless "
        "visitor id lasts one UTC day) rather than within one visit.",
    )


class FunnelStepOut(BaseModel):
    """A step of a funnel: a goal."""

    goal_id: int
    name: str
    description: str


class FunnelOut(BaseModel):
    """A funnel of a site."""

    id: int
    name: str
    across_visits: bool
    steps: list[FunnelStepOut]
    created_at: UtcDateTime


class FunnelList(BaseModel):
    """A site's funnels, in the order they were defined."""

    data: list[FunnelOut]


class VariantIn(Input):
    """A variant and its share of the traffic (its weight over the sum of the weights)."""

    name: str = Field(min_length=1, max_length=experiment_rules.MAX_VARIANT_NAME)
    weight: int = Field(50, description="A whole number from 1 to 10000.")


class ExperimentIn(Input):
    """An A/B experiment: 2 to 5 variants (the control first), the primary goal and up to 5
    secondary goals (ids), a window and a status."""

    key: str = Field(
        min_length=1,
        max_length=64,
        description="What pages and servers call it, in exposures: lower-case letters, "
        "digits, '-', '_', '.'.",
    )
    name: str = Field(min_length=1, max_length=goal_rules.MAX_NAME)
    variants: list[VariantIn] = Field(description="2 to 5; the first is the control.")
    primary_goal: RowId
    secondary_goals: list[RowId] = Field([], description="Up to 5 more goals' ids.")
    start: Moment | None = Field(None, description="Needed unless a draft.")
    end: Moment | None = None
    status: Literal["draft", "running", "stopped"] = "draft"


class VariantOut(BaseModel):
    """A variant of an experiment."""

    name: str
    weight: int
    share: float = Field(description="Percent of the traffic the weights give it.")


class GoalRef(BaseModel):
    """A goal, by id and name."""

    id: int
    name: str


class ExperimentOut(BaseModel):
    """An experiment of a site."""

    id: int
    key: str
    name: str
    status: Literal["draft", "running", "stopped"]
    variants: list[VariantOut]
    primary_goal: GoalRef
    secondary_goals: list[GoalRef]
    start: UtcDateTime | None
    end: UtcDateTime | None
    created_at: UtcDateTime


class ExperimentList(BaseModel):
    """A site's experiments, in the order they were defined."""

    data: list[ExperimentOut]


class IntervalOut(BaseModel):
    """A two-sided interval."""

    low: float
    high: float


class ArmOut(BaseModel):
    """A goal in one variant."""

    variant: str
    exposed: int = Field(description="Visitors who saw this variant (and no other).")
    converted: int = Field(description="Of them, visitors who converted after exposure.")
    rate: float = Field(description="converted / exposed, in percent.")
    conversions: int
    revenue: float


class ComparisonOut(BaseModel):
    """A treatment against the control on one goal (nulls where the counts say nothing)."""

    variant: str
    difference: float = Field(description="Treatment rate - control rate, in points.")
    difference_interval: IntervalOut | None = Field(description="Fixed-sample, in points.")
    uplift: float | None = Field(description="Relative to the control's rate, in percent.")
    uplift_interval: IntervalOut | None = Field(description="Fixed-sample, in percent.")
    p_value: float | None = Field(description="Two-proportion z-test, fixed sample.")
    adjusted_p_value: float | None = Field(
        description="Holm-adjusted over every (variant, goal) comparison of the experiment."
    )
    sequential_p_value: float | None = Field(
        description="Always valid (mSPRT): may be read at any time while the test runs."
    )
    sequential_interval: IntervalOut | None = Field(description="Confidence sequence, points.")
    chance_to_beat: float | None = Field(description="Bayesian P(treatment > control), percent.")
    uplift_credible: IntervalOut | None = Field(description="Bayesian, relative, in percent.")
    minimum_detectable: float | None = Field(
        description="Smallest difference (points) this sample detects with 80 % power."
    )


class GoalOutcomeOut(BaseModel):
    """One goal of an experiment: every variant's numbers, every treatment's comparison."""

    goal: str
    primary: bool
    arms: list[ArmOut]
    comparisons: list[ComparisonOut]


class ExperimentResultOut(BaseModel):
    """An experiment's results over its window (to now while it runs)."""

    site_id: int
    experiment: ExperimentOut
    start: UtcDateTime | None
    end: UtcDateTime | None
    exposed: dict[str, int] = Field(description="Visitors per variant.")
    mixed: int = Field(description="Visitors exposed to several variants, left out.")
    sample_ratio_p_value: float | None
    sample_ratio_mismatch: bool = Field(
        description="The split is off the weights beyond chance (p < 0.001): assignment or "
        "tracking is broken, and no other number can be trusted."
    )
    alpha: float
    goals: list[GoalOutcomeOut]


class RangeQuery(Input):
    """Which period, in the site's time zone."""

    period: Period = Field(
        "30d", description="A preset; `custom` needs `from` and `to` (inclusive local days)."
    )
    from_: Day | None = Field(None, alias="from", description="First day (YYYY-MM-DD).")
    to: Day | None = Field(None, description="Last day, included (YYYY-MM-DD).")

    @model_validator(mode="after")
    def _days_only_for_custom(self) -> RangeQuery:
        """Dates with a preset would be silently ignored: say so instead."""
        if self.period != "custom" and (self.from_ is not None or self.to is not None):
            raise ValueError("`from` and `to` are read only with period=custom.")
        return self


Filters = Annotated[
    list[Annotated[str, Field(pattern=FILTER_PATTERN, max_length=MAX_FILTER_VALUE + 40)]],
    Field(
        max_length=MAX_FILTERS,
        description="`dimension:operator:value`, repeated to combine with AND; "
        "e.g. `country:is:FR`, `page:contains:/blog`, `page:not_contains:/admin`, "
        "`source:is:` (no source), `country:is:FR|DE` (any of several values, separated by "
        "`|`; a bar in a value is written `\\|`), `goal:is:Signup` (visitors who converted to "
        "the site's goal named Signup).",
    ),
]


class StatsQuery(RangeQuery):
    """A period and filters, as on the dashboard."""

    filter: Filters = Field(default_factory=list)
    imported: bool = Field(
        True,
        description="Add the days imported as aggregates (Plausible's export) when no filter "
        "is set; false leaves them out. A filter always leaves them out.",
    )


class AggregateQuery(StatsQuery):
    """Which metrics, and whether to compare with the previous period."""

    metrics: list[Metric] = Field(
        default_factory=list, max_length=6, description="Metrics to return (default: all)."
    )
    compare: QueryBool = Field(True, description="Also return the previous period's values.")


class TimeseriesQuery(StatsQuery):
    """Which metric per bucket."""

    metric: ChartMetric = "visitors"
    compare: QueryBool = Field(True, description="Also return the previous period's values.")


class BreakdownQuery(StatsQuery):
    """One dimension, ranked and paginated."""

    dimension: BreakdownDimension = Field(
        description="A dimension, or `goal`: the site's goals with their unique conversions "
        "(`visitors`), total conversions (`events`) and conversion rate (`share`)."
    )
    limit: QueryInt = Field(10, ge=1, le=MAX_LIMIT)
    offset: QueryInt = Field(0, ge=0, le=1_000_000)
    sort: Sort = "visitors"
    search: str = Field(
        "",
        max_length=MAX_SEARCH,
        description="Only the values whose text (or, for countries, name) contains this, "
        "case-insensitive; `total` counts them.",
    )


class PropertiesQuery(StatsQuery):
    """A custom event's most frequent property values."""

    event: str = Field(min_length=1, max_length=MAX_EVENT_NAME)
    limit: QueryInt = Field(20, ge=1, le=MAX_LIMIT)


class PeriodOut(BaseModel):
    """A resolved period: [start, end) in UTC, from local midnights of the site's zone."""

    preset: str
    start: UtcDateTime
    end: UtcDateTime
    timezone: str
    bucket: Literal["hour", "day", "week", "month"]


class MetricValue(BaseModel):
    """A metric, the previous period's value, and the change (percent; points for rates)."""

    value: int | float
    previous: int | float | None
    change: float | None


class AggregateResult(BaseModel):
    """The period's metrics."""

    site_id: int
    period: PeriodOut
    previous_period: PeriodOut | None
    filters: list[str]
    results: dict[str, MetricValue]


class PointOut(BaseModel):
    """One bucket."""

    start: UtcDateTime
    value: int
    previous: int | None


class TimeseriesResult(BaseModel):
    """A metric per bucket; `previous` is the previous period's bucket of the same index."""

    site_id: int
    period: PeriodOut
    filters: list[str]
    metric: str
    bucket: str
    points: list[PointOut]


class BreakdownRow(BaseModel):
    """One value of the dimension."""

    value: str = Field(description="The stored value; empty for 'not set'.")
    label: str = Field(
        description="The value as the dashboard shows it: a country's name for its code, "
        "'(not set)', 'Direct / None' or 'Unknown' for an empty value."
    )
    visitors: int
    visits: int
    pageviews: int
    events: int
    bounce_rate: float
    visit_duration: float
    share: float = Field(description="Percent of the period's visitors.")


class BreakdownResult(BaseModel):
    """A page of a ranked dimension."""

    site_id: int
    period: PeriodOut
    filters: list[str]
    dimension: str
    total: int = Field(description="How many distinct values there are.")
    limit: int
    offset: int
    next_offset: int | None
    results: list[BreakdownRow]


class PropertyRow(BaseModel):
    """One property value of the event."""

    property: str
    value: str
    visitors: int
    events: int


class PropertiesResult(BaseModel):
    """A custom event's property values, most frequent first."""

    site_id: int
    period: PeriodOut
    filters: list[str]
    event: str
    results: list[PropertyRow]


class RealtimeResult(BaseModel):
    """Visitors seen in the last few minutes."""

    site_id: int
    visitors: int
    window_seconds: int
    at: UtcDateTime


# Events -------------------------------------------------------------------------------------


class EventFields(Input):
    """What an event says: its name, page, referrer, screen width and properties."""

    name: str = Field("pageview", min_length=1, max_length=MAX_EVENT_LENGTH)
    url: str = Field(
        min_length=1,
        max_length=2048,
        pattern="^\\s*[Hh][Tt][Tt][Pp][Ss]?://",
        description="The page's absolute http(s) URL.",
    )
    referrer: str | None = Field(None, max_length=MAX_REFERRER_LENGTH)
    width: int | None = Field(None, ge=0, le=100_000, description="Screen width in pixels.")
    props: dict[Annotated[str, Field(min_length=1, max_length=MAX_PROP_KEY)], PropValue] | None = (
        Field(None, max_length=MAX_PROPS)
    )


class ServerEvent(EventFields):
    """An event sent by a server on behalf of a visitor: the fields of /api/event (without
    `site`, which is in the path) plus the visitor's IP address and user agent."""

    ip: IpAddress = Field(description="The visitor's IPv4 or IPv6 address (location, sessions).")
    user_agent: str = Field(min_length=1, max_length=1024, description="The visitor's user agent.")


class CollectedEvent(EventFields):
    """An event as the tracker script sends it to /api/event, for the site `site`."""

    site: int | Annotated[str, Field(pattern="^[0-9]{1,10}$")] = Field(
        description="The site's id (a number, or its digits as a string)."
    )


class Visit(Input):
    """The query string of the image pixel, /sites/{site_id}/visit."""

    url: str | None = Field(
        None,
        max_length=2048,
        description="The page's absolute http(s) URL; the Referer header when left out.",
    )
    ref: str | None = Field(None, max_length=MAX_REFERRER_LENGTH, description="The referrer.")
    event: str | None = Field(
        None, max_length=MAX_EVENT_LENGTH, description="The event's name (default pageview)."
    )


class EventAccepted(BaseModel):
    """The event is durably queued (`accepted`), or deliberately not counted (`dropped`)."""

    status: Literal["accepted", "dropped"]
    reason: str | None = Field(
        description="Why it was dropped: bot, prefetch, referrer_spam, excluded_ip, "
        "excluded_path or rate_limited."
    )


class ServerEventBatch(Input):
    """Up to 100 server-side events at once (what flask_tracking.client sends)."""

    events: list[ServerEvent] = Field(min_length=1, max_length=100)


class EventsAccepted(BaseModel):
    """Each event of a batch, in order: queued, or deliberately not counted."""

    results: list[EventAccepted]


# Export -------------------------------------------------------------------------------------


class ExportQuery(RangeQuery):
    """A period of raw events, a page at a time."""

    limit: QueryInt = Field(100, ge=1, le=1000)
    cursor: str | None = Field(
        None, max_length=200, description="`next_cursor` of the previous page."
    )


class DownloadQuery(RangeQuery):
    """A period of raw events as one file."""

    format: Literal["csv", "ndjson"] = "ndjson"


class RawEvent(BaseModel):
    """One stored event. The 64-bit visitor and session ids are strings, as JavaScript numbers
    cannot hold them exactly."""

    id: int
    date: UtcDateTime
    name: str
    url: str
    pathname: str | None
    hostname: str | None
    referrer: str | None
    referrer_source: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_term: str | None
    utm_content: str | None
    country_code: str | None
    region: str | None
    city: str | None
    browser: str | None
    browser_version: str | None
    os: str | None
    os_version: str | None
    device: str | None
    screen_size: str | None
    screen_width: int | None
    visitor_id: str | None
    session_id: str | None
    props: dict[str, Any]


class EventPage(BaseModel):
    """A page of raw events, oldest first."""

    data: list[RawEvent]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class StepResult(BaseModel):
    """What reached one step of a funnel in the period."""

    step: int = Field(description="1 for the entry.")
    goal: str
    visits: int = Field(description="Visits (or visitor-days, across_visits) that reached it.")
    visitors: int
    of_entered: float = Field(description="Percent of the entering visits.")
    of_previous: float | None = Field(description="Percent of the previous step's visits.")
    dropped: int | None = Field(description="The previous step's visits that did not reach it.")
    median_seconds: float | None = Field(description="Median time from the previous step.")


class FunnelResultOut(BaseModel):
    """A funnel and who went through it, in order, in the period."""

    site_id: int
    period: PeriodOut
    filters: list[str]
    funnel: FunnelOut
    converted: float = Field(description="Percent of the entering visits that reached the end.")
    steps: list[StepResult]
