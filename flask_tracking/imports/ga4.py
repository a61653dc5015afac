"""Google Analytics 4's BigQuery export: the `events_YYYYMMDD` tables, as newline-delimited
JSON (`bq extract --destination_format NEWLINE_DELIMITED_JSON`) or Parquet.

One row per GA event. `page_view` becomes a pageview of its `page_location` (with its
`page_referrer`); the events GA collects by itself about sessions and engagement
(`session_start`, `first_visit`, `user_engagement`, `scroll`) are skipped and counted; every
other event (`click`, `file_download`, `form_submit`, `purchase`, your own) becomes a custom
event with its string and number parameters as properties, GA's bookkeeping parameters left
out. A visitor is GA's `user_pseudo_id` (hashed with a salt of the import's own, per day, as
visitors are); location and device come from GA's `geo` and `device` records, since the export
has no address or User-Agent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask_tracking.imports.base import Imported, Refused, Summary
from flask_tracking.reports.names import country_code

AUTOMATIC = frozenset({"session_start", "first_visit", "user_engagement", "scroll"})
# GA's own parameters: not properties of an event.
BOOKKEEPING = frozenset(
    {
        "page_location", "page_referrer", "page_title", "ga_session_id", "ga_session_number",
        "engaged_session_event", "engagement_time_msec", "session_engaged", "entrances",
        "ignore_referrer", "batch_page_id", "batch_ordering_id", "debug_mode", "term",
        "medium", "source", "campaign", "content", "gclid", "dclid", "srsltid", "synthetic_bundle",
    }
)  # fmt: skip
DEVICES = {"desktop": "desktop", "mobile": "mobile", "tablet": "tablet", "smart tv": "desktop"}
MAX_PROPS = 30
UNSET = ("", "(not set)", "(other)")


def ga4(lines: Iterable[str], summary: Summary, host: str = "") -> Iterator[Imported]:
    """GA4's BigQuery export as newline-delimited JSON (Parquet is turned into such lines
    first: `parquet_lines`)."""
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            row = json.loads(text)
        except ValueError:
            raise Refused(
                number, "not valid JSON (a GA4 BigQuery export is one event a line)"
            ) from None
        if not isinstance(row, dict) or "event_name" not in row or "event_timestamp" not in row:
            raise Refused(number, "not a GA4 event: no event_name or event_timestamp")
        found = _event(row, number, summary, host)
        if found is not None:
            yield found


def _event(row: dict[str, Any], number: int, summary: Summary, host: str) -> Imported | None:
    name = str(row["event_name"])
    if name in AUTOMATIC:
        summary.skipped[f"GA's automatic events ({', '.join(sorted(AUTOMATIC))})"] += 1
        return None
    params = _params(row.get("event_params"), number)
    url = params.get("page_location")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        if name == "page_view":
            summary.skipped["page views without a page_location"] += 1
            return None
        url = f"https://{host or 'example.invalid'}/"
    referrer = params.get("page_referrer")
    geo, device = _record(row, "geo"), _record(row, "device")
    web = _record(device, "web_info")
    country = _text(geo.get("country"))
    props = {
        key: value
        for key, value in sorted(params.items())
        if key not in BOOKKEEPING and isinstance(value, str | int | float)
    }
    return Imported(
        ts_ms=_moment(row["event_timestamp"], number),
        url=url,
        name="pageview" if name == "page_view" else name[:120],
        referrer=referrer if isinstance(referrer, str) and referrer.startswith("http") else None,
        props={} if name == "page_view" else dict(list(props.items())[:MAX_PROPS]),
        visitor_key=_text(row.get("user_pseudo_id")) or f"line {number}",
        country=country_code(country) if country else None,
        region=_text(geo.get("region")) or None,
        city=_text(geo.get("city")) or None,
        browser=_text(web.get("browser")) or None,
        os=_text(device.get("operating_system")) or None,
        device=DEVICES.get(_text(device.get("category")).lower()),
    )


def _record(row: dict[str, Any], key: str) -> dict[str, Any]:
    found = row.get(key)
    return found if isinstance(found, dict) else {}


def _params(found: Any, number: int) -> dict[str, Any]:
    """GA's `event_params` (a list of {key, value: {string_value, int_value, ...}})."""
    if found is None:
        return {}
    if not isinstance(found, list):
        raise Refused(number, "event_params is not a list")
    params: dict[str, Any] = {}
    for item in found:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise Refused(number, "an event parameter without a key")
        value = _record(item, "value")
        for kind in ("string_value", "int_value", "double_value", "float_value"):
            if value.get(kind) is not None:
                params[item["key"]] = (
                    _number(value[kind]) if kind != "string_value" else str(value[kind])
                )
                break
    return params


def _number(value: Any) -> int | float:
    if isinstance(value, int | float):
        return value
    text = str(value)
    return int(text) if text.lstrip("-").isdigit() else float(text)


def _text(value: Any) -> str:
    text = str(value).strip() if value is not None else ""
    return "" if text in UNSET else text


def _moment(value: Any, number: int) -> int:
    """GA's event_timestamp: microseconds since the epoch (a number, or a string of one)."""
    try:
        micros = int(value)
    except (TypeError, ValueError):
        raise Refused(number, f"event_timestamp {str(value)[:40]!r} is not a number") from None
    if not 946_684_800_000_000 <= micros < 4_102_444_800_000_000:  # 2000 to 2100
        raise Refused(number, f"event_timestamp {micros} is not microseconds since 1970")
    return micros // 1000


def parquet_lines(data: bytes) -> list[str]:
    """GA4's export as Parquet, read by DuckDB, as the JSON lines `ga4` reads."""
    import os
    import tempfile

    import duckdb

    with tempfile.NamedTemporaryFile(suffix=".parquet", delete=False) as handle:
        handle.write(data)
        path = handle.name
    try:
        connection = duckdb.connect()
        try:
            cursor = connection.execute("SELECT * FROM read_parquet(?)", [path])
            names = [column[0] for column in cursor.description or []]
            return [
                json.dumps(dict(zip(names, row, strict=True)), default=_plain)
                for row in cursor.fetchall()
            ]
        except duckdb.Error as error:
            raise Refused(
                0, f"not a readable Parquet file ({str(error).splitlines()[0][:120]})"
            ) from None
        finally:
            connection.close()
    finally:
        os.unlink(path)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
