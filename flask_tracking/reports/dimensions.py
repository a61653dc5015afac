"""What a report can be broken down and filtered by: an allow-list, and filters parsed from text.

Every name a user can send (dimension, operator, metric) is looked up here; anything else is an
InvalidQuery, which views answer with a 400. Column objects are chosen from this table, never
built from user text, so no user value ever reaches SQL except as a bound parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from flask_tracking.reports.names import country_code, country_name

if TYPE_CHECKING:
    from flask_tracking.reports.goals import Goal

Level = Literal["event", "session", "goal"]
Operator = Literal["is", "is_not", "contains", "not_contains"]

OPERATORS: tuple[Operator, ...] = ("is", "is_not", "contains", "not_contains")
OPERATOR_LABELS = {
    "is": "is",
    "is_not": "is not",
    "contains": "contains",
    "not_contains": "does not contain",
}
# A filter's value may list several, separated by "|" (a literal bar is written "\\|"): "is"
# keeps what is any of them, "contains" what contains any; "is_not" and "not_contains" keep
# what is (contains) none of them.
SEPARATOR = "|"
MAX_FILTER_VALUES = 50
MAX_FILTERS = 10
MAX_FILTER_VALUE = 2048
# How "no value" (direct traffic, unknown country, …) is stored in rollups and sent in filters.
NONE = ""


class InvalidQuery(ValueError):
    """A report was asked for something not on the allow-list; the message says what."""


@dataclass(frozen=True, slots=True)
class Dimension:
    """A breakdown: its name in URLs, its number in rollups, its column in the event store
    (and the dictionary its values come from), and whether it belongs to events or sessions."""

    name: str
    number: int
    label: str
    column: str
    dictionary: str
    level: Level
    none_label: str = "(not set)"
    # How a stored value reads to people when it is a code (a country's "US"); None: as stored.
    names: Callable[[str], str] | None = None
    # And back: the code a person means by a name they typed ("France" -> "FR"), or None.
    codes: Callable[[str], str | None] | None = None
    # Few values on any site (tens to a few hundred; not pages, URLs, places or campaigns):
    # reports count these panels from the sessions grouped by their combination first.
    narrow: bool = False

    @property
    def measures(self) -> tuple[str, ...]:
        """Return the numbers a row of this dimension has: a page has pageviews but no visits
        (a visit is not on one page), a custom event has events, a session's dimension has
        visits, pageviews, bounces and duration but no custom-event count."""
        if self.level == "session":
            return ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration")
        if self.name == "page":
            return ("visitors", "pageviews")
        return ("visitors", "events")

    def stored(self, typed: str) -> str:
        """Return the stored value a person means by `typed`: a code for a name they typed
        (when the dimension keeps codes and knows the name), else `typed` itself."""
        if self.codes is None or typed == NONE:
            return typed
        return self.codes(typed) or typed

    def text(self, value: str) -> str:
        """Return a stored value as people read it: a name for a code, "(not set)" for none."""
        if value == NONE:
            return self.none_label
        return self.names(value) if self.names else value


# Numbers are stored in rollups: never reuse one. 0 is the day's total (reports/rollups.py).
_DIMENSIONS = (
    Dimension("page", 1, "Page", "page", "page", "event"),
    Dimension("entry_page", 2, "Entry page", "entry", "page", "session"),
    Dimension("exit_page", 3, "Exit page", "exit", "page", "session"),
    Dimension("source", 4, "Source", "source", "source", "session", "Direct / None", narrow=True),
    Dimension("referrer", 5, "Referrer", "referrer", "url", "session", "Direct / None"),
    Dimension("utm_source", 6, "UTM source", "utm_source", "utm_source", "session"),
    Dimension("utm_medium", 7, "UTM medium", "utm_medium", "utm_medium", "session", narrow=True),
    Dimension("utm_campaign", 8, "UTM campaign", "utm_campaign", "utm_campaign", "session"),
    Dimension(
        "country",
        9,
        "Country",
        "country",
        "country",
        "session",
        "Unknown",
        country_name,
        country_code,
        narrow=True,
    ),
    Dimension("region", 10, "Region", "region", "region", "session", "Unknown"),
    Dimension("city", 11, "City", "city", "city", "session", "Unknown"),
    Dimension("browser", 12, "Browser", "browser", "browser", "session", "Unknown", narrow=True),
    Dimension("os", 13, "Operating system", "os", "os", "session", "Unknown", narrow=True),
    Dimension("device", 14, "Device", "device", "device", "session", "Unknown", narrow=True),
    Dimension("screen", 15, "Screen size", "screen", "screen", "session", "Unknown", narrow=True),
    Dimension("event", 16, "Custom event", "name", "name", "event"),
)
DIMENSIONS: dict[str, Dimension] = {d.name: d for d in _DIMENSIONS}
SESSION_DIMENSIONS = tuple(d for d in _DIMENSIONS if d.level == "session")
# Not a column but a site's goal (reports/goals.py), by name: a filter keeps the sessions that
# converted (`goal:is:Signup`), a breakdown lists the goals. Never in rollups, so no number.
GOAL = Dimension("goal", -1, "Goal", "", "", "goal")

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
    goal: Goal | None = None  # a goal filter's definition, once bound to the site's goals

    @property
    def text(self) -> str:
        """Return the filter as it is written in a URL: dimension:operator:value."""
        return f"{self.dimension.name}:{self.operator}:{self.value}"

    @classmethod
    def of_value(cls, dim: Dimension, value: str) -> Filter:
        """Return the filter keeping exactly one stored value (a clicked row): a "|" in it is
        part of the value, not a list (a goal's name is never a list)."""
        return cls(dim, "is", value if dim.name == GOAL.name else join_values([value]))

    @property
    def values(self) -> tuple[str, ...]:
        """Return the values the filter lists (one, or several separated by "|")."""
        if self.dimension.name == GOAL.name:
            return (self.value,)
        return split_values(self.value)

    @property
    def negative(self) -> bool:
        """Tell whether the filter keeps what does not match (is not, does not contain)."""
        return self.operator in ("is_not", "not_contains")

    @property
    def label(self) -> str:
        """Return the filter as a person reads it, e.g. "Country is France or Spain"."""
        typed = self.operator in ("contains", "not_contains")
        shown = [value if typed else self.dimension.text(value) for value in self.values]
        joined = (" nor " if self.negative else " or ").join(shown)
        return f"{self.dimension.label} {OPERATOR_LABELS[self.operator]} {joined}"


def split_values(text: str) -> tuple[str, ...]:
    """Split a filter's value on "|" ("\\|" is a bar in a value, "\\\\" a backslash)."""
    if "\\" not in text:
        return tuple(text.split(SEPARATOR))
    values, current, escaped = [], [], False
    for char in text:
        if escaped:  # only a bar or a backslash is escaped; "\\d" stays as it is
            current.append(char if char in (SEPARATOR, "\\") else "\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == SEPARATOR:
            values.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    values.append("".join(current))
    return tuple(values)


def join_values(values: list[str] | tuple[str, ...]) -> str:
    """Write values as one filter value, escaping bars and backslashes (split_values' inverse)."""
    return SEPARATOR.join(
        v.replace("\\", "\\\\").replace(SEPARATOR, "\\" + SEPARATOR) for v in values
    )


def parse_filter(text: str) -> Filter:
    """Parse "dimension:operator:value" (the value may itself contain colons)."""
    parts = text.split(":", 2)
    if len(parts) != 3:
        raise InvalidQuery(f"A filter is written dimension:operator:value, not {text[:80]!r}.")
    name, operator, value = parts
    if name == GOAL.name and operator != "is":
        raise InvalidQuery("A goal filter is written goal:is:<the goal's name>.")
    if operator not in OPERATORS:
        raise InvalidQuery(
            f"Unknown filter operator {operator[:40]!r}; choose one of {', '.join(OPERATORS)}."
        )
    if len(value) > MAX_FILTER_VALUE:
        raise InvalidQuery(f"A filter value may be at most {MAX_FILTER_VALUE} characters.")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidQuery("A filter value may not contain control characters.")
    if name == GOAL.name:
        if value == NONE:
            raise InvalidQuery("A goal filter needs the goal's name: goal:is:Signup.")
        return Filter(GOAL, "is", value)
    values = split_values(value)
    if len(values) > MAX_FILTER_VALUES:
        raise InvalidQuery(f"A filter lists at most {MAX_FILTER_VALUES} values.")
    if operator in ("contains", "not_contains") and NONE in values:
        raise InvalidQuery(f"A '{operator}' filter needs a value (and no empty one in a list).")
    return Filter(dimension(name), operator, value)


def bind_goals(filters: tuple[Filter, ...], goals: tuple[Goal, ...]) -> tuple[Filter, ...]:
    """Give each goal filter its goal's definition, from the site's goals by name; a name
    the site has no goal of is an InvalidQuery."""
    named = {goal.name: goal for goal in goals}
    bound = []
    for flt in filters:
        if flt.dimension.name == GOAL.name:
            if flt.value not in named:
                raise InvalidQuery(f"This site has no goal named {flt.value[:120]!r}.")
            bound.append(Filter(GOAL, "is", flt.value, named[flt.value]))
        else:
            bound.append(flt)
    return tuple(bound)


def parse_filters(texts: list[str]) -> tuple[Filter, ...]:
    """Parse every filter; the same filter twice counts once; at most MAX_FILTERS."""
    filters = tuple(dict.fromkeys(parse_filter(text) for text in texts))
    if len(filters) > MAX_FILTERS:
        raise InvalidQuery(f"At most {MAX_FILTERS} filters can be combined.")
    return filters
