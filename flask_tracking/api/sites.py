"""GET/POST /sites, GET/PATCH/DELETE /sites/{site_id}.

Field values go through the web form's own validators (tracking/forms.py), so the API accepts
exactly what the settings page accepts, with the same messages.
"""

from __future__ import annotations

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from flask_tracking import ingest
from flask_tracking.api.auth import Call
from flask_tracking.api.errors import ApiError, invalid
from flask_tracking.api.schemas import SiteCreate, SiteList, SiteOut, SiteUpdate
from flask_tracking.api.spec import operation
from flask_tracking.billing import gate
from flask_tracking.tracking import access, sites
from flask_tracking.tracking.forms import SiteSettingsForm
from flask_tracking.tracking.models import Site
from flask_tracking.users.apikeys import READ, READ_WRITE

TAG = "Sites"


def site_out(site: Site, role: access.Role) -> SiteOut:
    """Return the API's view of a site, for a user with this role on it."""
    return SiteOut(
        id=site.id,
        role=role,
        name=site.name,
        base_url=site.base_url,
        display_name=site.display_name,
        timezone=site.timezone,
        excluded_ips=site.excluded_ips.splitlines(),
        excluded_paths=site.excluded_paths.splitlines(),
        retention_days=site.retention_days,
        umami_id=site.umami_id,
        created_at=site.created_at,
    )


def checked(values: dict[str, str]) -> dict[str, str]:
    """Run the site settings form's validators over the values; raise a 400 naming each error."""
    form = SiteSettingsForm(formdata=MultiDict(values), meta={"csrf": False})
    if not form.validate():
        raise invalid({name: messages[0] for name, messages in form.errors.items()})
    return values


@operation("GET", "/sites", scope=READ, tag=TAG, response=SiteList, summary="List sites")
def list_sites(call: Call) -> SiteList:
    """The sites this key may see: all its user owns or is a member of, or the one site it is
    limited to."""
    return SiteList(
        data=[
            site_out(site, role)
            for site, role in access.visible_sites(call.user.id)
            if call.key.site_id is None or site.id == call.key.site_id
        ]
    )


@operation(
    "POST",
    "/sites",
    scope=READ_WRITE,
    tag=TAG,
    body=SiteCreate,
    response=SiteOut,
    status=201,
    summary="Add a site",
)
def create_site(call: Call, body: SiteCreate) -> SiteOut:
    """Add a site for the key's user. A key limited to one site cannot add others (403)."""
    if call.key.site_id is not None:
        raise ApiError(403, "insufficient_scope", "This key is limited to one site.")
    refusal = gate.new_site_refusal(call.user.id)
    if refusal:
        raise ApiError(403, "plan_limit", refusal)
    values = checked(
        {
            "base_url": body.base_url,
            "name": body.name,
            "timezone": body.timezone,
            "excluded_ips": "\n".join(body.excluded_ips),
            "excluded_paths": "\n".join(body.excluded_paths),
        }
    )
    site = sites.create_site(
        call.user,
        values["base_url"],
        values["name"],
        timezone=values["timezone"],
        excluded_ips=values["excluded_ips"],
        excluded_paths=values["excluded_paths"],
        retention_days=body.retention_days,
    )
    ingest.current_ingest().sites.invalidate()
    return site_out(site, access.OWNER)


@operation("GET", "/sites/{site_id}", scope=READ, tag=TAG, response=SiteOut, summary="Read a site")
def get_site(call: Call) -> SiteOut:
    """One site and its settings."""
    return site_out(call.own_site(), call.role or access.OWNER)


@operation(
    "PATCH",
    "/sites/{site_id}",
    scope=READ_WRITE,
    tag=TAG,
    body=SiteUpdate,
    response=SiteOut,
    summary="Change a site",
    errors=(409,),
)
def update_site(call: Call, body: SiteUpdate) -> SiteOut:
    """Change the fields sent; the others keep their values. Changing the time zone makes
    reports read raw events until the rollups are rebuilt in the new zone. Changing the
    retention (which deletes events) needs the admin role."""
    site = call.own_site()
    if "retention_days" in body.model_fields_set and not access.allows(call.role, access.MANAGE):
        raise ApiError(
            403, "forbidden", "Changing the retention deletes events: it needs the admin role."
        )
    values = checked(
        {
            "base_url": site.base_url if body.base_url is None else body.base_url,
            "name": site.name if body.name is None else body.name,
            "timezone": site.timezone if body.timezone is None else body.timezone,
            "excluded_ips": site.excluded_ips
            if body.excluded_ips is None
            else "\n".join(body.excluded_ips),
            "excluded_paths": site.excluded_paths
            if body.excluded_paths is None
            else "\n".join(body.excluded_paths),
        }
    )
    umami_id = body.umami_id.lower() if body.umami_id else None
    try:
        sites.update_site(
            site,
            values["base_url"],
            values["name"],
            values["excluded_ips"],
            values["excluded_paths"],
            timezone=values["timezone"],
            retention_days=(
                body.retention_days
                if "retention_days" in body.model_fields_set
                else sites.UNCHANGED
            ),
            umami_id=umami_id if "umami_id" in body.model_fields_set else sites.UNCHANGED,
        )
    except sites.SiteError as error:
        raise ApiError(409, "conflict", str(error)) from None
    ingest.current_ingest().sites.invalidate()
    return site_out(site, call.role or access.OWNER)


@operation(
    "DELETE", "/sites/{site_id}", scope=READ_WRITE, tag=TAG, status=204, summary="Delete a site"
)
def delete_site(call: Call) -> Response:
    """Delete the site and all of its data (events, sessions, rollups, shared links): this
    cannot be undone."""
    sites.delete_site(call.own_site())
    ingest.current_ingest().sites.invalidate()
    return Response(status=204)
