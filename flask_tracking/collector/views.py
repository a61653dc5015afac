"""POST /api/event and the tracker script."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources

from flask import Blueprint, abort, current_app, request, url_for
from werkzeug.wrappers import Response

from flask_tracking import ingest
from flask_tracking.collector.http import accept, cors, incoming, invalid
from flask_tracking.errors import json_error
from flask_tracking.extensions import csrf
from flask_tracking.ingest.payload import parse_event_payload

collector = Blueprint("collector", __name__)
COLLECTOR_ENDPOINTS = frozenset({"collector.event", "tracking.add_visit"})


@collector.after_app_request
def _collector_headers(response: Response) -> Response:
    """CORS and no-cache on every collector answer, preflights and errors included."""
    return cors(response) if request.endpoint in COLLECTOR_ENDPOINTS else response


@collector.route("/api/event", methods=["POST"])
@csrf.exempt
def event() -> Response:
    """Accept one event as JSON (or text/plain, as sendBeacon sends it): 202, 400, 404, 413."""
    limit = int(current_app.config["MAX_EVENT_BODY"])
    if (request.content_length or 0) > limit:
        return json_error(413, "too_large", f"The body is over {limit} bytes.")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        return json_error(413, "too_large", f"The body is over {limit} bytes.")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested thousands of levels deep
        return json_error(400, "invalid_json", "The body is not valid JSON.")
    try:
        payload = parse_event_payload(data, int(current_app.config["MAX_URL_LENGTH"]))
    except ingest.InvalidHit as error:
        return invalid(error)
    event = incoming(
        request,
        payload.site_id,
        name=payload.name,
        url=payload.url,
        referrer=payload.referrer,
        width=payload.width,
        props=payload.props,
    )
    return accept(event, Response(status=202))


@cache
def _tracker() -> tuple[bytes, str]:
    source = resources.files("flask_tracking").joinpath("static/tracker.js").read_bytes()
    return source, hashlib.sha256(source).hexdigest()[:12]


def tracker_url() -> str:
    """Return the tracker script's versioned URL (a new version busts every cache)."""
    return url_for("collector.tracker", version=_tracker()[1], _external=True)


@collector.route("/js/tracker.js")
@collector.route("/js/tracker.<version>.js")
def tracker(version: str | None = None) -> Response:
    """Serve the tracker script; a versioned URL may be cached for a year."""
    source, current = _tracker()
    if version is not None and version != current:
        abort(404)
    response = Response(source, mimetype="text/javascript")
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = (
        "public, max-age=31536000, immutable" if version else "public, max-age=3600"
    )
    return response
