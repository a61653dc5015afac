"""Umami's data export: the website's events as CSV (`website_event` rows with their session's
columns), in a ZIP or bare.

Each row is a pageview (`event_type` 1) or a custom event (2, named by `event_name`) at
`created_at` (UTC), on `hostname` + `url_path` (+ `url_query`, whose UTM parameters count as
for collected events), from `referrer_domain` + `referrer_path`. A visitor is Umami's
`session_id` (hashed with a salt of the import's own, per day); location (`country`,
`subdivision1`, `city`), browser, system, device and screen are Umami's own. Columns are found
by name; `created_at`, `url_path`, `event_type` and `session_id` are required.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator

from flask_tracking.imports.base import Imported, Refused, Summary

REQUIRED = ("session_id", "url_path", "event_type", "created_at")
# Umami names browsers as the detect-browser package does; ours are ua-parser's.
BROWSERS = {
    "chrome": "Chrome", "crios": "Chrome Mobile iOS", "firefox": "Firefox", "fxios": "Firefox iOS",
    "safari": "Safari", "ios": "Mobile Safari", "ios-webview": "Mobile Safari UI/WKWebView",
    "edge-chromium": "Edge", "edge": "Edge", "edge-ios": "Edge Mobile", "opera": "Opera",
    "samsung": "Samsung Internet", "android": "Android", "yandexbrowser": "Yandex Browser",
    "facebook": "Facebook", "instagram": "Instagram", "chromium-webview": "Chrome Mobile WebView",
}  # fmt: skip
DEVICES = {"desktop": "desktop", "laptop": "desktop", "mobile": "mobile", "tablet": "tablet"}


def umami(lines: Iterable[str], summary: Summary, host: str = "") -> Iterator[Imported]:
    """Umami's events CSV (a ZIP of it is opened first: `zip_lines`)."""
    reader = csv.reader(lines)
    header = [h.strip() for h in next(reader, [])]
    if not header:
        raise Refused(0, "the file is empty")
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise Refused(1, f"not Umami's events export: no column {', '.join(missing)}")
    for number, fields in enumerate(reader, start=2):
        if not fields:
            continue
        if len(fields) != len(header):
            raise Refused(number, f"{len(fields)} fields, not {len(header)}")
        row = dict(zip(header, (f.strip() for f in fields), strict=True))
        kind = row["event_type"]
        if kind not in ("1", "2"):
            summary.skipped[
                f"rows of another event type than pageview or custom event ({kind})"
            ] += 1
            continue
        path = row["url_path"] or "/"
        if not path.startswith("/"):
            raise Refused(number, f"url_path {path[:60]!r} is not a path")
        query = row.get("url_query") or ""
        where = row.get("hostname") or host or "example.invalid"
        name = "pageview" if kind == "1" else (row.get("event_name") or "")[:120]
        if not name:
            raise Refused(number, "a custom event (event_type 2) without an event_name")
        country = (row.get("country") or "").upper()
        yield Imported(
            ts_ms=_moment(row["created_at"], number),
            url=f"https://{where}{path}" + (f"?{query}" if query else ""),
            name=name,
            referrer=_referrer(row),
            width=_width(row.get("screen") or ""),
            visitor_key=row["session_id"] or f"line {number}",
            country=country if len(country) == 2 and country.isalpha() else None,
            region=row.get("subdivision1") or None,
            city=row.get("city") or None,
            browser=_browser(row.get("browser") or ""),
            os=row.get("os") or None,
            device=DEVICES.get((row.get("device") or "").lower()),
        )


def _moment(text: str, line: int) -> int:
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Refused(line, f"created_at {text[:40]!r} is not a date and time") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _referrer(row: dict[str, str]) -> str | None:
    domain = row.get("referrer_domain") or ""
    if not domain:
        return None
    path = row.get("referrer_path") or ""
    query = row.get("referrer_query") or ""
    return f"https://{domain}{path if path.startswith('/') else '/'}" + (
        f"?{query}" if query else ""
    )


def _width(screen: str) -> int | None:
    first = screen.lower().split("x", 1)[0]
    return int(first) if first.isdigit() and 0 < int(first) < 100_000 else None


def _browser(name: str) -> str | None:
    if not name:
        return None
    return BROWSERS.get(name.lower(), name.replace("-", " ").title())


def zip_lines(data: bytes) -> list[str]:
    """The CSV inside an export ZIP (the first .csv file holding `event_type`), as lines."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise Refused(0, "not a ZIP file") from None
    with archive:
        for member in sorted(archive.infolist(), key=lambda m: m.filename):
            if not member.filename.lower().endswith(".csv") or member.file_size > 1 << 30:
                continue
            try:
                text = archive.read(member).decode("utf-8-sig")
            except UnicodeDecodeError:
                raise Refused(0, f"{member.filename} is not UTF-8 text") from None
            if "event_type" in text.split("\n", 1)[0]:
                return text.splitlines()
    raise Refused(0, "no CSV of events (with an event_type column) in the ZIP")
