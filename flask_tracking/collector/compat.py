"""Other trackers' wire formats, taken through the same pipeline as ours, so a site moves here
without touching its pages or integrations.

- Plausible's Events API: `POST /api/event` — the same path as ours, told apart by its shape
  (a `domain` instead of a `site` id), in the script's short names (`n`, `u`, `d`, `r`, `p`,
  `w`, `$`, `h`, `i`) or the documented long ones (`name`, `url`, `domain`, `referrer`,
  `props`, `revenue`). The site is found by its domain: the host of its address, with or
  without "www."; `d` may list several domains separated by commas (each known one gets the
  event). Answered as Plausible answers: 202 `ok`, a domain not found 202 with
  `X-Plausible-Dropped: 1`, bad input 400 `{"errors": {field: [message]}}`.
- Umami's `POST /api/send`: `{"type": "event" | "identify", "payload": {"website", "url",
  "hostname", "referrer", "name", "data", "screen", "language", "title"}}`. The site is found
  by the Umami website id its owner set (the old UUID) or by its own number. Answered as Umami
  answers: 200 with a JSON body, bad input 400 with a message.

Both keep what our own events keep: the page, the referrer, the screen width, the event name
and its properties; what they send that we do not keep (Plausible's engagement pings, Umami's
identify calls) is acknowledged and counted as a drop with its reason, never stored silently
wrong. Hash-based routing (`h`) is not folded into the path: pages are their paths.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson

from flask_tracking.ingest.hit import MAX_EVENT_LENGTH, MAX_REFERRER_LENGTH, check_url
from flask_tracking.ingest.payload import MAX_PROP_VALUE, MAX_PROPS, _check_props

PLAUSIBLE_ENGAGEMENT = "engagement"
MAX_DOMAINS = 10
SCHEMES = ("", "http", "https")  # "": a path, as browsers send
HOSTNAME = re.compile(r"[A-Za-z0-9_.-]{1,253}(:[0-9]{1,5})?")
SCREEN = re.compile(r"^([0-9]{1,6})x[0-9]{1,6}$")


class CompatError(ValueError):
    """A body another tracker's server would refuse: each field with its messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


@dataclass(frozen=True)
class ForeignEvent:
    """An event in another tracker's format, checked and in our terms."""

    names: tuple[str, ...]  # the domains (Plausible) or website id (Umami) naming the site
    name: str
    url: str
    referrer: str | None
    width: int | None
    props: dict[str, str | int | float | bool]


def is_plausible(data: Any) -> bool:
    """Tell a Plausible body from ours: it names a domain, never a site id."""
    return isinstance(data, dict) and "site" not in data and ("d" in data or "domain" in data)


def _pick(data: dict[str, Any], short: str, long: str) -> Any:
    return data[short] if short in data else data.get(long)


def _text(value: Any, limit: int, *, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return "can't be blank" if required else None
    if not isinstance(value, str):
        return "is invalid"
    if len(value) > limit or any(ord(ch) < 32 or "\ud800" <= ch <= "\udfff" for ch in value):
        return f"should be at most {limit} characters, without control characters"
    return None


def _props(raw: Any) -> tuple[dict[str, str | int | float | bool], str | None]:
    """Properties as an object (or, from older scripts, a JSON string of one); nulls dropped,
    nested values refused."""
    if raw is None:
        return {}, None
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return {}, "is invalid"
    if not isinstance(raw, dict):
        return {}, "is invalid"
    props = {str(k): v for k, v in raw.items() if v is not None}
    problem = _check_props(props)
    return props, problem


def _width(raw: Any) -> int | None:
    return (
        raw if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= 100_000 else None
    )


def parse_plausible(data: dict[str, Any], max_url_length: int) -> ForeignEvent:
    """A Plausible Events API body as our event, or CompatError in Plausible's terms."""
    name = _pick(data, "n", "name")
    url = _pick(data, "u", "url")
    domain = _pick(data, "d", "domain")
    referrer = _pick(data, "r", "referrer")
    errors: dict[str, str] = {}
    if problem := _text(name, MAX_EVENT_LENGTH, required=True):
        errors["name"] = problem
    if problem := _text(url, max_url_length, required=True) or check_url(
        url.strip(), max_url_length
    ):
        errors["url"] = problem
    if problem := _text(domain, 2000, required=True):
        errors["domain"] = problem
    domains = tuple(d.strip() for d in str(domain or "").split(",") if d.strip())[:MAX_DOMAINS]
    if problem := _text(referrer, MAX_REFERRER_LENGTH, required=False):
        errors["referrer"] = problem
    props, problem = _props(data["p"] if "p" in data else data.get("props", data.get("m")))
    if problem:
        errors["props"] = problem
    revenue = _pick(data, "$", "revenue")
    if revenue is not None:
        money, problem = _revenue(revenue)
        if problem:
            errors["revenue"] = problem
        elif len(props) + len(money) > MAX_PROPS:
            errors["props"] = f"at most {MAX_PROPS} properties"
        else:
            props = {**money, **props}
    if errors:
        raise CompatError(errors)
    return ForeignEvent(
        names=domains,
        name=name.strip(),
        url=url.strip(),
        referrer=(referrer or "").strip() or None,
        width=_width(_pick(data, "w", "screen_width")),
        props=props,
    )


def _revenue(raw: Any) -> tuple[dict[str, str | int | float | bool], str | None]:
    """Plausible's revenue `{"currency": "EUR", "amount": 12.5}` as the properties a revenue
    goal reads (`revenue` and `currency`)."""
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return {}, "is invalid"
    if not isinstance(raw, dict):
        return {}, "is invalid"
    currency, amount = raw.get("currency"), raw.get("amount")
    if isinstance(amount, str):
        try:
            amount = float(amount)
        except ValueError:
            return {}, "amount is invalid"
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount):
        return {}, "amount is invalid"
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        return {}, "currency is invalid"
    return {"revenue": amount, "currency": currency.upper()}, None


