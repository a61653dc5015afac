"""The baseline for `make bench-ingest`: the smallest WSGI app, answering each event 204.

Served by Granian with the same interface, worker count and flags as `flask-tracking serve`
(see flask_tracking.serving.granian_command), so the difference to the real collector is the
application's own per-request cost. It reads the body, as a real endpoint must, and answers
405 to anything but POST, as the collector does: the load script's end-of-run "tail" requests
are GETs it tells apart by that status.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Drain the request body and answer 204 No Content (405 unless POST)."""
    if environ["REQUEST_METHOD"] != "POST":
        start_response("405 Method Not Allowed", [("Allow", "POST"), ("Content-Length", "0")])
        return []
    length = environ.get("CONTENT_LENGTH")
    if length:
        environ["wsgi.input"].read(int(length))
    start_response("204 No Content", [])
    return []
