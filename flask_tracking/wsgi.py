"""The WSGI application for production servers (`flask_tracking.wsgi:app`)."""

from __future__ import annotations

from flask_tracking import create_app
from flask_tracking.serving import watch_supervisor

app = create_app()
watch_supervisor()  # under `flask-tracking serve`: never outlive the supervisor