def parse_umami(data: Any, max_url_length: int) -> tuple[str, ForeignEvent]:
    """An Umami /api/send body as (its type, our event), or CompatError with Umami's message."""
    if not isinstance(data, dict) or not isinstance(data.get("payload"), dict):
        raise CompatError({"payload": "Required."})
    kind = data.get("type")
    if kind not in ("event", "identify"):
        raise CompatError({"type": "Invalid enum value. Expected 'event' | 'identify'."})
    payload: dict[str, Any] = data["payload"]
    website = payload.get("website")
    errors: dict[str, str] = {}
    if not isinstance(website, str) or not _is_website(website):
        errors["website"] = "Invalid uuid."
    hostname = payload.get("hostname")
    if hostname is not None and not (isinstance(hostname, str) and HOSTNAME.fullmatch(hostname)):
        errors["hostname"] = "Invalid hostname."
        hostname = None
    url, problem = _page(payload.get("url"), hostname, max_url_length)
    if problem:
        errors["url"] = problem
    name = payload.get("name")
    if name is not None and _text(name, MAX_EVENT_LENGTH, required=False):
        errors["name"] = f"String must contain at most {MAX_EVENT_LENGTH} character(s)."
    referrer = payload.get("referrer")
    if referrer is not None and _text(referrer, MAX_REFERRER_LENGTH, required=False):
        errors["referrer"] = "Invalid referrer."
    props = _flatten(payload.get("data"))
    if problem := _check_props(props):
        errors["data"] = problem
    if errors:
        raise CompatError(errors)
    screen = payload.get("screen")
    found = SCREEN.match(screen) if isinstance(screen, str) else None
    return kind, ForeignEvent(
        names=(website.strip().lower(),),  # type: ignore[union-attr]
        name=(name or "").strip() or "pageview",
        url=url,
        referrer=(referrer or "").strip() or None,
        width=min(int(found.group(1)), 100_000) if found else None,
        props=props,
    )


def _page(raw: Any, hostname: Any, max_url_length: int) -> tuple[str, str | None]:
    """The page of an Umami event: an absolute URL, or a path joined to its hostname (a path
    alone is completed with the site's host later); another scheme is refused."""
    if raw is None:
        return "", None
    if _text(raw, max_url_length, required=False):
        return "", "Invalid url."
    url = raw.strip()
    if urlsplit(url).scheme.lower() not in SCHEMES:
        return "", "Invalid url."  # javascript:, ftp://…
    if url and not re.match(r"^https?://", url, re.IGNORECASE):  # a path, as browsers send
        host = hostname.strip() if isinstance(hostname, str) else ""
        url = urljoin(f"https://{host}/", url) if host else url
    return url, None


def _is_website(value: str) -> bool:
    """A website id: a UUID (Umami's), or this server's site number."""
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,10}", value):
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _flatten(data: Any, prefix: str = "") -> dict[str, str | int | float | bool]:
    """Umami's event data (which may nest) as flat properties: nested keys joined with ".",
    arrays as JSON text, nulls left out."""
    if not isinstance(data, dict):
        return {}
    flat: dict[str, str | int | float | bool] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        elif isinstance(value, list):
            flat[name] = orjson.dumps(value).decode()[:MAX_PROP_VALUE]
        elif isinstance(value, str | int | float | bool):
            flat[name] = value
    return flat
