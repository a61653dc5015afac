"""The WSGI client (server-side pageviews for Flask, Django and any WSGI app), for code that
has the server installed: the same module as the standalone `flask-tracking-client`
distribution (clients/python/flask_tracking_client), which needs nothing but the standard
library."""

from __future__ import annotations

from flask_tracking_client import Stats, Tracker, __version__

__all__ = ["Stats", "Tracker", "__version__"]
