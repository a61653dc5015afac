"""Validation of the JSON body of POST /api/event."""

from __future__ import annotations

import math
import re
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
    # A numeric string is accepted too; ASCII digits only ("²".isdigit() is True, int() refuses it)
    # and few enough for int() (which refuses over 4300 digits).
    if isinstance(site, str) and re.fullmatch(r"[0-9]{1,10}", site):
        site = int(site)
    name = data.get("name", DEFAULT_EVENT)
    url = data.get("url")
    referrer = data.get("referrer")
    width = data.get("width")
    props = data.get("props")
    if props is None:
        props = {}  # absent or null; any other non-object (even [] or "") is an error
    problems = {
        "site": _check_site(site),
        "name": _check_text(name, MAX_EVENT_LENGTH, required=True),
        "url": (check_url(url.strip(), max_url_length) or _check_unicode(url))
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
    return _check_unicode(value)


def _check_unicode(value: str) -> str | None:
    # JSON may escape a lone UTF-16 surrogate ("\ud800"): Python decodes it, but no UTF-8 text
    # can hold it, so the spool line (and the database) could not be written.
    if not value.isascii() and any("\ud800" <= ch <= "\udfff" for ch in value):
        return "Must be valid Unicode text (no lone surrogates)."
    return None


def _is_finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float (JSON numbers have no size limit)
        return False


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
        if not key or len(key) > MAX_PROP_KEY or has_control_chars(key) or _check_unicode(key):
            return f"Property names must be 1 to {MAX_PROP_KEY} characters, no control characters."
        if problem := _check_prop_value(value):
            return f"Property {key[:64]!r}: {problem}"
    return None


def _check_prop_value(value: Any) -> str | None:
    if isinstance(value, str):
        if len(value) > MAX_PROP_VALUE or "\x00" in value:
            return f"at most {MAX_PROP_VALUE} characters."
        return _check_unicode(value)
    if not isinstance(value, int | float | bool) or not _is_finite(value):
        return "must be a string, number or boolean."
    return None
