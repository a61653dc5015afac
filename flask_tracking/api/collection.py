"""The collector's endpoints, described in the API's OpenAPI document (tag "Collection").

They are not /api/v1 operations — the tracker script and the image pixel call them from any
page, with no key — and they are served by collector/ and tracking/, not by spec.py's
registry. They are described here so that users find them beside the rest, and so that
Schemathesis fuzzes them against the same contract: every answer documented, every error in
the envelope, never a 5xx.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from flask_tracking.api.schemas import CollectedEvent, Visit

TAG = "Collection"
ABOUT = "What the tracker script and the image pixel send: no key, any origin."
DROP_REASONS = [
    "dnt",
    "prefetch",
    "bot",
    "referrer_spam",
    "excluded_ip",
    "excluded_path",
    "rate_limited",
    "engagement",
    "identify",
]
MODELS: list[type[BaseModel]] = [CollectedEvent, Visit]
DROPPED = {
    "X-Tracking-Dropped": {
        "description": "Present when the event was deliberately not counted: why.",
        "schema": {"type": "string", "enum": DROP_REASONS},
    }
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
MEANINGS = {
    400: "A field is not valid (`details` names each), or the body is not JSON.",
    404: "`unknown_site`: there is no site with this id.",
    413: "The body is over 8 KiB.",
    414: "The URL (path and query string) is longer than the server reads.",
    503: "`overloaded`: the collector's spool is full; retry after `Retry-After` seconds.",
}


def paths(
    schema_of: Mapping[type[BaseModel], str],
    envelope: Mapping[str, str],
    query_parameters: Callable[[type[BaseModel]], list[dict[str, Any]]],
) -> dict[str, dict[str, Any]]:
    """Return the OpenAPI path items of POST /api/event and GET /sites/{site_id}/visit."""

    def errors(*statuses: int) -> dict[str, Any]:
        described: dict[str, Any] = {}
        for status in statuses:
            answer: dict[str, Any] = {
                "description": MEANINGS[status],
                "content": {"application/json": {"schema": dict(envelope)}},
            }
            if status == 503:
                answer["headers"] = RETRY_AFTER
            described[str(status)] = answer
        return described

    event = {
        "operationId": "collect_event",
        "summary": "Collect an event (the tracker script)",
        "description": (
            "What the tracker script sends for each pageview and custom event, from any "
            "origin (CORS), without credentials. The visitor's address and browser come from "
            "the request itself. A 202 means the event is durably queued — or, with the "
            "`X-Tracking-Dropped` header, deliberately not counted (a bot, Do-Not-Track, an "
            "excluded address or path, or over the collector's rate limits). The body may "
            "also be sent as `text/plain`, as `navigator.sendBeacon` does."
        ),
        "tags": [TAG],
        "security": [],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": schema_of[CollectedEvent]}}},
        },
        "responses": {
            "202": {"description": "Queued, or dropped on purpose.", "headers": DROPPED},
            **errors(400, 404, 413, 414, 503),
        },
    }
    visit = {
        "operationId": "collect_visit",
        "summary": "Collect a visit (the image pixel)",
        "description": (
            "The original tutorial's collector, kept for `<img>` and `<noscript>` snippets: "
            "the page is `url` (or the Referer header). POST with the same fields as a form "
            "works too. An image request (Accept: image/…) gets a 1x1 GIF, anything else 204."
        ),
        "tags": [TAG],
        "security": [],
        "parameters": [
            {
                "name": "site_id",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
            },
            *query_parameters(Visit),
        ],
        "responses": {
            "200": {
                "description": "Queued (or dropped on purpose): a transparent 1x1 GIF.",
                "headers": DROPPED,
                "content": {"image/gif": {"schema": {"type": "string", "format": "binary"}}},
            },
            "204": {"description": "Queued, or dropped on purpose.", "headers": DROPPED},
            **errors(400, 404, 414, 503),
        },
    }
    posted = {
        **visit,
        "operationId": "collect_visit_form",
        "summary": "Collect a visit (a form post)",
        "description": "The same as the GET, with the fields in a form body or the query string.",
        "requestBody": {
            "required": False,
            "content": {
                "application/x-www-form-urlencoded": {"schema": {"$ref": schema_of[Visit]}}
            },
        },
    }
    return {
        "/api/event": {"post": event},
        "/sites/{site_id}/visit": {"get": visit, "post": posted},
    }
