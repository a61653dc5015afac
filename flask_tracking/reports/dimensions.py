"""What a report can be broken down and filtered by: an allow-list, and filters parsed from text.

Every name a user can send (dimension, operator, metric) is looked up here; anything else is an
InvalidQuery, which views answer with a 400. Column objects are chosen from this table, never
built from user text, so no user value ever reaches SQL except as a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["event", "session"]
Operator = Literal["is", "is_not", "contains"]

OPERATORS: tuple[Operator, ...] = ("is", "is_not", "contains")
OPERATOR_LABELS = {"is": "is", "is_not": "is not", "contains": "contains"}
MAX_FILTERS = 10
MAX_FILTER_VALUE = 2048
# How "no value" (direct traffic, unknown country, …) is stored in rollups and sent in filters.
NONE = ""


class InvalidQuery(ValueError):
    """A report was asked for something not on the allow-list; the message says what."""


@dataclass(frozen=True, slots=True)
class Dimension:
    """A breakdown: its name in URLs, its column, and whether it belongs to events or sessions."""

    name: str
    label: str
    column: str
    level: Level
    none_label: str = "(not set)"


_DIMENSIONS = (
    Dimension("page", "Page", "pathname", "event"),
    Dimension("entry_page", "Entry page", "entry_page", "session"),
    Dimension("exit_page", "Exit page", "exit_page", "session"),
    Dimension("source", "Source", "referrer_source", "session", "Direct / None"),
    Dimension("referrer", "Referrer", "referrer", "session", "Direct / None"),
    Dimension("utm_source", "UTM source", "utm_source", "session"),
    Dimension("utm_medium", "UTM medium", "utm_medium", "session"),
    Dimension("utm_campaign", "UTM campaign", "utm_campaign", "session"),
    Dimension("country", "Country", "country_code", "session", "Unknown"),
    Dimension("region", "Region", "region", "session", "Unknown"),
    Dimension("city", "City", "city", "session", "Unknown"),
    Dimension("browser", "Browser", "browser", "session", "Unknown"),
    Dimension("os", "Operating system", "os", "session", "Unknown"),
    Dimension("device", "Device", "device", "session", "Unknown"),
    Dimension("screen", "Screen size", "screen_size", "session", "Unknown"),
    Dimension("event", "Custom event", "event", "event"),
)
DIMENSIONS: dict[str, Dimension] = {d.name: d for d in _DIMENSIONS}
SESSION_DIMENSIONS = tuple(d for d in _DIMENSIONS if d.level == "session")

METRICS = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration")
CHART_METRICS = ("visitors", "visits", "pageviews")


def dimension(name: str) -> Dimension:
    """Return the dimension called `name`, or raise InvalidQuery naming the allowed ones."""
    try:
        return DIMENSIONS[name]
    except KeyError:
        raise InvalidQuery(
            f"Unknown dimension {name!r}; choose one of {', '.join(DIMENSIONS)}."
        ) from None


def metric(name: str, allowed: tuple[str, ...] = METRICS) -> str:
    """Return `name` if it is an allowed metric, or raise InvalidQuery."""
    if name not in allowed:
        raise InvalidQuery(f"Unknown metric {name!r}; choose one of {', '.join(allowed)}.")
    return name


@dataclass(frozen=True, slots=True)
class Filter:
    """Keep only what has `dimension` `operator` `value` (an empty value means "not set")."""

    dimension: Dimension
    operator: Operator
    value: str

    @property
    def text(self) -> str:
        """Return the filter as it is written in a URL: dimension:operator:value."""
        return f"{self.dimension.name}:{self.operator}:{self.value}"

    @property
    def label(self) -> str:
        """Return the filter as a person reads it, e.g. "Country is FR"."""
        shown = self.value if self.value != NONE else self.dimension.none_label
        return f"{self.dimension.label} {OPERATOR_LABELS[self.operator]} {shown}"


def parse_filter(text: str) -> Filter:
    """Parse "dimension:operator:value" (the value may itself contain colons)."""
    parts = text.split(":", 2)
    if len(parts) != 3:
        raise InvalidQuery(f"A filter is written dimension:operator:value, not {text[:80]!r}.")
    name, operator, value = parts
    if operator not in OPERATORS:
        raise InvalidQuery(
            f"Unknown filter operator {operator[:40]!r}; choose one of {', '.join(OPERATORS)}."
        )
    if len(value) > MAX_FILTER_VALUE:
        raise InvalidQuery(f"A filter value may be at most {MAX_FILTER_VALUE} characters.")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidQuery("A filter value may not contain control characters.")
    if operator == "contains" and value == NONE:
        raise InvalidQuery("A 'contains' filter needs a value.")
    return Filter(dimension(name), operator, value)


def parse_filters(texts: list[str]) -> tuple[Filter, ...]:
    """Parse every filter; the same filter twice counts once; at most MAX_FILTERS."""
    filters = tuple(dict.fromkeys(parse_filter(text) for text in texts))
    if len(filters) > MAX_FILTERS:
        raise InvalidQuery(f"At most {MAX_FILTERS} filters can be combined.")
    return filters
