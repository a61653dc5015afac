"""The sources: each reads lines of a file and yields `Imported` rows (or `Refused`).

- `goatcounter`: GoatCounter's CSV export (format version 2: `2Path,Title,Event,UserAgent,
  Browser,System,Session,Bot,Referrer,Referrer scheme,Screen size,Location,FirstVisit,Date`).
  No address in it: a visitor is its session id; the location is GoatCounter's own.
- `access-log`: web-server access logs — combined or common format (Apache, nginx's default),
  nginx with a JSON `log_format`, or Caddy's JSON. Only successful GETs of pages count: assets
  (by extension), other methods, redirects and errors are skipped and counted in the summary.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask_tracking.imports.base import Imported, Refused, Source, Summary

GOATCOUNTER_HEADER = [
    "2Path", "Title", "Event", "UserAgent", "Browser", "System", "Session", "Bot", "Referrer",
    "Referrer scheme", "Screen size", "Location", "FirstVisit", "Date",
]  # fmt: skip
ASSETS = frozenset(
    {
        "css", "js", "mjs", "map", "png", "jpg", "jpeg", "gif", "webp", "avif", "svg", "ico",
        "woff", "woff2", "ttf", "otf", "eot", "txt", "xml", "json", "pdf", "zip", "gz", "mp4",
        "webm", "mp3", "wasm",
    }
)  # fmt: skip


def goatcounter(lines: Iterable[str], summary: Summary, host: str = "") -> Iterator[Imported]:
    """GoatCounter's CSV export."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise Refused(0, "the file is empty")
    if [h.strip() for h in header] != GOATCOUNTER_HEADER:
        raise Refused(1, "not a GoatCounter CSV export (format 2): the header differs")
    for number, fields in enumerate(reader, start=2):
        if not fields:
            continue
        if len(fields) != len(GOATCOUNTER_HEADER):
            raise Refused(number, f"{len(fields)} fields, not {len(GOATCOUNTER_HEADER)}")
        row = dict(zip(GOATCOUNTER_HEADER, fields, strict=True))
        if row["Bot"].strip() not in ("", "0"):
            summary.skipped["bots (GoatCounter marked them)"] += 1
            continue
        path = row["2Path"].strip()
        if not path:
            raise Refused(number, "no path")
        is_event = row["Event"].strip().lower() in ("true", "1")
        page = "/" if is_event else (path if path.startswith("/") else "/")  # an event: its name
        yield Imported(
            ts_ms=_moment(row["Date"], number),
            url=f"https://{host or 'example.invalid'}{page}",
            name=(path.lstrip("/") or path) if is_event else "pageview",
            referrer=_referrer(row["Referrer"], row["Referrer scheme"]),
            user_agent=row["UserAgent"],
            width=_width(row["Screen size"]),
            visitor_key=row["Session"].strip() or f"line {number}",
            country=(row["Location"].split("-")[0] or None) if row["Location"] else None,
            region=row["Location"] if "-" in row["Location"] else None,
        )


