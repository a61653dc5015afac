"""Sites pages and the visit collector."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from flask_tracking import ingest
from flask_tracking.billing import gate
from flask_tracking.collector import http as collect_http
from flask_tracking.extensions import csrf, limiter
from flask_tracking.ingest.sitecache import site_info
from flask_tracking.reports import visits as visits_report
from flask_tracking.reports.experiments import MAX_EXPERIMENTS, InvalidExperiment
from flask_tracking.reports.funnels import MAX_FUNNELS, InvalidFunnel
from flask_tracking.reports.goals import MAX_GOALS, InvalidGoal
from flask_tracking.reports.ranges import zone_named
from flask_tracking.tracking import access, erasure
from flask_tracking.tracking import experiments as experiment_rows
from flask_tracking.tracking import funnels as funnel_rows
from flask_tracking.tracking import goals as goal_rows
from flask_tracking.tracking import sites as site_rules
from flask_tracking.tracking.forms import (
    EraseForm,
    ExperimentForm,
    FunnelForm,
    GoalForm,
    SiteForm,
    SiteSettingsForm,
    timezone_names,
)
from flask_tracking.tracking.models import Site
from flask_tracking.tracking.snippet import TRANSPARENT_GIF, snippet_for
from flask_tracking.urls import is_http_url
from flask_tracking.users.forms import ConfirmForm

tracking = Blueprint("tracking", __name__)
DROP_REASONS = {
    "bot": "from bots and crawlers",
    "dnt": "with Do-Not-Track",
    "prefetch": "prefetches",
    "referrer_spam": "from referrer spam",
    "excluded_ip": "from excluded addresses",
    "excluded_path": "on excluded paths",
    "rate_limited": "over the collector's rate limits",
    "engagement": "engagement pings from Plausible's script (not kept)",
    "identify": "identify calls from Umami's trackers (not kept)",
}
tracking.add_app_template_test(is_http_url, "http_url")
tracking.add_app_template_global(timezone_names)
tracking.add_app_template_global(access.can, "can")


_site_or_abort = access.site_or_abort  # 404 without a role, 403 when too low


@tracking.route("/")
def index() -> str:
    """Show the landing page, or the user's sites."""
    if current_user.is_authenticated:
        return render_template("tracking/index.html", sites=access.visible_sites(current_user.id))
    return render_template("tracking/index.html", sites=None)


@tracking.route("/favicon.ico")
def favicon() -> Response:
    """Answer the icon browsers ask for on pages that name none (JSON, the API): a 404 there is
    a console error on every such page."""
    return send_from_directory(
        current_app.static_folder or "static",
        "favicon.ico",
        mimetype="image/vnd.microsoft.icon",
        max_age=7 * 86_400,
    )


@tracking.route("/sites/", methods=["GET", "POST"])
@login_required
def view_sites() -> str | Response:
    """List the user's sites and add one."""
    form = SiteForm()
    refusal = gate.new_site_refusal(current_user.id) if request.method == "POST" else None
    if refusal:
        flash(refusal, "error")
    elif form.validate_on_submit():
        site = site_rules.create_site(
            current_user,
            form.base_url.data or "",
            form.name.data or "",
            timezone=form.timezone.data or "UTC",
        )
        ingest.current_ingest().sites.invalidate()  # collect for it at once
        flash(f"Added {site.display_name}. Paste the snippet below into your pages.", "success")
        return redirect(url_for(".setup_site", site_id=site.id))
    return render_template(
        "tracking/sites.html", sites=access.visible_sites(current_user.id), form=form
    )


@tracking.route("/sites/<id:site_id>/setup")
@login_required
def setup_site(site_id: int) -> str:
    """The snippet to paste, and a live check that turns green when the first event arrives."""
    site = _site_or_abort(site_id)
    collector = url_for("collector.event", _external=True)
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(collector))
    return render_template(
        "tracking/setup.html",
        site=site,
        snippet=snippet_for(site),
        origin=origin,
        arrivals=visits_report.arrivals(site.id),
        drop_reasons=DROP_REASONS,
    )


