"""Dashboard pages: the owner's, its CSV export and realtime count, and shared links."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response

from flask_tracking.dashboard import export, format, page
from flask_tracking.dashboard.forms import ShareForm, UnlockForm
from flask_tracking.errors import handle_error
from flask_tracking.extensions import db, limiter
from flask_tracking.reports import stats, worldmap
from flask_tracking.reports.dimensions import DIMENSIONS, GOAL, Filter, InvalidQuery
from flask_tracking.reports.params import parse_view, query_for
from flask_tracking.reports.ranges import COMPARISONS, LABELS, PRESETS, InvalidRange, zone_named
from flask_tracking.security import frame_ancestors
from flask_tracking.tracking import experiments as experiment_rows
from flask_tracking.tracking import funnels as funnel_rows
from flask_tracking.tracking import sites as site_rules
from flask_tracking.tracking.models import SharedLink, Site
from flask_tracking.tracking.snippet import snippet_for
from flask_tracking.users.forms import ConfirmForm
from flask_tracking.users.passwords import hash_password, verify_password

dashboard = Blueprint("dashboard", __name__)
format.register(dashboard)
UNLOCKED = "unlocked_shares"  # session key: ids of password-protected links opened here


@dashboard.errorhandler(InvalidQuery)
@dashboard.errorhandler(InvalidRange)
def bad_view(error: ValueError) -> Response | tuple[str, int]:
    """A view the URL cannot mean is the client's mistake: 400 with the reason."""
    return handle_error(BadRequest(description=str(error)))


def _own_site_or_404(site_id: int) -> Site:
    site = site_rules.owned_site(current_user, site_id)
    if site is None:
        abort(404)
    return site


def _data(site: Site) -> page.DashboardData:
    view = parse_view(request.args)
    now = datetime.now(UTC)
    query = query_for(site.id, site.timezone, view, now, site.definitions)
    funnel = None
    if view.funnel is not None:
        row = funnel_rows.named(site, view.funnel)
        if row is None:
            raise InvalidQuery(f"This site has no funnel named {view.funnel[:120]!r}.")
        funnel = (row.definition, row.across_visits)
    return page.build(view, query, funnel=funnel, now=now)


def _render(site: Site, here: Callable[..., str], *, shared: SharedLink | None = None) -> str:
    data = _data(site)

    def link(args: Any, endpoint: str = "") -> str:
        return here(endpoint, **args.to_dict(flat=False))

    def filter_link(name: str, value: str) -> str:
        dim = GOAL if name == GOAL.name else DIMENSIONS[name]
        return link(data.view.with_filter(Filter(dim, "is", value)))

    return render_template(
        "dashboard/dashboard.html",
        site=site,
        data=data,
        view=data.view,
        shared=shared,
        link=link,
        filter_link=filter_link,
        panels=page.PANELS,
        periods={preset: LABELS[preset] for preset in PRESETS},
        comparisons=COMPARISONS,
        today=datetime.now(UTC).astimezone(zone_named(site.timezone)).date().isoformat(),
        world_map=worldmap.render_map(
            data.countries, filter_url=lambda code: filter_link("country", code)
        ),
        snippet=None if shared else snippet_for(site),
        base_url=here(),
        realtime_url=here("realtime"),
        chart_library=format.chart_library_available(),
    )


