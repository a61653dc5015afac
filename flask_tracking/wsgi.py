"""The WSGI application for production servers (`flask_tracking.wsgi:app`)."""

from __future__ import annotations

from flask_tracking import create_app

app = create_app()
