"""A raw hit as it arrived, and its validation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_EVENT_LENGTH = 120
MAX_REFERRER_LENGTH = 2048
DEFAULT_EVENT = "pageview"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidHit(Exception):
    """A hit with bad input; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


class UnknownSite(Exception):
    """A hit for a site that does not exist."""


@dataclass(frozen=True, slots=True)
class Hit:
    """The fields of a /sites/<id>/visit request, as sent."""

    site_id: int
    url: str | None
    referrer: str | None
    event: str | None


@dataclass(frozen=True, slots=True)
class CleanHit:
    """A hit whose fields passed validation, with defaults applied."""

    site_id: int
    url: str
    referrer: str | None
    event: str


def has_control_chars(value: str) -> bool:
    """Tell whether a value holds C0 control characters or DEL."""
    # NUL and friends break PostgreSQL text columns and forge log lines; no URL needs them.
    return _CONTROL.search(value) is not None


def storable(value: str) -> bool:
    """Tell whether a line of text can be stored and shown: no control characters, and no lone
    UTF-16 surrogates (JSON can escape one; no UTF-8 database column can hold it)."""
    if has_control_chars(value):
        return False
    return value.isascii() or not any("\ud800" <= ch <= "\udfff" for ch in value)


def check_url(value: str | None, max_length: int) -> str | None:
    """Return what is wrong with a page URL, or None."""
    if not value:
        return "Missing: pass a `url` parameter or send a Referer header."
    if len(value) > max_length:
        return f"Too long: at most {max_length} characters."
    if has_control_chars(value):
        return "Contains control characters."
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
    except ValueError:
        return "Not a valid URL."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Must be an absolute http:// or https:// URL."
    return None


def validate(hit: Hit, max_url_length: int) -> CleanHit:
    """Return the hit with defaults applied, or raise InvalidHit naming every bad field."""
    errors: dict[str, str] = {}
    url = (hit.url or "").strip()
    if problem := check_url(url, max_url_length):
        errors["url"] = problem
    referrer = (hit.referrer or "").strip() or None
    if referrer is not None and len(referrer) > MAX_REFERRER_LENGTH:
        errors["ref"] = f"Too long: at most {MAX_REFERRER_LENGTH} characters."
    elif referrer is not None and has_control_chars(referrer):
        errors["ref"] = "Contains control characters."
    event = (hit.event or "").strip() or DEFAULT_EVENT
    if len(event) > MAX_EVENT_LENGTH:
        errors["event"] = f"Too long: at most {MAX_EVENT_LENGTH} characters."
    elif has_control_chars(event):
        errors["event"] = "Contains control characters."
    if errors:
        raise InvalidHit(errors)
    return CleanHit(site_id=hit.site_id, url=url, referrer=referrer, event=event)