def _moment(text: str, line: int) -> int:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Refused(line, f"{text!r} is not a date and time") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _referrer(text: str, scheme: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    if scheme.strip() in ("h", "") and not text.startswith(("http://", "https://")):
        return f"https://{text}"
    return text if text.startswith(("http://", "https://")) else None


def _width(text: str) -> int | None:
    first = text.split(",", maxsplit=1)[0].strip()
    return int(first) if first.isdigit() and int(first) <= 100_000 else None


# -- access logs ---------------------------------------------------------------------------

COMBINED = re.compile(
    r'^(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<method>[A-Z]+) (?P<target>\S+)'
    r'(?: [^"]*)?" (?P<status>\d{3}) \S+(?: "(?P<referrer>[^"]*)" "(?P<agent>[^"]*)")?'
)


def access_log(lines: Iterable[str], summary: Summary, host: str = "") -> Iterator[Imported]:
    """Combined or common format, or JSON lines (nginx's or Caddy's), told apart per line."""
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        entry = _json_entry(text, number) if text.startswith("{") else _text_entry(text, number)
        row = _page(entry, summary, host)
        if row is not None:
            yield row


def _text_entry(text: str, number: int) -> dict[str, Any]:
    found = COMBINED.match(text)
    if found is None:
        raise Refused(number, "not a combined or common log line")
    try:
        moment = datetime.strptime(found["time"], "%d/%b/%Y:%H:%M:%S %z")
    except ValueError:
        raise Refused(number, f"{found['time']!r} is not a log time") from None
    return {
        "ip": found["ip"],
        "ts_ms": int(moment.timestamp() * 1000),
        "method": found["method"],
        "target": found["target"],
        "status": int(found["status"]),
        "referrer": found["referrer"],
        "agent": found["agent"] or "",
        "host": "",
    }


def _json_entry(text: str, number: int) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise Refused(number, "not valid JSON") from None
    if not isinstance(data, dict):
        raise Refused(number, "not a JSON object")
    request = data.get("request")
    if isinstance(request, dict):  # Caddy
        headers = request.get("headers") or {}
        return {
            "ip": request.get("client_ip") or request.get("remote_ip"),
            "ts_ms": _number_ms(data.get("ts"), number),
            "method": request.get("method"),
            "target": request.get("uri"),
            "status": data.get("status"),
            "referrer": (headers.get("Referer") or [None])[0],
            "agent": (headers.get("User-Agent") or [""])[0],
            "host": request.get("host") or "",
        }
    # nginx with a JSON log_format: the usual variable names
    target = data.get("request_uri") or data.get("uri")
    time_text = data.get("time_iso8601") or data.get("time")
    moment = _moment(str(time_text), number) if time_text else _number_ms(data.get("msec"), number)
    return {
        "ip": data.get("remote_addr"),
        "ts_ms": moment,
        "method": data.get("request_method"),
        "target": target,
        "status": int(data.get("status") or 0),
        "referrer": data.get("http_referer") or None,
        "agent": data.get("http_user_agent") or "",
        "host": data.get("host") or data.get("server_name") or "",
    }


def _number_ms(value: Any, number: int) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(float(value) * 1000)
    if isinstance(value, str):
        try:
            return int(float(value) * 1000)
        except ValueError:
            pass
    raise Refused(number, "no time")


def _page(entry: dict[str, Any], summary: Summary, host: str) -> Imported | None:
    target = entry.get("target")
    if entry.get("method") != "GET" or not isinstance(target, str):
        summary.skipped["not a GET"] += 1
        return None
    status = entry.get("status")
    if not isinstance(status, int) or not 200 <= status < 300:
        summary.skipped["not a success (redirects, errors)"] += 1
        return None
    path = urlsplit(target).path or "/"
    extension = path.rsplit("/", 1)[-1].rpartition(".")[2].lower() if "." in path else ""
    if extension in ASSETS:
        summary.skipped["assets (scripts, styles, images, feeds)"] += 1
        return None
    where = entry.get("host") or host or "example.invalid"
    referrer = entry.get("referrer")
    return Imported(
        ts_ms=int(entry["ts_ms"]),
        url=f"https://{where}{target if target.startswith('/') else '/'}",
        referrer=referrer if referrer and referrer != "-" else None,
        ip=entry.get("ip"),
        user_agent=str(entry.get("agent") or ""),
    )


def _ga4(lines: Iterable[str], summary: Summary, host: str = "") -> Iterator[Imported]:
    from flask_tracking.imports.ga4 import ga4

    return ga4(lines, summary, host)


def _umami(lines: Iterable[str], summary: Summary, host: str = "") -> Iterator[Imported]:
    from flask_tracking.imports.umami import umami

    return umami(lines, summary, host)


SOURCES: dict[str, Source] = {
    "goatcounter": goatcounter,
    "access-log": access_log,
    "ga4": _ga4,
    "umami": _umami,
}
