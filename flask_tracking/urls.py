"""URL helpers shared by views: safe redirects and http(s)-only links."""

from __future__ import annotations

from typing import TypeGuard
from urllib.parse import urlsplit

from werkzeug.routing import IntegerConverter, Map


def is_safe_redirect(target: str | None) -> TypeGuard[str]:
    """Accept only same-site relative paths such as '/sites/1?x=y'."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        # Browsers treat '\' as '/', so '/\evil.example' would leave the site.
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def is_http_url(value: str | None) -> bool:
    """Tell whether a value is an absolute http(s) URL with a host, safe to link to."""
    if not value:
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


MAX_ID = 2**31 - 1  # the largest id a 32-bit INTEGER column holds


def is_row_id(value: int) -> bool:
    """Tell whether a number can be a row's id (a positive 32-bit INTEGER)."""
    return 1 <= value <= MAX_ID


class IdConverter(IntegerConverter):
    """A database id in a URL: a positive integer that fits a 32-bit INTEGER column.

    A larger number would overflow the column type and fail inside the database; past the
    converter it simply matches no route, which is the 404 a missing row gets anyway.
    """

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)
