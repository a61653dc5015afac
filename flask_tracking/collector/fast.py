"""The fast path: the ordinary `POST /api/event` answered straight from the WSGI environ.

Every page view of every tracked site comes through here, so this is the one request whose
cost decides how much traffic a server takes. It is the outermost WSGI callable and handles
only the common case — a POST with a Content-Length, a UTF-8 JSON body that validates — with
the same validation (`parse_event_payload`), the same pipeline (`Ingest.accept`: site lookup,
rate limits, drop reasons, spool record) and the same answer, header for header, as the normal
path; it just skips what the common case does not need (a Werkzeug request and response,
ProxyFix's environ rewrite, the stdlib JSON module).

Anything it is not sure about goes on, untouched but for the body it read, to the normal path
(ProxyFix → `EventEndpoint` → Flask), which answers it as it always has: other methods, a
missing or oversize length, bodies orjson refuses or may read differently from the stdlib
(integers beyond 64 bits, which it reads as floats), invalid events (the normal path words
the 400). tests/collector/test_fast_path.py sends one corpus through both paths and compares
the answers and spool records.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

import orjson
from werkzeug.http import parse_list_header

from flask_tracking import ingest
from flask_tracking.collector.endpoint import PATH
from flask_tracking.collector.http import CORS_HEADERS, INSPECTED_HEADERS, cors, refusal
from flask_tracking.errors import json_error
from flask_tracking.ingest.payload import EventPayload, parse_event_payload
from flask_tracking.ingest.records import huge
from flask_tracking.security import url_length

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

logger = logging.getLogger("flask_tracking.collector")
ACCEPTED = "202 ACCEPTED"
# What Werkzeug sends for Response(status=202) after cors(): the same names, values and order.
_PLAIN = ("Content-Type", "text/plain; charset=utf-8")
_EMPTY = ("Content-Length", "0")
ACCEPTED_HEADERS = [_PLAIN, *CORS_HEADERS, _EMPTY]
# The environ keys of the headers bot/prefetch detection looks at.
_INSPECTED_KEYS = tuple(
    (name, "HTTP_" + name.upper().replace("-", "_")) for name in INSPECTED_HEADERS
)


def dropped_headers(reason: str) -> list[tuple[str, str]]:
    """The headers of a 202 whose event was dropped (X-Tracking-Dropped comes before CORS)."""
    return [_PLAIN, ("X-Tracking-Dropped", reason), *CORS_HEADERS, _EMPTY]


class FastPath:
    """WSGI middleware in front of everything: answers the ordinary event, passes the rest on."""

    def __init__(self, app: Flask, next_app: WSGIApplication) -> None:
        self.pipeline: ingest.Ingest = app.extensions["ingest"]
        self.next_app = next_app
        self.max_body = int(app.config["MAX_EVENT_BODY"])
        self.max_url_length = int(app.config["MAX_URL_LENGTH"])
        self.max_request_url = int(app.config["MAX_REQUEST_URL_LENGTH"])
        self.proxy_count = int(app.config["PROXY_COUNT"])
        self._dropped: dict[str, list[tuple[str, str]]] = {}
        self.extensions = app.extensions
        self.answered = 0  # events answered here rather than by the normal path (for tests)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer an ordinary event here; hand anything else to the normal path."""
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.next_app(environ, start_response)
        started = time.perf_counter()
        event = self._event(environ)
        if event is None:
            return self.next_app(environ, start_response)
        try:
            reason = self.pipeline.accept(event)
        except (ingest.UnknownSite, ingest.SpoolFull) as error:
            response = cors(refusal(error, event.site_id))
        except Exception:  # as the normal path: never a traceback for a collector client
            logger.exception("unhandled exception in %s", PATH)
            response = cors(json_error(500, "internal_server_error", "The event was not recorded."))
        else:
            self.answered += 1
            start_response(ACCEPTED, self._headers(reason) if reason else ACCEPTED_HEADERS)
            self._tally(started, "202")
            return [b""]
        self._tally(started, str(response.status_code))
        return response(environ, start_response)

    def _tally(self, started: float, status: str) -> None:
        # The metrics are looked up per request: `serve` replaces them in its own process.
        self.extensions["metrics"].tally.request(
            PATH, "POST", status, time.perf_counter() - started
        )

    def _headers(self, reason: str) -> list[tuple[str, str]]:
        headers = self._dropped.get(reason)
        if headers is None:
            headers = self._dropped[reason] = dropped_headers(reason)
        return headers

    def _event(self, environ: WSGIEnvironment) -> ingest.Incoming | None:
        """Return the request's event, or None to leave the request to the normal path."""
        payload = self._payload(self._body(environ))
        if payload is None:
            return None
        get = environ.get
        return ingest.Incoming(
            site_id=payload.site_id,
            name=payload.name,
            url=payload.url,
            referrer=payload.referrer,
            width=payload.width,
            props=payload.props,
            ip=self._client_address(environ),
            user_agent=get("HTTP_USER_AGENT", "")[:1024],
            do_not_track=get("HTTP_DNT") == "1",
            headers={name: environ[key] for name, key in _INSPECTED_KEYS if key in environ},
        )

    def _body(self, environ: WSGIEnvironment) -> bytes | None:
        """Read a body of a known length within the limits (handing it back for the normal
        path), or None without reading anything."""
        length = environ.get("CONTENT_LENGTH") or ""
        if (
            not (length.isascii() and length.isdigit())
            or url_length(environ) > self.max_request_url
        ):
            return None
        size = int(length)
        if not 0 < size <= self.max_body:
            return None
        body: bytes = environ["wsgi.input"].read(size)
        environ["wsgi.input"] = io.BytesIO(body)
        return body if len(body) == size else None

    def _payload(self, body: bytes | None) -> EventPayload | None:
        """The valid event a body holds, or None when the normal path should have a look."""
        try:
            data = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            return None
        if type(data) is not dict:
            return None
        try:
            payload = parse_event_payload(data, self.max_url_length)
        except ingest.InvalidHit:
            return None
        if payload.props and any(huge(value) for value in payload.props.values()):
            return None  # maybe an integer orjson read as a float: the stdlib keeps it exact
        return payload

    def _client_address(self, environ: WSGIEnvironment) -> str | None:
        """The visitor's address as ProxyFix(x_for=PROXY_COUNT) would make REMOTE_ADDR."""
        address: str | None = environ.get("REMOTE_ADDR")
        if self.proxy_count:
            forwarded = environ.get("HTTP_X_FORWARDED_FOR")
            if forwarded:
                values = parse_list_header(forwarded)
                if len(values) >= self.proxy_count and values[-self.proxy_count]:
                    address = values[-self.proxy_count]
        return address
