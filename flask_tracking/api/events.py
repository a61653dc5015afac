"""POST /sites/{site_id}/events: a server-side event, through the collector's durable pipeline.

The body has /api/event's fields (checked by the same parse_event_payload) plus the visitor's
IP address and user agent, which a server sending on a visitor's behalf must pass explicitly:
the request's own address and agent are the server's. Bot detection and the site's excluded
addresses and paths apply as for browser events (Do-Not-Track is the caller's to honour: it
sees the visitor's headers); a 202 means the event is in the spool and will be stored.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from werkzeug.wrappers import Response

from flask_tracking import ingest
from flask_tracking.api.auth import Call
from flask_tracking.api.errors import invalid
from flask_tracking.api.schemas import EventAccepted, EventsAccepted, ServerEvent, ServerEventBatch
from flask_tracking.api.spec import json_response, operation
from flask_tracking.collector.http import accept
from flask_tracking.ingest.payload import parse_event_payload
from flask_tracking.ingest.sitecache import SiteInfo, site_info
from flask_tracking.tracking.models import Site
from flask_tracking.users.apikeys import READ_WRITE

DROPPED = "X-Tracking-Dropped"


def _collected_as(pipeline: Any, site: Site) -> SiteInfo:
    """The collector's view of the site (with its account's billing standing); the site was
    just read to authorise the key, so it is never "unknown" here."""
    return pipeline.sites.get(site.id) or site_info(site)


@operation(
    "POST",
    "/sites/{site_id}/events",
    scope=READ_WRITE,
    tag="Events",
    body=ServerEvent,
    response=EventAccepted,
    status=202,
    errors=(503,),
    summary="Send a server-side event",
)
def send_event(call: Call, body: ServerEvent) -> Response:
    """Record a pageview (the default `name`) or a custom event for a visitor. The answer says
    whether the event was queued or deliberately not counted (a bot, an excluded address or
    path, over the collector's rate limits), with the reason. Honour the visitor's
    Do-Not-Track yourself: send nothing. Events are stored within a second or so; reports
    include them once stored."""
    site = call.own_site()
    event = _incoming(site.id, body, "")
    queued = json_response(EventAccepted(status="accepted", reason=None), 202)
    pipeline = ingest.current_ingest()
    answer = accept(pipeline, event, queued, _collected_as(pipeline, site))
    if answer is queued and DROPPED in answer.headers:
        reason = answer.headers[DROPPED]
        answer.set_data(EventAccepted(status="dropped", reason=reason).model_dump_json())
    return answer


@operation(
    "POST",
    "/sites/{site_id}/events/batch",
    scope=READ_WRITE,
    tag="Events",
    body=ServerEventBatch,
    response=EventsAccepted,
    status=202,
    errors=(503,),
    summary="Send server-side events in a batch",
)
def send_events(call: Call, body: ServerEventBatch) -> Response:
    """Record up to 100 events at once, as `POST /sites/{site_id}/events` records one; the
    answer lists each one's outcome, in order. The batch is checked whole first: one bad
    event is a 400 naming it (`events.3.url`), and nothing of the batch is recorded."""
    site = call.own_site()
    events = [_incoming(site.id, item, f"events.{n}.") for n, item in enumerate(body.events)]
    pipeline = ingest.current_ingest()
    info = _collected_as(pipeline, site)
    results = []
    for event in events:
        queued = Response(status=202)
        answer = accept(pipeline, event, queued, info)
        if answer is not queued:  # the spool is full: the rest would be refused too
            return answer
        reason = answer.headers.get(DROPPED)
        results.append(EventAccepted(status="dropped" if reason else "accepted", reason=reason))
    return json_response(EventsAccepted(results=results), 202)


def _incoming(site_id: int, body: ServerEvent, prefix: str) -> ingest.Incoming:
    """The event a body describes, checked as /api/event checks it (a 400 naming the field,
    under `prefix`, otherwise)."""
    fields = body.model_dump(exclude={"ip", "user_agent"}, exclude_none=True)
    try:
        payload = parse_event_payload(
            {**fields, "site": site_id}, int(current_app.config["MAX_URL_LENGTH"])
        )
    except ingest.InvalidHit as error:
        details = {f"{prefix}{field}": problem for field, problem in error.errors.items()}
        raise invalid(details, "The event was not recorded.") from None
    return ingest.Incoming(
        site_id=site_id,
        name=payload.name,
        url=payload.url,
        referrer=payload.referrer,
        width=payload.width,
        props=payload.props,
        ip=str(body.ip),
        user_agent=body.user_agent,
        do_not_track=False,
    )
