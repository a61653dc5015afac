"""Where billing touches the rest of the app: the reports a plan hides over quota, the API a
plan does not include, the sites it allows. Each is a no-op while billing is off."""

from __future__ import annotations

from flask import abort, current_app, render_template
from werkzeug.wrappers import Response

from flask_tracking.billing import enabled, service
from flask_tracking.tracking.models import Site


def reports_or_abort(site: Site) -> None:
    """Answer 402 with a page asking to upgrade when the site's account is over quota on a
    plan that hides reports (it keeps collecting)."""
    if enabled(current_app) and service.reports_hidden(site.owner_id):
        page = render_template("billing/hidden.html", site=site)
        abort(Response(page, 402, mimetype="text/html"))


def reports_refusal(site: Site | None) -> str | None:
    """The API's reason to refuse a report, or None."""
    if site is not None and enabled(current_app) and service.reports_hidden(site.owner_id):
        return (
            "This site's account is over its plan's monthly events: reports are hidden until "
            "it upgrades (events are still collected)."
        )
    return None


def api_refusal(owner_id: int) -> str | None:
    """Why an account's plan does not allow the API, or None."""
    if enabled(current_app) and not service.api_allowed(owner_id):
        return "This account's plan does not include the API (or the account is locked)."
    return None


def new_site_refusal(owner_id: int) -> str | None:
    """Why the account may not add a site now, or None."""
    return service.site_allowed(owner_id) if enabled(current_app) else None


def seat_refusal(owner_id: int, email: str) -> str | None:
    """Why the account may not invite this address now (its plan's seats), or None."""
    return service.seat_allowed(owner_id, email) if enabled(current_app) else None
