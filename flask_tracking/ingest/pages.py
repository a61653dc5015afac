"""Split a page URL into what reports group by, and bucket screen widths."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote_plus, urlsplit

MAX_UTM_LENGTH = 256
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

# Query parameters kept in the stored URL besides utm_*. Everything else is dropped because query
# strings carry session tokens, password-reset links, e-mail addresses and ad click ids (gclid,
# fbclid) that identify a person. Kept: "ref" and "source" (attribution links such as
# ?ref=producthunt), "page" (pagination) and "lang" (language switch), which say which content was
# seen and nothing about who saw it. Not "q": on-site search terms often contain names or e-mail
# addresses; an operator who wants them can pass a larger allow-list.
DEFAULT_ALLOWED_QUERY = frozenset({"ref", "source", "page", "lang"})

# Screen-width breakpoints in CSS pixels, close to the common CSS-framework ones: phones stay below
# 576, tablets (portrait and most landscape) below 992, laptops below 1440; wider is a desktop.
_SCREEN_SIZES = ((576, "mobile"), (992, "tablet"), (1440, "laptop"))


@dataclass(frozen=True, slots=True)
class PageURL:
    """The parts of a page URL that are stored and reported."""

    hostname: str
    pathname: str
    url: str
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_term: str | None
    utm_content: str | None


def _utm_value(raw: str) -> str | None:
    """Decode, trim and shorten one UTM value; empty becomes None."""
    value = unquote_plus(raw).strip()
    return value[:MAX_UTM_LENGTH] or None


@lru_cache(maxsize=16384)  # pure, and a site's pages repeat: most events hit the cache
def parse_page_url(url: str, allowed_query: frozenset[str] = DEFAULT_ALLOWED_QUERY) -> PageURL:
    """Parse an absolute page URL; raise ValueError when it has no host or a bad port."""
    parts = urlsplit(url.strip())
    hostname = parts.hostname  # lowercase, without userinfo and port
    if not hostname:
        raise ValueError(f"URL has no host: {url!r}")
    port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    # Rebuild the authority without userinfo: "user:password@" must never be stored.
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    if port is not None:
        netloc = f"{netloc}:{port}"
    pathname = parts.path or "/"  # kept percent-encoded as sent, so stored paths match the logs

    allowed = {name.lower() for name in allowed_query}
    kept: list[str] = []
    utm: dict[str, str | None] = {}
    for pair in parts.query.split("&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition("=")
        # Names compare case-insensitively: links with UTM_Source=... are common enough.
        name = unquote_plus(raw_name).strip().lower()
        if not (name.startswith("utm_") or name in allowed):
            continue
        kept.append(pair)  # the raw pair, so the value's encoding is kept exactly as sent
        if name in UTM_FIELDS and name not in utm:
            utm[name] = _utm_value(raw_value)  # the first occurrence wins, as in most tools

    stored = f"{parts.scheme.lower()}://{netloc}{pathname}"
    if kept:
        stored = f"{stored}?{'&'.join(kept)}"
    # The fragment is dropped: it is in-page state (anchors, tokens in OAuth redirects). Sites that
    # route on "#/..." therefore count as one page.
    return PageURL(
        hostname=hostname,
        pathname=pathname,
        url=stored,
        utm_source=utm.get("utm_source"),
        utm_medium=utm.get("utm_medium"),
        utm_campaign=utm.get("utm_campaign"),
        utm_term=utm.get("utm_term"),
        utm_content=utm.get("utm_content"),
    )


def screen_size(width: int | None) -> str | None:
    """Return the screen-size bucket (mobile, tablet, laptop, desktop) of a width in CSS pixels."""
    if width is None or width <= 0:
        return None
    for limit, name in _SCREEN_SIZES:
        if width < limit:
            return name
    return "desktop"
