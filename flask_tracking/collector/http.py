"""Request → Incoming, and the answers every collection endpoint gives."""

from __future__ import annotations

import logging

from werkzeug.wrappers import Request, Response

from flask_tracking import ingest
from flask_tracking.errors import json_error
from flask_tracking.ingest.sitecache import SiteInfo

logger = logging.getLogger("flask_tracking.collector")
# Headers bot/prefetch detection looks at; nothing else of the request reaches the pipeline.
INSPECTED_HEADERS = ("Purpose", "Sec-Purpose", "X-Purpose", "X-Moz")
# On every collector answer: any origin may send events (without credentials), other sites'
# pages load it even when they isolate themselves (COEP require-corp), and nothing caches it.
CORS_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Cross-Origin-Resource-Policy", "cross-origin"),
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
    ("Access-Control-Allow-Headers", "Content-Type"),
    ("Access-Control-Expose-Headers", "X-Tracking-Dropped"),
    ("Access-Control-Max-Age", "86400"),
    ("Cache-Control", "no-store, max-age=0"),
)


def incoming(
    request: Request,
    site_id: int,
    *,
    name: str,
    url: str,
    referrer: str | None,
    width: int | None = None,
    props: dict[str, str | int | float | bool] | None = None,
) -> ingest.Incoming:
    """Combine validated fields with the request's IP, User-Agent and privacy headers."""
    return ingest.Incoming(
        site_id=site_id,
        name=name,
        url=url,
        referrer=referrer,
        width=width,
        props=props or {},
        ip=request.remote_addr,
        user_agent=request.headers.get("User-Agent", "")[:1024],
        do_not_track=request.headers.get("DNT") == "1",
        headers={key: request.headers[key] for key in INSPECTED_HEADERS if key in request.headers},
    )


def accept(
    pipeline: ingest.Ingest,
    event: ingest.Incoming,
    answer: Response,
    site: SiteInfo | None = None,
) -> Response:
    """Hand the event to the pipeline; return `answer`, or the error that replaces it."""
    try:
        reason = pipeline.accept(event, site)
    except (ingest.UnknownSite, ingest.SpoolFull) as error:
        return refusal(error, event.site_id)
    if reason:
        answer.headers["X-Tracking-Dropped"] = reason
    return answer


def refusal(error: ingest.UnknownSite | ingest.SpoolFull, site_id: int) -> Response:
    """The answer to an event the pipeline refused: 404 for an unknown site, 503 when full."""
    if isinstance(error, ingest.UnknownSite):
        return json_error(404, "unknown_site", f"There is no site {site_id}.")
    logger.error("spool full: refusing events until the writer catches up")
    response = json_error(503, "overloaded", "Events are not being accepted right now.")
    response.headers["Retry-After"] = "5"
    return response


def invalid(error: ingest.InvalidHit, code: str = "invalid_event") -> Response:
    """The 400 answer naming every bad field."""
    return json_error(400, code, "The event was not recorded.", error.errors)


def cors(response: Response) -> Response:
    """Let any origin send events (without credentials), and never cache the answer."""
    for name, value in CORS_HEADERS:
        response.headers[name] = value
    return response
