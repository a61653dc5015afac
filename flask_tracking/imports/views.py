"""A site's Imports page (admins): upload another tool's file, see every import, delete one;
and the site's history as Plausible's export ZIP (anyone who may read the site)."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response
from wtforms import BooleanField, SelectField

from flask_tracking.events import current_store
from flask_tracking.extensions import db
from flask_tracking.imports import Refused, aggregates, service
from flask_tracking.imports.models import Import
from flask_tracking.ingest.sitecache import site_info
from flask_tracking.tracking import access
from flask_tracking.tracking.models import Site
from flask_tracking.users.forms import ConfirmForm

imports = Blueprint("imports", __name__)


class ImportForm(FlaskForm):
    """A file of another tool's history, and what it is."""

    source = SelectField(
        "What the file is", choices={name: service.LABELS[name] for name in service.NAMES}
    )
    upload = FileField("File", validators=[FileRequired("Choose the file to import.")])
    dry_run = BooleanField("Only read it and say what would be imported")


_site = access.site_or_abort  # 404 without a role, 403 when too low


def _page(site: Site, form: ImportForm, summary: list[str] | None = None, status: int = 200) -> Any:
    return (
        render_template(
            "imports/imports.html",
            site=site,
            form=form,
            summary=summary,
            imports=aggregates.imports_of(site.id),
            confirm=ConfirmForm(formdata=None),
            labels=service.LABELS,
            max_megabytes=int(current_app.config["IMPORT_MAX_BYTES"]) >> 20,
        ),
        status,
    )


@imports.route("/sites/<id:site_id>/imports", methods=["GET", "POST"])
@login_required
def imports_page(site_id: int) -> Any:
    """The site's imports; upload a file (POST): a dry run answers with what it would do;
    aggregates are imported at once, row-level files by the writer within seconds."""
    site = _site(site_id)
    request.max_content_length = int(current_app.config["IMPORT_MAX_BYTES"])
    try:
        form = ImportForm()
        if request.method != "POST":
            return _page(site, form)
        if not form.validate_on_submit():
            return _page(site, form, status=400)
        data = form.upload.data.read()
    except RequestEntityTooLarge:
        form = ImportForm(formdata=None)
        limit = int(current_app.config["IMPORT_MAX_BYTES"])
        form.upload.errors = [
            f"The file is over the upload limit ({limit:,} bytes); import it with the command line."
        ]
        return _page(site, form, status=413)
    filename = form.upload.data.filename or ""
    source = form.source.data or ""
    try:
        if form.dry_run.data or source in service.AGGREGATE_SOURCES:
            lines, record = service.import_file(
                site,
                source,
                data,
                filename=filename,
                user_id=current_user.id,
                store=current_store(),
                dry_run=bool(form.dry_run.data),
                host=site_info(site).host,
            )
            if record is None:
                return _page(site, form, summary=lines)
            flash(f"Imported: {lines[1]}", "success")
        else:
            service.queue_upload(
                site,
                source,
                data,
                filename=filename,
                user_id=current_user.id,
                directory=str(current_app.config["DATA_DIR"]),
            )
            flash(
                "Uploaded: the import runs within seconds; this page shows when it is done.",
                "success",
            )
    except Refused as error:
        form.upload.errors = [f"{error}; nothing was imported."]
        return _page(site, form, status=400)
    return redirect(url_for("imports.imports_page", site_id=site.id))


@imports.route("/sites/<id:site_id>/imports/<id:import_id>/delete", methods=["POST"])
@login_required
def delete_import(site_id: int, import_id: int) -> Response:
    """Delete an import: its aggregates at once, its events by the writer within seconds."""
    site = _site(site_id)
    record = db.session.get(Import, import_id)
    if record is None or record.site_id != site.id:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    service.delete_import(record, current_user.id)
    flash(
        "Import deleted."
        if db.session.get(Import, import_id) is None
        else "Deleting: its events go within seconds.",
        "success",
    )
    return redirect(url_for("imports.imports_page", site_id=site.id))


@imports.route("/sites/<id:site_id>/imports/plausible.zip")
@login_required
def plausible_export(site_id: int) -> Response:
    """The site's whole history (native and imported) in Plausible's export format."""
    site = _site(site_id)
    host = site_info(site).host
    data = aggregates.export(site.id, site.timezone, host, current_store())
    return Response(
        data,
        content_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="plausible-export-{site.id}.zip"'},
    )
