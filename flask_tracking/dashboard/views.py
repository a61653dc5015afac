"""Dashboard pages: the owner's, its CSV export and realtime count, and shared links."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace
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
from flask_login import login_required
from sqlalchemy import select
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response

from flask_tracking.billing import gate
from flask_tracking.dashboard import export, format, page, privacy
from flask_tracking.dashboard.forms import DEFAULT_MIN_VISITORS, ShareForm, UnlockForm
from flask_tracking.errors import handle_error
from flask_tracking.extensions import db, limiter
from flask_tracking.imports import aggregates
from flask_tracking.reports import stats, worldmap
from flask_tracking.reports.dimensions import (
    DIMENSIONS,
    GOAL,
    OPERATOR_LABELS,
    Filter,
    InvalidQuery,
    dimension,
    join_values,
    parse_filter,
)
from flask_tracking.reports.params import parse_view, query_for
from flask_tracking.reports.ranges import COMPARISONS, LABELS, PRESETS, InvalidRange, zone_named
from flask_tracking.security import frame_ancestors
from flask_tracking.tracking import access
from flask_tracking.tracking import experiments as experiment_rows
from flask_tracking.tracking import funnels as funnel_rows
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


_site_or_abort = access.site_or_abort  # 404 without a role, 403 when too low


def _data(site: Site) -> page.DashboardData:
    gate.reports_or_abort(site)
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
    if shared is not None:  # a public link: nothing that singles out fewer than k visitors
        data = privacy.protect(data, shared.min_visitors)

    def link(args: Any, endpoint: str = "") -> str:
        return here(endpoint, **args.to_dict(flat=False))

    def filter_link(name: str, value: str) -> str:
        dim = GOAL if name == GOAL.name else DIMENSIONS[name]
        return link(data.view.with_filter(Filter.of_value(dim, value)))

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
            data.countries,
            filter_url=lambda code: filter_link("country", code),
            sprite_url=url_for("static", filename="vendor/world.svg")
            if format.world_sprite_available()
            else None,
        ),
        snippet=None if shared else snippet_for(site),
        has_imported=aggregates.has_any(site.id),
        base_url=here(),
        realtime_url=here("realtime"),
        details_link=lambda name: here("details", name=name, **data.view.args().to_dict(False)),
        suggest_url=here("suggest"),
        builder=FILTER_BUILDER,
        chart_library=format.chart_library_available(),
    )


# The filter dialog: what it offers (dimensions, operators), built once.
FILTER_BUILDER = {
    "dimensions": {name: dim.label for name, dim in DIMENSIONS.items()},
    "operators": OPERATOR_LABELS,
}
DETAILS_ROWS = 50
SUGGESTIONS = 20


def _added_filter(here: Callable[..., str]) -> Response | None:
    """The filter dialog's form (works without JavaScript too): add=dimension, op=operator,
    value=… (repeated: any of them), and the view's own parameters; redirect to the view with
    the filter added (replacing one on the same dimension)."""
    name = request.args.get("add")
    if name is None:
        return None
    args = request.args.copy()
    operator = args.get("op") or "is"
    values = [value for value in args.getlist("value") if value != "" or operator == "is"]
    for key in ("add", "op", "value"):
        args.poplist(key)
    view = parse_view(args)
    if not values:
        raise InvalidQuery("Choose at least one value for the filter.")
    dim = dimension(name)
    if operator in ("is", "is_not"):  # a country typed by name means its code
        values = [dim.stored(value.strip()) for value in values]
    flt = parse_filter(f"{name}:{operator}:{join_values(values)}")
    return redirect(here(**view.with_filter(flt).to_dict(flat=False)))


def _details(site: Site, name: str, here: Callable[..., str], k: int = 1) -> str:
    """Every value of one dimension for the view: searchable, sortable, a page at a time."""
    gate.reports_or_abort(site)
    dim = dimension(name)
    data_view = parse_view(request.args)
    query = query_for(site.id, site.timezone, data_view, datetime.now(UTC), site.definitions)
    search = request.args.get("q", "")
    sort = request.args.get("sort", "visitors")
    raw = request.args.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        raise InvalidQuery("page= is a number from 1.")
    number = int(raw)
    with stats.Report(query) as report:
        found = report.breakdown(
            dim, limit=DETAILS_ROWS, offset=(number - 1) * DETAILS_ROWS, sort=sort, search=search
        )
        if k > 1:  # a shared dashboard (privacy.py)
            if data_view.filters:
                visitors = report.aggregate(compare=False).current.visitors
                privacy.check_view(visitors, True, k)
            found = privacy.fold(found, k)
    args = data_view.args().to_dict(flat=False)

    def page_link(**changes: Any) -> str:
        keep = {"q": search or None, "sort": sort if sort != "visitors" else None, **changes}
        return here("details", name=name, **args, **{k: v for k, v in keep.items() if v})

    def filter_link(value: str) -> str:
        return here(**data_view.with_filter(Filter.of_value(dim, value)).to_dict(flat=False))

    return render_template(
        "dashboard/details.html",
        site=site,
        dim=dim,
        found=found,
        query=query,
        search=search,
        sort=sort,
        sorts=[m for m in ("visitors", "visits", "pageviews", "events") if m in dim.measures],
        number=number,
        pages=max(1, -(-found.total // DETAILS_ROWS)),
        page_link=page_link,
        filter_link=filter_link,
        back=here(**args),
        view=data_view,
    )


def _suggest(site: Site, k: int = 1) -> Response:
    """Values of a dimension for the filter dialog, most visitors first: those containing
    `q` (in their text or name), in the view's period, under its other filters."""
    gate.reports_or_abort(site)
    name = request.args.get("dimension", "")
    dim = dimension(name)
    view = parse_view(request.args)
    view = replace(view, filters=tuple(f for f in view.filters if f.dimension != dim))
    query = query_for(site.id, site.timezone, view, datetime.now(UTC), site.definitions)
    with stats.Report(query) as report:
        found = report.breakdown(dim, limit=SUGGESTIONS, search=request.args.get("q", ""))
    response = jsonify(
        results=[
            {"value": row.value, "label": row.label, "visitors": row.visitors}
            for row in found.rows
            if not privacy.too_few(row.visitors, k)
        ]
    )
    response.headers["Cache-Control"] = "private, max-age=60"
    return response


