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
    except ingest.UnknownSite:
        return json_error(404, "unknown_site", f"There is no site {event.site_id}.")
    except ingest.SpoolFull:
        logger.error("spool full: refusing events until the writer catches up")
        response = json_error(503, "overloaded", "Events are not being accepted right now.")
        response.headers["Retry-After"] = "5"
        return response
    if reason:
        answer.headers["X-Tracking-Dropped"] = reason
    return answer


def invalid(error: ingest.InvalidHit, code: str = "invalid_event") -> Response:
    """The 400 answer naming every bad field."""
    return json_error(400, code, "The event was not recorded.", error.errors)


def cors(response: Response) -> Response:
    """Let any origin send events (without credentials), and never cache the answer."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Other sites' pages load this: even those that isolate themselves (COEP require-corp).
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    response.headers["Access-Control-Expose-Headers"] = "X-Tracking-Dropped"
    response.headers["Access-Control-Max-Age"] = "86400"
    response.headers["Cache-Control"] = "no-store, max-age=0"
    return response
