"""POST /api/event as a plain WSGI endpoint in front of Flask.

The events endpoint is the hot path: every page view of every tracked site. It needs none of
what Flask does per request (sessions, CSRF, login, rate limits, templates), which cost more
than the event itself, so it is answered here, with the same validation and the same
`accept()` as the /sites/<id>/visit view. Everything else goes on to Flask.

It also takes other trackers' formats (collector/compat.py): Plausible's on the same path
(told apart by its shape) and Umami's on /api/send, each answered as its original server does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from flask_tracking import ingest
from flask_tracking.collector import compat
from flask_tracking.collector.http import accept, cors, incoming, invalid
from flask_tracking.errors import json_error
from flask_tracking.ingest.hit import check_url
from flask_tracking.ingest.payload import parse_event_payload
from flask_tracking.ingest.sitecache import SiteInfo
from flask_tracking.security import url_length

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

PATH = "/api/event"
UMAMI_PATH = "/api/send"
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
        """Route /api/event and /api/send here and everything else to Flask."""
        path = environ.get("PATH_INFO")
        if path == UMAMI_PATH:
            return self._answer_safely(environ, start_response, self.umami, umami_cors)
        if path != PATH:
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
        early = _preflight_or_method(request, plain=False)
        if early is not None:
            return early
        body = self._body(request)
        if body is None:
            return json_error(413, "too_large", f"The body is over {self.max_body} bytes.")
        try:
            data: Any = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested thousands of levels deep
            return json_error(400, "invalid_json", "The body is not valid JSON.")
        if compat.is_plausible(data):
            return self.plausible(request, data)
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

    def _answer_safely(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        answer: Any,
        headers: Any,
    ) -> Iterable[bytes]:
        try:
            if url_length(environ) > self.max_request_url:
                response = Response("URI too long.", status=414, mimetype="text/plain")
            else:
                response = answer(Request(environ))
        except Exception:  # never a traceback for a collector client
            logger.exception("unhandled exception in %s", environ.get("PATH_INFO"))
            response = Response("Internal server error.", status=500, mimetype="text/plain")
        answered: Iterable[bytes] = headers(response)(environ, start_response)
        return answered

    # -- Plausible's Events API (the same path, its shape) --------------------------------

    def plausible(self, request: Request, data: dict[str, Any]) -> Response:
        """202 "ok" as Plausible answers; a domain not found (or a drop) adds
        X-Plausible-Dropped: 1; bad input is 400 {"errors": {field: [message]}}."""
        try:
            found = compat.parse_plausible(data, self.max_url_length)
        except compat.CompatError as error:
            body = {"errors": {field: [message] for field, message in error.errors.items()}}
            return Response(json.dumps(body), status=400, mimetype="application/json")
        answer = Response("ok", status=202, mimetype="text/plain")
        sites = {info.id: info for d in found.names if (info := self.pipeline.sites.by_host(d))}
        if not sites:
            answer.headers["X-Plausible-Dropped"] = "1"
            return answer
        for info in sites.values():
            if found.name == compat.PLAUSIBLE_ENGAGEMENT:
                answer.headers["X-Tracking-Dropped"] = self.pipeline.drop(info, "engagement")
                continue
            event = incoming(
                request,
                info.id,
                name=found.name,
                url=found.url,
                referrer=found.referrer,
                width=found.width,
                props=found.props,
            )
            answer = accept(self.pipeline, event, answer, info)
            if answer.status_code != 202:
                return answer
        if "X-Tracking-Dropped" in answer.headers:
            answer.headers["X-Plausible-Dropped"] = "1"
        return answer

    # -- Umami's /api/send -----------------------------------------------------------------

    def umami(self, request: Request) -> Response:
        """200 with a JSON body as Umami answers; bad input 400 with a message."""
        early = _preflight_or_method(request, plain=True)
        if early is not None:
            return early
        body = self._body(request)
        if body is None:
            return Response("Payload too large.", status=413, mimetype="text/plain")
        try:
            kind, found = compat.parse_umami(json.loads(body), self.max_url_length)
            info = self._umami_site(found.names[0])
            url = self._umami_url(found.url, info)
        except (ValueError, RecursionError) as error:
            problems = error.errors if isinstance(error, compat.CompatError) else {"body": "JSON"}
            message = "; ".join(f"{field}: {problem}" for field, problem in problems.items())
            return Response(f"Bad request: {message}", status=400, mimetype="text/plain")
        answer = Response(json.dumps({"cache": ""}), status=200, mimetype="application/json")
        if kind == "identify":
            answer.headers["X-Tracking-Dropped"] = self.pipeline.drop(info, "identify")
            return answer
        event = incoming(
            request,
            info.id,
            name=found.name,
            url=url,
            referrer=found.referrer,
            width=found.width,
            props=found.props,
        )
        return accept(self.pipeline, event, answer, info)

    def _umami_site(self, website: str) -> SiteInfo:
        """The site an Umami website id names: its own id set by the owner, or its number."""
        sites = self.pipeline.sites
        info = sites.get(int(website)) if website.isdigit() else sites.by_umami_id(website)
        if info is None:
            raise compat.CompatError({"website": "Website not found."})
        return info

    def _umami_url(self, url: str, info: SiteInfo) -> str:
        """The page: the URL sent, or its path on the site's host (server-side clients often
        send a path or nothing)."""
        if not url.startswith(("http://", "https://")):
            url = f"https://{info.host}{url if url.startswith('/') else '/'}"
        if problem := check_url(url, self.max_url_length):
            raise compat.CompatError({"url": problem})
        return url


def _preflight_or_method(request: Request, *, plain: bool) -> Response | None:
    """The answer to a preflight (204) or a method other than POST (405), else None."""
    if request.method == "OPTIONS":
        return Response(status=204)
    if request.method == "POST":
        return None
    if plain:
        response = Response("Method not allowed.", status=405, mimetype="text/plain")
    else:
        response = json_error(405, "method_not_allowed", "Send events with POST.")
    response.headers["Allow"] = "POST, OPTIONS"
    return response


UMAMI_ALLOWED_HEADERS = "Content-Type, x-umami-cache"


def umami_cors(response: Response) -> Response:
    """Umami's browser script sends JSON with its cache header: both must pass a preflight."""
    cors(response)
    response.headers["Access-Control-Allow-Headers"] = UMAMI_ALLOWED_HEADERS
    return response
