"""The tracking snippet pasted into a site's pages."""

from __future__ import annotations

import html
import json

from flask import url_for

from flask_tracking.tracking.models import Site

# The smallest valid transparent GIF (43 bytes): the cheapest image a browser will accept.
TRANSPARENT_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def snippet_for(site: Site) -> str:
    """Return the HTML a site owner pastes into every page."""
    endpoint = url_for("tracking.add_visit", site_id=site.id, _external=True)
    pixel = url_for("tracking.add_visit", site_id=site.id, event="PageLoad", _external=True)
    # The script sends the page URL and referrer explicitly: Referer headers are often trimmed
    # to the origin by the browser's referrer policy.
    script = (
        "(function(){var i=new Image(1,1);"
        f"i.src={json.dumps(endpoint)}+'?event=PageLoad&url='+encodeURIComponent(location.href)"
        "+'&ref='+encodeURIComponent(document.referrer);})();"
    )
    # The snippet is shown to the owner as text (escaped by the template), so it is a plain str.
    return (
        f"<script>{script}</script>\n"
        f'<noscript><img src="{html.escape(pixel)}" width="1" height="1" alt="" '
        'style="position:absolute"></noscript>'
    )