def _export(site: Site, k: int = 1) -> Response:
    data = privacy.protect(_data(site), k)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    name = f"flask-tracking-site{site.id}-{data.view.period}-{stamp}.zip"
    return Response(
        export.zip_of(data),
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _realtime(site: Site) -> Response:
    gate.reports_or_abort(site)
    response = jsonify(visitors=stats.realtime(site.id))
    response.headers["Cache-Control"] = "no-store"
    return response


# -- the owner's dashboard -------------------------------------------------------------------


def _owner_here(site: Site) -> Callable[..., str]:
    def here(endpoint: str = "", **args: Any) -> str:
        return url_for(f".{endpoint or 'show'}", site_id=site.id, **args)

    return here


@dashboard.route("/sites/<id:site_id>")
@login_required
def show(site_id: int) -> str | Response:
    """Show a site's dashboard for the period and filters in the URL."""
    site = _site_or_abort(site_id)
    here = _owner_here(site)
    return _added_filter(here) or _render(site, here)


@dashboard.route("/sites/<id:site_id>/details/<name>")
@login_required
def details(site_id: int, name: str) -> str:
    """One panel's every value, searchable and sortable, for the dashboard's view."""
    site = _site_or_abort(site_id)
    return _details(site, name, _owner_here(site))


@dashboard.route("/sites/<id:site_id>/suggest")
@login_required
def suggest(site_id: int) -> Response:
    """Values for the filter dialog, as JSON."""
    return _suggest(_site_or_abort(site_id))


@dashboard.route("/sites/<id:site_id>/export.zip")
@login_required
def export_zip(site_id: int) -> Response:
    """Download the current view as one CSV per panel in a zip."""
    return _export(_site_or_abort(site_id))


@dashboard.route("/sites/<id:site_id>/realtime")
@login_required
def realtime(site_id: int) -> Response:
    """Return the current visitors (last 5 minutes) as JSON, for the page to refresh."""
    return _realtime(_site_or_abort(site_id))


@dashboard.route("/sites/<id:site_id>/experiments/<id:experiment_id>")
@login_required
def experiment(site_id: int, experiment_id: int) -> str:
    """Show an experiment's results over its window (to now while it runs)."""
    site = _site_or_abort(site_id)
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
    site = _site_or_abort(site_id)
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
            min_visitors=(
                DEFAULT_MIN_VISITORS if form.min_visitors.data is None else form.min_visitors.data
            ),
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
    site = _site_or_abort(site_id)
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

    here = _shared_here(token)
    return _added_filter(here) or _render(link.site, here, shared=link)


def _shared_here(token: str) -> Callable[..., str]:
    def here(endpoint: str = "", **args: Any) -> str:
        return url_for(SHARED_ENDPOINTS[endpoint], token=token, **args)

    return here


SHARED_ENDPOINTS = {
    "": ".shared",
    "export_zip": ".shared_export",
    "realtime": ".shared_realtime",
    "details": ".shared_details",
    "suggest": ".shared_suggest",
}


def _unlocked_link(token: str) -> SharedLink:
    link = _shared_or_404(token)
    if not _unlocked(link):
        abort(404)
    return link


@dashboard.route("/share/<token>/details/<name>")
def shared_details(token: str, name: str) -> str:
    """A shared dashboard's details view."""
    link = _unlocked_link(token)
    frame_ancestors(link.origins)
    return _details(link.site, name, _shared_here(token), k=link.min_visitors)


@dashboard.route("/share/<token>/suggest")
def shared_suggest(token: str) -> Response:
    """Values for a shared dashboard's filter dialog."""
    link = _unlocked_link(token)
    return _suggest(link.site, k=link.min_visitors)


@dashboard.route("/share/<token>/export.zip")
def shared_export(token: str) -> Response:
    """The CSV export of a shared dashboard."""
    link = _unlocked_link(token)
    return _export(link.site, k=link.min_visitors)


@dashboard.route("/share/<token>/realtime")
def shared_realtime(token: str) -> Response:
    """The current visitors of a shared dashboard."""
    return _realtime(_unlocked_link(token).site)
