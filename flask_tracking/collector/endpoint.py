"""POST /api/event as a plain WSGI endpoint in front of Flask.

The events endpoint is the hot path: every page view of every tracked site. It needs none of
what Flask does per request (sessions, CSRF, login, rate limits, templates), which cost more
than the event itself, so it is answered here, with the same validation and the same
`accept()` as the /sites/<id>/visit view. Everything else goes on to Flask.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from flask_tracking import ingest
from flask_tracking.collector.http import accept, cors, incoming, invalid
from flask_tracking.errors import json_error
from flask_tracking.ingest.payload import parse_event_payload
from flask_tracking.security import url_length

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

PATH = "/api/event"
logger = logging.getLogger("flask_tracking.collector")


class EventEndpoint:
    """WSGI middleware: answer /api/event itself, pass every other request on."""

    def __init__(self, app: Flask, next_app: WSGIApplication) -> None:
        self.pipeline: ingest.Ingest = app.extensions["ingest"]
        self.next_app = next_app
        self.max_body = int(app.config["MAX_EVENT_BODY"])
        self.max_url_length = int(app.config["MAX_URL_LENGTH"])
        self.max_request_url = int(app.config["MAX_REQUEST_URL_LENGTH"])

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Route /api/event here and everything else to Flask."""
        if environ.get("PATH_INFO") != PATH:
            return self.next_app(environ, start_response)
        try:
            if url_length(environ) > self.max_request_url:
                message = f"The URL is longer than {self.max_request_url} bytes."
                response = json_error(414, "request_uri_too_long", message)
            else:
                response = self.answer(Request(environ))
        except Exception:  # never a traceback, never an HTML page, for a collector client
            logger.exception("unhandled exception in %s", PATH)
            response = json_error(500, "internal_server_error", "The event was not recorded.")
        return cors(response)(environ, start_response)

    def answer(self, request: Request) -> Response:
        """Validate and accept one event: 202, or 400/404/405/413/503 in the JSON envelope."""
        if request.method == "OPTIONS":
            return Response(status=204)
        if request.method != "POST":
            response = json_error(405, "method_not_allowed", "Send events with POST.")
            response.headers["Allow"] = "POST, OPTIONS"
            return response
        body = self._body(request)
        if body is None:
            return json_error(413, "too_large", f"The body is over {self.max_body} bytes.")
        try:
            data: Any = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested thousands of levels deep
            return json_error(400, "invalid_json", "The body is not valid JSON.")
        try:
            payload = parse_event_payload(data, self.max_url_length)
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
        return accept(self.pipeline, event, Response(status=202))

    def _body(self, request: Request) -> bytes | None:
        """Return the body, or None when it is over the limit (read no more than limit + 1)."""
        if (request.content_length or 0) > self.max_body:
            return None
        body = request.stream.read(self.max_body + 1)
        return None if len(body) > self.max_body else body
