"""The tracker script, and the collector headers of /sites/<id>/visit."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from flask import Blueprint, abort, request, url_for
from werkzeug.wrappers import Response

from flask_tracking.collector.http import cors

collector = Blueprint("collector", __name__)
COLLECTOR_ENDPOINTS = frozenset({"tracking.add_visit"})


@collector.after_app_request
def _collector_headers(response: Response) -> Response:
    """CORS and no-cache on every collector answer, preflights and errors included."""
    return cors(response) if request.endpoint in COLLECTOR_ENDPOINTS else response


# Answered by collector.endpoint.EventEndpoint in front of Flask; registered here so that
# url_for("collector.event") builds its URL.
collector.add_url_rule("/api/event", endpoint="event", build_only=True)


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
