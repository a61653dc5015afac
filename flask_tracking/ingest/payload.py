"""Validation of the JSON body of POST /api/event."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from flask_tracking.ingest.hit import (
    DEFAULT_EVENT,
    MAX_EVENT_LENGTH,
    MAX_REFERRER_LENGTH,
    InvalidHit,
    check_url,
    has_control_chars,
)

MAX_PROPS = 30
MAX_PROP_KEY = 64
MAX_PROP_VALUE = 512
KNOWN_FIELDS = frozenset({"site", "name", "url", "referrer", "width", "props"})


@dataclass(frozen=True, slots=True)
class EventPayload:
    """A valid event body."""

    site_id: int
    name: str
    url: str
    referrer: str | None
    width: int | None
    props: dict[str, str | int | float | bool]


def parse_event_payload(data: Any, max_url_length: int = 2048) -> EventPayload:
    """Return the event described by a decoded JSON body, or raise InvalidHit naming each field."""
    if not isinstance(data, dict):
        raise InvalidHit({"body": "Must be a JSON object."})
    site = data.get("site")
    if isinstance(site, str) and site.isdigit():
        site = int(site)
    name = data.get("name", DEFAULT_EVENT)
    url = data.get("url")
    referrer = data.get("referrer")
    width = data.get("width")
    props = data.get("props") or {}
    problems = {
        "site": _check_site(site),
        "name": _check_text(name, MAX_EVENT_LENGTH, required=True),
        "url": check_url(url.strip(), max_url_length)
        if isinstance(url, str)
        else "Required: the page's absolute http(s) URL.",
        "referrer": _check_text(referrer, MAX_REFERRER_LENGTH, required=False),
        "width": _check_width(width),
        "props": _check_props(props),
        "body": _check_fields(data),
    }
    errors = {field: problem for field, problem in problems.items() if problem}
    if errors:
        raise InvalidHit(errors)
    assert isinstance(site, int) and isinstance(url, str)  # checked above; tells mypy
    return EventPayload(
        site_id=site,
        name=name.strip(),
        url=url.strip(),
        referrer=(referrer or "").strip() or None,
        width=width,
        props=props,
    )


def _check_site(site: Any) -> str | None:
    if isinstance(site, bool) or not isinstance(site, int) or not 0 < site < 2**31:
        return "Required: the site's id, a positive integer."
    return None


def _check_text(value: Any, limit: int, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        return "Must be a non-empty string." if required else "Must be a string."
    if len(value) > limit or has_control_chars(value):
        return f"At most {limit} characters, no control characters."
    return None


def _check_width(width: Any) -> str | None:
    if width is None:
        return None
    if isinstance(width, bool) or not isinstance(width, int) or not 0 <= width <= 100_000:
        return "Must be an integer from 0 to 100000."
    return None


def _check_fields(data: dict[str, Any]) -> str | None:
    unknown = sorted(str(key) for key in set(data) - KNOWN_FIELDS)
    return f"Unknown fields: {', '.join(unknown)[:200]}." if unknown else None


def _check_props(props: Any) -> str | None:
    if not isinstance(props, dict):
        return "Must be a flat JSON object."
    if len(props) > MAX_PROPS:
        return f"At most {MAX_PROPS} properties."
    for key, value in props.items():
        if not key or len(key) > MAX_PROP_KEY or has_control_chars(key):
            return f"Property names must be 1 to {MAX_PROP_KEY} characters, no control characters."
        if isinstance(value, str):
            if len(value) > MAX_PROP_VALUE or "\x00" in value:
                return f"Property {key[:64]!r}: at most {MAX_PROP_VALUE} characters."
        elif not isinstance(value, int | float | bool) or not math.isfinite(value):
            return f"Property {key[:64]!r}: must be a string, number or boolean."
    return None
