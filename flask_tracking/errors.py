"""One handler for every HTTP error and unhandled exception: an HTML page or a JSON body."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask, current_app, render_template, request
from jinja2 import TemplateNotFound
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable
from werkzeug.wrappers import Response

from flask_tracking.events.remote import StoreUnavailable

# Paths whose clients are programs, not people: they always get JSON (matched on the path, so
# that a request the router refuses, such as a wrong method, is answered in JSON too).
JSON_PATH_PREFIXES = ("/api/",)
JSON_PATHS = re.compile(r"/sites/[^/]+/visit/?")
STORE_RETRY_SECONDS = 5


def init_app(app: Flask) -> None:
    """Register the handler for every exception."""
    app.register_error_handler(Exception, handle_error)


def json_error(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    """Return the one JSON error envelope the app uses."""
    body = {"error": {"status": status, "code": code, "message": message, "details": details or {}}}
    # Built without Flask's app context, so the WSGI event endpoint can answer with it too.
    return Response(json.dumps(body), status=status, mimetype="application/json")


def wants_json() -> bool:
    """Tell whether this request should be answered in JSON rather than HTML."""
    if request.path.startswith(JSON_PATH_PREFIXES) or JSON_PATHS.fullmatch(request.path):
        return True
    accept = request.accept_mimetypes
    return accept["application/json"] > accept["text/html"]


def handle_error(error: Exception) -> Response | tuple[str, int]:
    """Render an HTTP error with its own status; log and hide anything unexpected as a 500.

    The event store out of reach (its owning process restarting, say) is a 503 with
    Retry-After: the request was fine, the service is briefly not.
    """
    if isinstance(error, StoreUnavailable | SQLAlchemyError):
        component = "event_store" if isinstance(error, StoreUnavailable) else "web"
        current_app.extensions["metrics"].database_error(component)
    if isinstance(error, StoreUnavailable):
        current_app.logger.warning("event store unavailable: %s", error)
        error = ServiceUnavailable(
            "The event store is not available right now; try again in a few seconds.",
            retry_after=STORE_RETRY_SECONDS,
        )
    elif not isinstance(error, HTTPException):
        current_app.logger.exception("unhandled exception")
        error = InternalServerError()
    status = error.code or 500
    if wants_json():
        code = (error.name or "error").lower().replace(" ", "_")
        response = json_error(status, code, error.description or error.name)
        for name, value in error.get_headers():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
        return response
    try:
        page = render_template(f"errors/{status}.html", error=error)
    except TemplateNotFound:
        page = render_template("errors/generic.html", error=error)
    response = Response(page, status=status, mimetype="text/html")
    for name, value in error.get_headers():
        if name.lower() in ("retry-after", "allow", "www-authenticate"):
            response.headers[name] = value
    return response
