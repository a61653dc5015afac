"""Goals: what counts as a conversion on a site, checked once, and read as SQL conditions.

A goal is either a pageview goal — a path pattern where `*` matches within one path segment
and `**` across segments (`/blog/**`, `/docs/*/install`, `/checkout/done`) — or a custom-event
goal: an event name, optionally with a property condition (`plan` is `pro`). Either may carry
a revenue property: the numeric value of that property of each converting custom event,
summed (and averaged over the conversions that carried one), in the goal's currency.

Goals are definitions, not data: they are stored with the site (tracking/models.py) and
applied to the events at query time, so a goal defined today counts last month's conversions.
This module holds the rules shared by the settings form, the API and the reporting layer:
`make_goal` refuses a bad definition with a message a person can act on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["page", "event"]
KINDS: tuple[Kind, ...] = ("page", "event")
MAX_GOALS = 50  # per site
MAX_NAME = 120
MAX_PATTERN = 2048
MAX_EVENT = 120
MAX_PROPERTY = 300
# ISO 4217 codes people use most; any three capital letters are accepted (see make_goal).
COMMON_CURRENCIES = ("EUR", "USD", "GBP", "CHF", "JPY", "CAD", "AUD", "SEK", "NOK", "DKK", "PLN")


class InvalidGoal(ValueError):
    """A goal definition that cannot be kept; the message says why, `field` which field (as
    the API names it: name, kind, path, event, property, property_value, revenue_property,
    currency; "goals" for the site's goals as a whole)."""

    def __init__(self, message: str, field: str = "name") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Goal:
    """One goal of a site, as reports apply it (see the module's docstring)."""

    name: str
    kind: Kind
    path: str = ""  # page goals: the pattern
    event: str = ""  # event goals: the event name
    prop_key: str = ""  # event goals: an optional property condition, key is value
    prop_value: str = ""
    revenue_prop: str = ""  # event goals: the numeric property holding the value
    currency: str = ""  # ISO 4217, when revenue_prop is set

    @property
    def regex(self) -> str:
        """Return the page pattern as an anchored regular expression (RE2 and Python alike)."""
        return pattern_regex(self.path)

    @property
    def description(self) -> str:
        """Return what the goal counts, as a person reads it."""
        if self.kind == "page":
            return f"Visit {self.path}"
        text = f"Event {self.event}"
        if self.prop_key:
            text += f" with {self.prop_key} = {self.prop_value}"
        return text

    @property
    def has_revenue(self) -> bool:
        """Tell whether conversions carry a monetary value."""
        return bool(self.revenue_prop)


def pattern_regex(pattern: str) -> str:
    """Translate a path pattern to an anchored regular expression: `**` matches anything,
    `*` anything but `/`, every other character itself."""
    parts = []
    for index, piece in enumerate(pattern.split("**")):
        if index:
            parts.append(".*")
        parts.append("[^/]*".join(_escape(text) for text in piece.split("*")))
    return "^" + "".join(parts) + "$"


_SPECIAL = frozenset("\\.^$|?*+()[]{}")


def _escape(text: str) -> str:
    """Escape the characters regular expressions give a meaning (the same in RE2 and re)."""
    return "".join("\\" + c if c in _SPECIAL else c for c in text)


def has_control_characters(text: str) -> bool:
    """Tell whether text holds what no page can show or column store: C0/C1 controls, DEL,
    lone surrogates (names and patterns of goals, funnels and experiments refuse them)."""
    return any(ord(c) < 32 or 127 <= ord(c) < 160 or 0xD800 <= ord(c) < 0xE000 for c in text)


def _text(value: str | None, field: str, limit: int, *, required: bool) -> str:
    what = FIELD_NAMES[field]
    value = (value or "").strip()
    if required and not value:
        article = "an" if what[0] in "aeiou" else "a"
        raise InvalidGoal(f"A goal needs {article} {what}.", field)
    if len(value) > limit:
        raise InvalidGoal(f"The {what} may be at most {limit} characters.", field)
    if has_control_characters(value):
        raise InvalidGoal(f"The {what} may not contain control characters.", field)
    return value


FIELD_NAMES = {
    "name": "name",
    "path": "path pattern",
    "event": "event name",
    "property": "property name",
    "property_value": "property value",
    "revenue_property": "revenue property",
}


def make_goal(
    name: str | None,
    kind: str | None,
    *,
    path: str | None = None,
    event: str | None = None,
    prop_key: str | None = None,
    prop_value: str | None = None,
    revenue_prop: str | None = None,
    currency: str | None = None,
) -> Goal:
    """Return the goal these fields define, or raise InvalidGoal saying what is wrong."""
    name = _text(name, "name", MAX_NAME, required=True)
    if kind not in KINDS:
        raise InvalidGoal(
            "A goal's kind is 'page' (a pageview goal) or 'event' (a custom event).", "kind"
        )
    if kind == "page":
        path = _text(path, "path", MAX_PATTERN, required=True)
        if not path.startswith("/"):
            raise InvalidGoal(
                "A path pattern starts with /, e.g. /signup/done or /blog/**.", "path"
            )
        if "***" in path:
            raise InvalidGoal(
                "A path pattern uses * (within a segment) or ** (across segments).", "path"
            )
        if event or prop_key or prop_value or revenue_prop or currency:
            raise InvalidGoal(
                "A pageview goal has a path pattern only; events, properties and revenue "
                "belong to custom-event goals.",
                "kind",
            )
        return Goal(name, "page", path=path)
    if path:
        raise InvalidGoal("A custom-event goal has an event name, not a path pattern.", "path")
    event = _text(event, "event", MAX_EVENT, required=True)
    prop_key = _text(prop_key, "property", MAX_PROPERTY, required=False)
    prop_value = _text(prop_value, "property_value", MAX_PROPERTY, required=False)
    if prop_value and not prop_key:
        raise InvalidGoal("A property value needs the property's name.", "property")
    if prop_key and not prop_value:
        raise InvalidGoal("A property condition needs a value, e.g. plan is pro.", "property_value")
    revenue_prop = _text(revenue_prop, "revenue_property", MAX_PROPERTY, required=False)
    currency = (currency or "").strip().upper()
    if revenue_prop and not re.fullmatch(r"[A-Z]{3}", currency):
        raise InvalidGoal(
            "Revenue needs a currency: its ISO 4217 code, e.g. EUR or USD.", "currency"
        )
    if currency and not revenue_prop:
        raise InvalidGoal(
            "A currency needs a revenue property to read the amounts from.", "revenue_property"
        )
    return Goal(
        name,
        "event",
        event=event,
        prop_key=prop_key,
        prop_value=prop_value,
        revenue_prop=revenue_prop,
        currency=currency,
    )