@tracking.route("/sites/<id:site_id>/setup/status")
@login_required
def setup_status(site_id: int) -> Response:
    """The setup page's live check, as JSON: stored events, the newest, drops by reason."""
    site = _site_or_abort(site_id)
    found = visits_report.arrivals(site.id)
    response = jsonify(
        events=found.events,
        last=None if found.last is None else found.last.isoformat(),
        dropped={row.value: row.count for row in found.dropped},
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@tracking.route("/sites/<id:site_id>/visits")
@login_required
def view_site_visits(site_id: int) -> str:
    """Show a site's raw events, newest first, with its snippet and the last 30 days."""
    site = _site_or_abort(site_id)
    page = request.args.get("page", 1, type=int) or 1
    per_page = int(current_app.config["VISITS_PER_PAGE"])
    return render_template(
        "tracking/site.html",
        site=site,
        snippet=snippet_for(site),
        summary=visits_report.summarise(site.id, site.timezone),
        drop_reasons=DROP_REASONS,
        visits=visits_report.visit_page(site.id, page, per_page),
    )


@tracking.route("/sites/<id:site_id>/erase", methods=["GET", "POST"])
@login_required
def erase_visitors(site_id: int) -> tuple[str, int] | Response:
    """Ask for visitors' data to be erased (admins): a visitor id, or a page and a time
    range; the writer carries it out within seconds (tracking/erasure.py)."""
    site = _site_or_abort(site_id)
    form = EraseForm()
    if request.method == "POST":
        zone = zone_named(site.timezone)
        start, end = form.start.data, form.end.data
        try:
            if not form.validate_on_submit():
                raise erasure.ErasureError("Check the fields: a number, a path, dates.")
            erasure.request_erasure(
                site,
                current_user.id,
                visitor_id=form.visitor_id.data,
                page=form.page.data or "",
                start=None if start is None else start.replace(tzinfo=zone),
                end=None if end is None else end.replace(tzinfo=zone),
            )
        except erasure.ErasureError as error:
            form.visitor_id.errors = [*form.visitor_id.errors, str(error)]
            return _erase_page(site, form, 400)
        flash("Erasure requested: it is carried out within seconds.", "success")
        return redirect(url_for("tracking.erase_visitors", site_id=site.id))
    return _erase_page(site, form)


def _erase_page(site: Site, form: EraseForm, status: int = 200) -> tuple[str, int]:
    return (
        render_template(
            "tracking/erase.html", site=site, form=form, erasures=erasure.erasures_of(site)
        ),
        status,
    )


@tracking.route("/sites/<id:site_id>/edit", methods=["GET", "POST"])
@login_required
def edit_site(site_id: int) -> tuple[str, int] | Response:
    """Change a site's address, name, exclusions or time zone (editors), or its retention
    (admins: a shorter one deletes events)."""
    site = _site_or_abort(site_id)
    form = SiteSettingsForm(obj=site)
    if form.validate_on_submit():
        if form.retention_days.data != site.retention_days and not access.allows(
            access.role_of(current_user.id, site), access.MANAGE
        ):
            form.retention_days.errors = ["Only an admin of the site can change its retention."]
            return _settings_page(site, form, status=403)
        try:
            site_rules.update_site(
                site,
                form.base_url.data or "",
                form.name.data or "",
                form.excluded_ips.data or "",
                form.excluded_paths.data or "",
                timezone=form.timezone.data,
                retention_days=form.retention_days.data,
                umami_id=form.umami_id.data,
            )
        except site_rules.SiteError as error:
            form.umami_id.errors = [str(error)]
            return _settings_page(site, form, status=400)
        # This process's collector sees the change at once; other workers within
        # INGEST_SITE_CACHE_SECONDS.
        ingest.current_ingest().sites.invalidate()
        flash("Site updated.", "success")
        return redirect(url_for("dashboard.show", site_id=site.id))
    # A refused change is a 400: the form again, with each field's reason.
    return _settings_page(site, form, status=400 if request.method == "POST" else 200)


def _settings_page(
    site: Site,
    form: SiteSettingsForm,
    goal_form: GoalForm | None = None,
    funnel_form: FunnelForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    goals = [(goal.id, goal.name) for goal in site.goals]
    return (
        render_template(
            "tracking/site_edit.html",
            site=site,
            form=form,
            goal_form=goal_form or GoalForm(formdata=None, prefix="goal"),
            funnel_form=(funnel_form or FunnelForm(formdata=None, prefix="funnel")).offer(goals),
            delete_form=ConfirmForm(),
            max_goals=MAX_GOALS,
            max_funnels=MAX_FUNNELS,
            default_retention=int(current_app.config["RETENTION_DAYS"]),
            keep_rollups=bool(current_app.config["RETENTION_KEEP_ROLLUPS"]),
            site_host=site_info(site).host,
        ),
        status,
    )


@tracking.route("/sites/<id:site_id>/funnels", methods=["POST"])
@login_required
def add_funnel(site_id: int) -> tuple[str, int] | Response:
    """Add a funnel from the settings page's form; a bad one shows the page again, with why."""
    site = _site_or_abort(site_id)
    form = FunnelForm(prefix="funnel").offer([(goal.id, goal.name) for goal in site.goals])
    if form.validate_on_submit():
        try:
            funnel_rows.add_funnel(
                site, form.name.data or "", form.goal_ids(), across_visits=form.across_visits.data
            )
        except InvalidFunnel as error:
            field = form.name if error.field == "name" else form.steps
            field.errors = [*field.errors, str(error)]
        else:
            flash(f"Added the funnel {form.name.data}.", "success")
            return redirect(url_for(".edit_site", site_id=site.id, _anchor="funnels"))
    return _settings_page(site, SiteSettingsForm(obj=site), funnel_form=form, status=400)


@tracking.route("/sites/<id:site_id>/funnels/<id:funnel_id>/delete", methods=["POST"])
@login_required
def delete_funnel(site_id: int, funnel_id: int) -> Response:
    """Remove a funnel (its goals stay)."""
    site = _site_or_abort(site_id)
    row = funnel_rows.funnel_of(site, funnel_id)
    if row is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    name = row.name
    funnel_rows.delete_funnel(row)
    flash(f"Removed the funnel {name}.", "info")
    return redirect(url_for(".edit_site", site_id=site.id, _anchor="funnels"))


@tracking.route("/sites/<id:site_id>/goals", methods=["POST"])
@login_required
def add_goal(site_id: int) -> tuple[str, int] | Response:
    """Add a goal from the settings page's form; a bad one shows the page again, with why."""
    site = _site_or_abort(site_id)
    form = GoalForm(prefix="goal")
    if form.validate_on_submit() and form.definition is not None:
        try:
            goal_rows.add_goal(site, form.definition)
        except InvalidGoal as error:
            form.add_error(error.field, str(error))
        else:
            flash(f"Added the goal {form.definition.name}.", "success")
            return redirect(url_for(".edit_site", site_id=site.id, _anchor="goals"))
    return _settings_page(site, SiteSettingsForm(obj=site), goal_form=form, status=400)


@tracking.route("/sites/<id:site_id>/goals/<id:goal_id>/delete", methods=["POST"])
@login_required
def delete_goal(site_id: int, goal_id: int) -> Response:
    """Remove a goal (the events it counted stay)."""
    site = _site_or_abort(site_id)
    row = goal_rows.goal_of(site, goal_id)
    if row is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    name = row.name
    try:
        goal_rows.delete_goal(row)
    except InvalidGoal as error:
        flash(str(error), "error")
    else:
        flash(f"Removed the goal {name}.", "info")
    return redirect(url_for(".edit_site", site_id=site.id, _anchor="goals"))


def _experiments_page(
    site: Site, form: ExperimentForm | None = None, status: int = 200
) -> tuple[str, int]:
    goals = [(goal.id, goal.name) for goal in site.goals]
    return (
        render_template(
            "tracking/experiments.html",
            site=site,
            form=(form or ExperimentForm(formdata=None, prefix="experiment")).offer(goals),
            confirm=ConfirmForm(),
            max_experiments=MAX_EXPERIMENTS,
        ),
        status,
    )


@tracking.route("/sites/<id:site_id>/experiments", methods=["GET", "POST"])
@login_required
def experiments(site_id: int) -> tuple[str, int] | Response:
    """List a site's experiments and add one (a bad one shows the page again, with why)."""
    site = _site_or_abort(site_id)
    if request.method == "GET":
        return _experiments_page(site)
    form = ExperimentForm(prefix="experiment").offer([(goal.id, goal.name) for goal in site.goals])
    if form.validate_on_submit():
        try:
            now = datetime.now(UTC)
            draft = experiment_rows.Draft(
                form.key.data or "",
                form.name.data or "",
                form.variant_pairs(),
                form.goal_ids(),
                now if form.start_now.data else None,
                None,
                "running" if form.start_now.data else "draft",
            )
            row = experiment_rows.add_experiment(site, draft)
        except ValueError as error:  # InvalidExperiment, or a weight that is not a number
            name = getattr(error, "field", "variants")
            fields = {"goals": form.primary, "variants": form.variants, "key": form.key}
            field = fields.get(name, form.name)
            field.errors = [*field.errors, str(error)]
        else:
            flash(f"Added the experiment {row.name}.", "success")
            return redirect(url_for("dashboard.experiment", site_id=site.id, experiment_id=row.id))
    return _experiments_page(site, form, status=400)


@tracking.route(
    "/sites/<id:site_id>/experiments/<id:experiment_id>/<any(start, stop, draft):action>",
    methods=["POST"],
)
@login_required
def experiment_status(site_id: int, experiment_id: int, action: str) -> Response:
    """Start (from now), stop (ending now) or return an experiment to draft."""
    site = _site_or_abort(site_id)
    row = experiment_rows.experiment_of(site, experiment_id)
    if row is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    status = {"start": "running", "stop": "stopped", "draft": "draft"}[action]
    try:
        experiment_rows.set_status(row, status, datetime.now(UTC))
    except InvalidExperiment as error:
        flash(str(error), "error")
    return redirect(url_for("dashboard.experiment", site_id=site.id, experiment_id=row.id))


@tracking.route("/sites/<id:site_id>/experiments/<id:experiment_id>/delete", methods=["POST"])
@login_required
def delete_experiment(site_id: int, experiment_id: int) -> Response:
    """Remove an experiment (its goals, and its exposures as custom events, stay)."""
    site = _site_or_abort(site_id)
    row = experiment_rows.experiment_of(site, experiment_id)
    if row is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    name = row.name
    experiment_rows.delete_experiment(row)
    flash(f"Removed the experiment {name}.", "info")
    return redirect(url_for(".experiments", site_id=site.id))


@tracking.route("/sites/<id:site_id>/delete", methods=["GET", "POST"])
@login_required
def delete_site(site_id: int) -> str | Response:
    """Ask for confirmation, then delete a site with all its visits."""
    site = _site_or_abort(site_id)
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        name = site.display_name
        site_rules.delete_site(site)
        flash(f"Deleted {name} and all its visits.", "info")
        return redirect(url_for(".view_sites"))
    return render_template("tracking/site_delete.html", site=site, form=form)


@tracking.route("/sites/<id:site_id>/visit", methods=["GET", "POST"])
@csrf.exempt
@limiter.exempt
def add_visit(site_id: int) -> Response:
    """Record a visit from any origin: 204 (or a 1x1 GIF for images), 4xx JSON on bad input."""
    values = request.values
    hit = ingest.Hit(
        site_id=site_id,
        url=values.get("url") or request.headers.get("Referer"),
        referrer=values.get("ref"),
        event=values.get("event"),
    )
    try:
        clean = ingest.validate(hit, int(current_app.config["MAX_URL_LENGTH"]))
    except ingest.InvalidHit as error:
        return collect_http.invalid(error, "invalid_visit")
    event = collect_http.incoming(
        request, site_id, name=clean.event, url=clean.url, referrer=clean.referrer
    )
    return collect_http.accept(ingest.current_ingest(), event, _acknowledge())


def _acknowledge() -> Response:
    """Answer an image request with a 1x1 GIF (so no broken-image icon), anything else 204."""
    if "image/" in request.headers.get("Accept", ""):
        return Response(TRANSPARENT_GIF, status=200, mimetype="image/gif")
    return Response(status=204)