def _export(site: Site) -> Response:
    data = _data(site)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    name = f"flask-tracking-site{site.id}-{data.view.period}-{stamp}.zip"
    return Response(
        export.zip_of(data),
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _realtime(site: Site) -> Response:
    response = jsonify(visitors=stats.realtime(site.id))
    response.headers["Cache-Control"] = "no-store"
    return response


# -- the owner's dashboard -------------------------------------------------------------------


@dashboard.route("/sites/<id:site_id>")
@login_required
def show(site_id: int) -> str:
    """Show a site's dashboard for the period and filters in the URL."""
    site = _own_site_or_404(site_id)

    def here(endpoint: str = "", **args: Any) -> str:
        return url_for(f".{endpoint or 'show'}", site_id=site.id, **args)

    return _render(site, here)


@dashboard.route("/sites/<id:site_id>/export.zip")
@login_required
def export_zip(site_id: int) -> Response:
    """Download the current view as one CSV per panel in a zip."""
    return _export(_own_site_or_404(site_id))


@dashboard.route("/sites/<id:site_id>/realtime")
@login_required
def realtime(site_id: int) -> Response:
    """Return the current visitors (last 5 minutes) as JSON, for the page to refresh."""
    return _realtime(_own_site_or_404(site_id))


@dashboard.route("/sites/<id:site_id>/experiments/<id:experiment_id>")
@login_required
def experiment(site_id: int, experiment_id: int) -> str:
    """Show an experiment's results over its window (to now while it runs)."""
    site = _own_site_or_404(site_id)
    row = experiment_rows.experiment_of(site, experiment_id)
    if row is None:
        abort(404)
    definition = row.definition
    result = stats.experiment_results(site.id, definition, now=datetime.now(UTC))
    return render_template(
        "dashboard/experiment.html",
        site=site,
        row=row,
        experiment=definition,
        result=result,
        confirm=ConfirmForm(),
    )


# -- shared links: managed by the owner ------------------------------------------------------


@dashboard.route("/sites/<id:site_id>/shares", methods=["GET", "POST"])
@login_required
def shares(site_id: int) -> str | Response:
    """List a site's shared links and create one."""
    site = _own_site_or_404(site_id)
    form = ShareForm()
    if form.validate_on_submit():
        password = form.password.data or ""
        rounds = int(current_app.config["HASH_ROUNDS"])
        link = SharedLink(
            site_id=site.id,
            name=(form.name.data or "").strip(),
            token=secrets.token_urlsafe(32),
            password_hash=hash_password(password, rounds) if password else None,
            embed_origins=form.embed_origins.data or "",
        )
        db.session.add(link)
        db.session.commit()
        flash("Shared link created. Anyone with it can see this dashboard.", "success")
        return redirect(url_for(".shares", site_id=site.id))
    links = db.session.scalars(
        select(SharedLink).where(SharedLink.site_id == site.id).order_by(SharedLink.id)
    ).all()
    return render_template(
        "dashboard/shares.html", site=site, form=form, links=links, confirm=ConfirmForm()
    )


@dashboard.route("/sites/<id:site_id>/shares/<id:link_id>/revoke", methods=["POST"])
@login_required
def revoke_share(site_id: int, link_id: int) -> Response:
    """Revoke a shared link: it stops working at once."""
    site = _own_site_or_404(site_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400, description="The form expired; reload the page and try again.")
    link = db.session.get(SharedLink, link_id)
    if link is None or link.site_id != site.id:
        abort(404)
    db.session.delete(link)
    db.session.commit()
    flash("Shared link revoked.", "info")
    return redirect(url_for(".shares", site_id=site.id))


# -- shared links: what their holders see ----------------------------------------------------


def _shared_or_404(token: str) -> SharedLink:
    if len(token) > 64:
        abort(404)
    link: SharedLink | None = db.session.scalar(select(SharedLink).where(SharedLink.token == token))
    if link is None:
        abort(404)
    return link


def _unlocked(link: SharedLink) -> bool:
    return link.password_hash is None or link.id in session.get(UNLOCKED, [])


@dashboard.route("/share/<token>", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def shared(token: str) -> str | Response:
    """Show a shared dashboard, after its password when it has one."""
    link = _shared_or_404(token)
    frame_ancestors(link.origins)  # the owner's embed option: who may show it in a frame
    if not _unlocked(link):
        form = UnlockForm()
        if form.validate_on_submit():
            if verify_password(form.password.data or "", link.password_hash or ""):
                session[UNLOCKED] = [*session.get(UNLOCKED, []), link.id][-50:]
                args: dict[str, Any] = request.args.to_dict(flat=False)
                return redirect(url_for(".shared", token=token, **args))
            form.password.errors = ["That password is not right."]
        return render_template("dashboard/unlock.html", form=form, link=link)

    def here(endpoint: str = "", **args: Any) -> str:
        target = {"": ".shared", "export_zip": ".shared_export", "realtime": ".shared_realtime"}
        return url_for(target[endpoint], token=token, **args)

    return _render(link.site, here, shared=link)


@dashboard.route("/share/<token>/export.zip")
def shared_export(token: str) -> Response:
    """The CSV export of a shared dashboard."""
    link = _shared_or_404(token)
    if not _unlocked(link):
        abort(404)
    return _export(link.site)


@dashboard.route("/share/<token>/realtime")
def shared_realtime(token: str) -> Response:
    """The current visitors of a shared dashboard."""
    link = _shared_or_404(token)
    if not _unlocked(link):
        abort(404)
    return _realtime(link.site)
