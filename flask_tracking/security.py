"""Response headers that limit what a page can do, and the longest URL the app reads.

Every page gets a strict Content-Security-Policy (scripts, styles and everything else only from
this server; no inline script or style, no plugins, forms posting only here, never framed),
`nosniff`, a referrer policy that keeps paths (and shared-link tokens) to this origin,
a Permissions-Policy that turns off powerful features, and HSTS when served over HTTPS.

Two kinds of answers differ, on purpose:
- the collector (/api/event, /sites/<id>/visit) and the tracker script are fetched by other
  sites' pages: they keep their CORS headers and say `Cross-Origin-Resource-Policy:
  cross-origin`, so a page that isolates itself (COEP) can still load them;
- a shared dashboard may be framed by the origins its owner listed (`frame_ancestors()`).
"""

from __future__ import annotations

from flask import Flask, current_app, g, request
from werkzeug.exceptions import RequestURITooLarge
from werkzeug.wrappers import Response

# Answered to browsers on pages of other sites (see collector/): no framing rules apply.
CROSS_ORIGIN_ENDPOINTS = frozenset({"tracking.add_visit", "collector.tracker"})
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'"
)
# JSON, files and other answers that are not pages: nothing may run in them.
RESOURCE_POLICY = "default-src 'none'"
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=(), interest-cohort=(), browsing-topics=()"
)


def init_app(app: Flask) -> None:
    """Cap URL lengths before anything else runs, and add the headers to every answer."""
    app.before_request(refuse_long_urls)
    app.after_request(add_headers)


def url_length(environ: dict[str, object]) -> int:
    """Return the length in bytes of a request's path and query string."""
    # WSGI gives both as latin-1 text of the raw bytes: one character is one byte.
    path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    return len(path) + len(str(environ.get("QUERY_STRING", "")))


def refuse_long_urls() -> None:
    """Answer 414 (in the envelope the path calls for) to a URL over MAX_REQUEST_URL_LENGTH."""
    limit = int(current_app.config["MAX_REQUEST_URL_LENGTH"])
    if url_length(request.environ) > limit:
        raise RequestURITooLarge(f"The URL is longer than {limit} bytes.")


def frame_ancestors(origins: list[str]) -> None:
    """Let these origins frame the page being answered (a shared dashboard's embed option)."""
    g.frame_ancestors = origins


def add_headers(response: Response) -> Response:
    """Set the security headers this answer needs (see the module docstring)."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.is_secure:
        seconds = int(current_app.config["HSTS_SECONDS"])
        if seconds > 0:
            headers.setdefault("Strict-Transport-Security", f"max-age={seconds}")
    if request.endpoint in CROSS_ORIGIN_ENDPOINTS:
        headers.setdefault("Cross-Origin-Resource-Policy", "cross-origin")
        return response
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
    allowed = g.get("frame_ancestors") or []
    ancestors = " ".join(allowed) if allowed else "'none'"
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", f"{PAGE_POLICY}; frame-ancestors {ancestors}")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    else:
        headers.setdefault(
            "Content-Security-Policy", f"{RESOURCE_POLICY}; frame-ancestors {ancestors}"
        )
    if not allowed:
        headers.setdefault("X-Frame-Options", "DENY")  # for browsers without frame-ancestors
    return response
