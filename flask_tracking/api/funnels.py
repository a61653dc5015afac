"""GET/POST /sites/{site_id}/funnels, GET/PUT/DELETE /sites/{site_id}/funnels/{funnel_id}.

Reading one funnel also reports who went through it in the period and filters asked for
(the dashboard's, from reports/params.py): the definition and its numbers in one answer.
"""

from __future__ import annotations

from werkzeug.wrappers import Response

from flask_tracking.api.auth import Call
from flask_tracking.api.errors import ApiError, invalid
from flask_tracking.api.schemas import (
    FunnelIn,
    FunnelList,
    FunnelOut,
    FunnelResultOut,
    FunnelStepOut,
    StatsQuery,
    StepResult,
)
from flask_tracking.api.spec import operation
from flask_tracking.api.stats import period_out, report_query
from flask_tracking.reports import stats
from flask_tracking.reports.funnels import InvalidFunnel
from flask_tracking.tracking import funnels
from flask_tracking.tracking.models import Funnel, Site
from flask_tracking.users.apikeys import READ, READ_WRITE

TAG = "Funnels"


def funnel_out(row: Funnel) -> FunnelOut:
    """Return the API's view of a funnel."""
    return FunnelOut(
        id=row.id,
        name=row.name,
        across_visits=row.across_visits,
        steps=[
            FunnelStepOut(
                goal_id=step.goal_id,
                name=step.goal.name,
                description=step.goal.definition.description,
            )
            for step in row.steps
        ],
        created_at=row.created_at,
    )


def _funnel(site: Site, funnel_id: int) -> Funnel:
    row = funnels.funnel_of(site, funnel_id)
    if row is None:
        raise ApiError(404, "not_found", "No such funnel.")
    return row


@operation(
    "GET",
    "/sites/{site_id}/funnels",
    scope=READ,
    tag=TAG,
    response=FunnelList,
    summary="List funnels",
)
def list_funnels(call: Call) -> FunnelList:
    """The site's funnels, in the order they were defined."""
    return FunnelList(data=[funnel_out(row) for row in call.own_site().funnels])


@operation(
    "POST",
    "/sites/{site_id}/funnels",
    scope=READ_WRITE,
    tag=TAG,
    body=FunnelIn,
    response=FunnelOut,
    status=201,
    summary="Add a funnel",
)
def create_funnel(call: Call, body: FunnelIn) -> FunnelOut:
    """Add a funnel of 2 to 8 of the site's goals, in order. Names are unique per site."""
    try:
        row = funnels.add_funnel(
            call.own_site(), body.name, body.steps, across_visits=body.across_visits
        )
    except InvalidFunnel as error:
        raise invalid({error.field: str(error)}, str(error)) from None
    return funnel_out(row)


@operation(
    "GET",
    "/sites/{site_id}/funnels/{funnel_id}",
    scope=READ,
    tag=TAG,
    query=StatsQuery,
    response=FunnelResultOut,
    summary="A funnel and who went through it",
)
def get_funnel(call: Call, funnel_id: int, query: StatsQuery) -> FunnelResultOut:
    """The funnel, and per step the visits that reached it in order in the period (with
    the filters), their share of the entering visits and of the previous step, the
    drop-off and the median time from the previous step."""
    site = call.own_site()
    row = _funnel(site, funnel_id)
    q = report_query(site, query)
    with stats.Report(q) as report:
        result = report.funnel(row.definition, across_visits=row.across_visits)
    return FunnelResultOut(
        site_id=site.id,
        period=period_out(query.period, q.range, site.timezone),
        filters=[flt.text for flt in q.filters],
        funnel=funnel_out(row),
        converted=round(result.converted, 2),
        steps=[
            StepResult(
                step=index + 1,
                goal=step.goal.name,
                visits=step.visits,
                visitors=step.visitors,
                of_entered=round(result.of_entered(index), 2),
                of_previous=round(result.of_previous(index), 2) if index else None,
                dropped=result.dropped(index) if index else None,
                median_seconds=None
                if step.median_seconds is None
                else round(step.median_seconds, 1),
            )
            for index, step in enumerate(result.steps)
        ],
    )


@operation(
    "PUT",
    "/sites/{site_id}/funnels/{funnel_id}",
    scope=READ_WRITE,
    tag=TAG,
    body=FunnelIn,
    response=FunnelOut,
    summary="Replace a funnel",
)
def replace_funnel(call: Call, funnel_id: int, body: FunnelIn) -> FunnelOut:
    """Replace a funnel's name, steps and how it follows them."""
    row = _funnel(call.own_site(), funnel_id)
    try:
        funnels.update_funnel(row, body.name, body.steps, across_visits=body.across_visits)
    except InvalidFunnel as error:
        raise invalid({error.field: str(error)}, str(error)) from None
    return funnel_out(row)


@operation(
    "DELETE",
    "/sites/{site_id}/funnels/{funnel_id}",
    scope=READ_WRITE,
    tag=TAG,
    status=204,
    summary="Delete a funnel",
)
def delete_funnel(call: Call, funnel_id: int) -> Response:
    """Delete a funnel; its goals stay."""
    funnels.delete_funnel(_funnel(call.own_site(), funnel_id))
    return Response(status=204)
