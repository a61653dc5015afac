"""GET/POST /sites/{site_id}/reports, GET/DELETE /sites/{site_id}/reports/{report_id}: the
site's scheduled email reports (notify/reports.py), as its Email reports page manages them."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from werkzeug.wrappers import Response

from flask_tracking.api.auth import Call
from flask_tracking.api.errors import ApiError, invalid
from flask_tracking.api.schemas import ReportIn, ReportList, ReportOut
from flask_tracking.api.spec import operation
from flask_tracking.extensions import db
from flask_tracking.notify import reports
from flask_tracking.notify.models import ReportSchedule
from flask_tracking.tracking.models import Site
from flask_tracking.users.apikeys import READ, READ_WRITE

TAG = "Reports"


def report_out(row: ReportSchedule) -> ReportOut:
    return ReportOut(
        id=row.id,
        email=row.email,
        frequency=row.frequency,  # type: ignore[arg-type]
        weekday=row.weekday,
        hour=row.hour,
        status="active" if row.confirmed_at else "awaiting_confirmation",
        schedule=reports.describe(row),
        created_at=row.created_at,
    )


def _report(site: Site, report_id: int) -> ReportSchedule:
    row: ReportSchedule | None = db.session.scalar(
        select(ReportSchedule).where(
            ReportSchedule.id == report_id, ReportSchedule.site_id == site.id
        )
    )
    if row is None:
        raise ApiError(404, "not_found", "No such report.")
    return row


@operation(
    "GET",
    "/sites/{site_id}/reports",
    scope=READ,
    tag=TAG,
    response=ReportList,
    summary="List scheduled reports",
)
def list_reports(call: Call) -> ReportList:
    """The site's scheduled email reports, by address."""
    return ReportList(data=[report_out(row) for row in reports.schedules_of(call.own_site())])


@operation(
    "POST",
    "/sites/{site_id}/reports",
    scope=READ_WRITE,
    tag=TAG,
    body=ReportIn,
    response=ReportOut,
    status=201,
    summary="Schedule a report",
    errors=(409,),
)
def create_report(call: Call, body: ReportIn) -> ReportOut:
    """Send the site's report to an address daily, weekly or monthly at a local hour. An
    address that already gets a report of this frequency is a 409."""
    try:
        email = validate_email(body.email, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise invalid({"email": str(error)}, str(error)) from None
    try:
        row = reports.add_schedule(call.own_site(), email, body.frequency, body.weekday, body.hour)
    except reports.ScheduleError as error:
        raise ApiError(409, "conflict", str(error)) from None
    return report_out(row)


@operation(
    "GET",
    "/sites/{site_id}/reports/{report_id}",
    scope=READ,
    tag=TAG,
    response=ReportOut,
    summary="Read a scheduled report",
)
def get_report(call: Call, report_id: int) -> ReportOut:
    """One scheduled report of the site."""
    return report_out(_report(call.own_site(), report_id))


@operation(
    "DELETE",
    "/sites/{site_id}/reports/{report_id}",
    scope=READ_WRITE,
    tag=TAG,
    status=204,
    summary="Stop a scheduled report",
)
def delete_report(call: Call, report_id: int) -> Response:
    """Stop sending the report to its address."""
    db.session.delete(_report(call.own_site(), report_id))
    db.session.commit()
    return Response(status=204)
