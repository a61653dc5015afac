"""The site dashboard: reports for owners, their CSV export, and secret shared links."""

from flask_tracking.dashboard.views import dashboard

__all__ = ["dashboard"]
