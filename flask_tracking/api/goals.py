"""GET/POST /sites/{site_id}/goals, GET/PUT/DELETE /sites/{site_id}/goals/{goal_id}.

Definitions go through reports/goals.py's `make_goal`, as the settings page's do, so the API
accepts exactly what the page accepts, with the same messages.
"""

from __future__ import annotations

from werkzeug.wrappers import Response

from flask_tracking.api.auth import Call
from flask_tracking.api.errors import ApiError, invalid
from flask_tracking.api.schemas import GoalIn, GoalList, GoalOut
from flask_tracking.api.spec import operation
from flask_tracking.reports.goals import Goal, InvalidGoal, make_goal
from flask_tracking.tracking import goals
from flask_tracking.tracking.models import Goal as GoalRow
from flask_tracking.tracking.models import Site
from flask_tracking.users.apikeys import READ, READ_WRITE

TAG = "Goals"


def goal_out(row: GoalRow) -> GoalOut:
    """Return the API's view of a goal."""
    return GoalOut(
        id=row.id,
        name=row.name,
        kind="page" if row.kind == "page" else "event",
        path=row.path,
        event=row.event,
        property=row.prop_key,
        property_value=row.prop_value,
        revenue_property=row.revenue_prop,
        currency=row.currency,
        description=row.definition.description,
        created_at=row.created_at,
    )


def _definition(body: GoalIn) -> Goal:
    try:
        return make_goal(
            body.name,
            body.kind,
            path=body.path,
            event=body.event,
            prop_key=body.property,
            prop_value=body.property_value,
            revenue_prop=body.revenue_property,
            currency=body.currency,
        )
    except InvalidGoal as error:
        raise invalid({error.field: str(error)}, str(error)) from None


def _goal(site: Site, goal_id: int) -> GoalRow:
    row = goals.goal_of(site, goal_id)
    if row is None:
        raise ApiError(404, "not_found", "No such goal.")
    return row


@operation(
    "GET", "/sites/{site_id}/goals", scope=READ, tag=TAG, response=GoalList, summary="List goals"
)
def list_goals(call: Call) -> GoalList:
    """The site's goals, in the order they were defined."""
    return GoalList(data=[goal_out(row) for row in call.own_site().goals])


@operation(
    "POST",
    "/sites/{site_id}/goals",
    scope=READ_WRITE,
    tag=TAG,
    body=GoalIn,
    response=GoalOut,
    status=201,
    summary="Add a goal",
)
def create_goal(call: Call, body: GoalIn) -> GoalOut:
    """Add a goal. It applies to the events already stored: its conversions of last month
    show at once. Names are unique per site; a site has at most 50 goals."""
    site = call.own_site()
    definition = _definition(body)
    try:
        return goal_out(goals.add_goal(site, definition))
    except InvalidGoal as error:
        raise invalid({error.field: str(error)}, str(error)) from None


@operation(
    "GET",
    "/sites/{site_id}/goals/{goal_id}",
    scope=READ,
    tag=TAG,
    response=GoalOut,
    summary="Read a goal",
)
def get_goal(call: Call, goal_id: int) -> GoalOut:
    """One goal of the site."""
    return goal_out(_goal(call.own_site(), goal_id))


@operation(
    "PUT",
    "/sites/{site_id}/goals/{goal_id}",
    scope=READ_WRITE,
    tag=TAG,
    body=GoalIn,
    response=GoalOut,
    summary="Replace a goal",
)
def replace_goal(call: Call, goal_id: int, body: GoalIn) -> GoalOut:
    """Replace a goal's definition; reports apply the new one to every stored event."""
    row = _goal(call.own_site(), goal_id)
    definition = _definition(body)
    try:
        return goal_out(goals.update_goal(row, definition))
    except InvalidGoal as error:
        raise invalid({error.field: str(error)}, str(error)) from None


@operation(
    "DELETE",
    "/sites/{site_id}/goals/{goal_id}",
    scope=READ_WRITE,
    tag=TAG,
    status=204,
    summary="Delete a goal",
    errors=(409,),
)
def delete_goal(call: Call, goal_id: int) -> Response:
    """Delete a goal; the events it counted stay. A goal that is a step of a funnel is a
    409: remove it from the funnel (or the funnel) first."""
    try:
        goals.delete_goal(_goal(call.own_site(), goal_id))
    except InvalidGoal as error:
        raise ApiError(409, "conflict", str(error)) from None
    return Response(status=204)
