"""The tracking snippet pasted into a site's pages."""

from __future__ import annotations

import html

from flask import url_for

from flask_tracking.collector.views import tracker_url
from flask_tracking.tracking.models import Site

# The smallest valid transparent GIF (43 bytes): the cheapest image a browser will accept.
TRANSPARENT_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def snippet_for(site: Site) -> str:
    """Return the HTML a site owner pastes into every page: the tracker, and a no-JS pixel."""
    # The collector's base URL: this app's external origin (plus any script root it is mounted
    # under), to which the tracker appends /api/event.
    api = url_for("collector.event", _external=True).removesuffix("/api/event")
    pixel = url_for("tracking.add_visit", site_id=site.id, event="PageLoad", _external=True)
    # The snippet is shown to the owner as text (escaped by the template), so it is a plain str.
    return (
        f'<script defer data-site="{site.id}" data-api="{html.escape(api)}" '
        f'src="{html.escape(tracker_url())}"></script>\n'
        f'<noscript><img src="{html.escape(pixel)}" width="1" height="1" alt="" '
        'style="position:absolute"></noscript>'
    )
