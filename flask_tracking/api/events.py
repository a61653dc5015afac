"""POST /sites/{site_id}/events: a server-side event, through the collector's durable pipeline.

The body has /api/event's fields (checked by the same parse_event_payload) plus the visitor's
IP address and user agent, which a server sending on a visitor's behalf must pass explicitly:
the request's own address and agent are the server's. Bot detection and the site's excluded
addresses and paths apply as for browser events (Do-Not-Track is the caller's to honour: it
sees the visitor's headers); a 202 means the event is in the spool and will be stored.
"""

from __future__ import annotations

from flask import current_app
from werkzeug.wrappers import Response

from flask_tracking import ingest
from flask_tracking.api.auth import Call
from flask_tracking.api.errors import invalid
from flask_tracking.api.schemas import EventAccepted, ServerEvent
from flask_tracking.api.spec import json_response, operation
from flask_tracking.collector.http import accept
from flask_tracking.ingest.payload import parse_event_payload
from flask_tracking.ingest.sitecache import site_info
from flask_tracking.users.apikeys import READ_WRITE

DROPPED = "X-Tracking-Dropped"


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
    fields = body.model_dump(exclude={"ip", "user_agent"}, exclude_none=True)
    try:
        payload = parse_event_payload(
            {**fields, "site": site.id}, int(current_app.config["MAX_URL_LENGTH"])
        )
    except ingest.InvalidHit as error:
        raise invalid(error.errors, "The event was not recorded.") from None
    event = ingest.Incoming(
        site_id=site.id,
        name=payload.name,
        url=payload.url,
        referrer=payload.referrer,
        width=payload.width,
        props=payload.props,
        ip=str(body.ip),
        user_agent=body.user_agent,
        do_not_track=False,
    )
    queued = json_response(EventAccepted(status="accepted", reason=None), 202)
    # The site was just read to authorise the key: never "unknown" to the collector's cache.
    answer = accept(ingest.current_ingest(), event, queued, site_info(site))
    if answer is queued and DROPPED in answer.headers:
        reason = answer.headers[DROPPED]
        answer.set_data(EventAccepted(status="dropped", reason=reason).model_dump_json())
    return answer
