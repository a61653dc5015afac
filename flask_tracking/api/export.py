"""GET /sites/{site_id}/events (cursor-paginated JSON) and /sites/{site_id}/export (a streamed
CSV or NDJSON file) of raw events, read by keyset so neither loads the period into memory."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import stream_with_context
from werkzeug.wrappers import Response

from flask_tracking.api.auth import Call
from flask_tracking.api.errors import invalid
from flask_tracking.api.schemas import DownloadQuery, EventPage, ExportQuery, RawEvent
from flask_tracking.api.spec import operation
from flask_tracking.api.stats import report_query
from flask_tracking.dashboard.export import neutralise
from flask_tracking.reports import export
from flask_tracking.reports.ranges import as_utc
from flask_tracking.users.apikeys import READ

TAG = "Export"
# The file's columns: the event's, with `event` named `name` as in the JSON and the API's input.
FIELDS = tuple("name" if column == "event" else column for column in export.COLUMNS)
MEDIA = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}


def raw_event(row: export.StoredEvent) -> RawEvent:
    """Return the API's view of an exported row (64-bit ids as strings)."""
    values = dict(zip(FIELDS, row.values(), strict=True))
    values["date"] = as_utc(values["date"])
    for name in ("visitor_id", "session_id"):
        values[name] = None if values[name] is None else str(values[name])
    values["props"] = values["props"] or {}
    return RawEvent.model_validate(values)


@operation(
    "GET",
    "/sites/{site_id}/events",
    scope=READ,
    tag=TAG,
    query=ExportQuery,
    response=EventPage,
    summary="Raw events, a page at a time",
)
def list_events(call: Call, query: ExportQuery) -> EventPage:
    """The period's stored events, oldest first, `limit` at a time: pass `next_cursor` back
    as `cursor` until it is null. Pages never repeat an event, and events arriving meanwhile
    are not skipped, except one stored a few seconds late with a time before the cursor:
    for a complete copy, export a period once it has ended. The visitor's IP address is
    never exported."""
    site = call.own_site()
    period = report_query(site, query).range
    try:
        after = export.parse_cursor(query.cursor) if query.cursor else None
    except export.InvalidCursor as error:
        raise invalid({"cursor": str(error)}) from None
    rows = export.page(site.id, period, after, query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    following = export.cursor_of(export.position(rows[-1])) if more else None
    return EventPage(data=[raw_event(row) for row in rows], next_cursor=following)


@operation(
    "GET",
    "/sites/{site_id}/export",
    scope=READ,
    tag=TAG,
    query=DownloadQuery,
    media={
        "application/x-ndjson": "One JSON event per line (the fields of RawEvent).",
        "text/csv": "A header row, then one event per row; formula-like cells are neutralised.",
    },
    summary="Raw events as one CSV or NDJSON file",
)
def download(call: Call, query: DownloadQuery) -> Response:
    """The whole period as a file, streamed as it is read: any size, constant memory. CSV
    cells that a spreadsheet would run as a formula get a leading apostrophe; `props` is a
    JSON object in one cell."""
    site = call.own_site()
    period = report_query(site, query).range
    rows = export.stream(site.id, period)
    lines = _csv(rows) if query.format == "csv" else _ndjson(rows)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    response = Response(stream_with_context(lines), content_type=MEDIA[query.format])
    response.headers["Content-Disposition"] = (
        f'attachment; filename="site-{site.id}-events-{stamp}.{query.format}"'
    )
    return response


def _ndjson(rows: Iterator[export.StoredEvent]) -> Iterator[str]:
    for row in rows:
        yield raw_event(row).model_dump_json() + "\n"


def _csv(rows: Iterator[export.StoredEvent]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(FIELDS)
    for count, row in enumerate(rows, 1):
        event = raw_event(row)
        cells: list[Any] = [getattr(event, name) for name in FIELDS]
        for name in ("visitor_id", "session_id"):  # numbers in a spreadsheet, not text
            cells[FIELDS.index(name)] = getattr(row, name)
        cells[FIELDS.index("date")] = event.date.isoformat().replace("+00:00", "Z")
        cells[FIELDS.index("props")] = json.dumps(event.props, ensure_ascii=False)
        writer.writerow([neutralise(cell) for cell in cells])
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
