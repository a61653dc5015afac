"""Imports as a site's owner sees them: start one (from the command line or an upload), list
them, delete one.

Every import is an `Import` row. An aggregate source (Plausible's export) is loaded into the
app's database at once, wherever it starts. A row-level source becomes events in the event
store, which only its owner writes: the command line (the owner while it runs) imports at
once; an upload is saved under DATA_DIR/imports and left `pending` for the writer's `imports`
job, which also carries out deletions of row-level imports (erasing their visitors, as the
privacy page's erasures do).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from flask_tracking.events.store import EventStore, Readable, RollupBuilder
from flask_tracking.extensions import db
from flask_tracking.imports import aggregates, ga_csv, plausible
from flask_tracking.imports.base import Refused, Summary, read, run
from flask_tracking.imports.models import (
    AGGREGATES,
    DELETING,
    DONE,
    EVENTS,
    FAILED,
    PENDING,
    Import,
)
from flask_tracking.imports.sources import SOURCES
from flask_tracking.ingest.sitecache import site_info
from flask_tracking.tracking.models import Site
from flask_tracking.users import audit

logger = logging.getLogger("flask_tracking.imports")
AGGREGATE_SOURCES = {"plausible": plausible.read, "ga-csv": ga_csv.read}
NAMES = sorted([*SOURCES, *AGGREGATE_SOURCES])
LABELS = {
    "plausible": "Plausible export (ZIP)",
    "ga4": "Google Analytics 4 BigQuery export (NDJSON or Parquet)",
    "umami": "Umami data export (CSV, or its ZIP)",
    "ga-csv": "Google Analytics report download (CSV with Date)",
    "goatcounter": "GoatCounter CSV export",
    "access-log": "Web server access log",
}
MAX_UPLOAD = 256 << 20


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def refuse_twice(site_id: int, digest: str) -> None:
    """Refuse a file that is imported into the site already (or on its way)."""
    found = db.session.scalar(
        select(Import.id).where(
            Import.site_id == site_id, Import.digest == digest, Import.status != FAILED
        )
    )
    if found is not None:
        raise Refused(0, f"this file was imported into this site already (import {found})")


def import_file(
    site: Site,
    source: str,
    data: bytes,
    *,
    filename: str = "",
    user_id: int | None = None,
    store: Readable | None = None,
    dry_run: bool = False,
    host: str = "",
    progress: Callable[[int, int], None] = lambda _done, _total: None,
) -> tuple[list[str], Import | None]:
    """Import a file into a site now (a row-level source needs the store's owner): the
    summary's lines, and the import's record (None for a dry run). Raise Refused."""
    if source not in NAMES:
        raise Refused(0, f"unknown source {source!r}; one of {', '.join(NAMES)}")
    digest = digest_of(data)
    if not dry_run:
        refuse_twice(site.id, digest)
    if source in AGGREGATE_SOURCES:
        return _aggregates(
            site, source, data, filename=filename, user_id=user_id, store=store, dry_run=dry_run
        )
    record = None
    if not dry_run:
        record = _record(site, source, EVENTS, digest, filename=filename, user_id=user_id)
    try:
        summary = run(
            store,  # type: ignore[arg-type]
            site.id,
            site.timezone,
            functools.partial(SOURCES[source], host=host or site_info(site).host),
            _lines(data),
            key=f"import:{record.id if record else 0}:{digest}",
            dry_run=dry_run,
            progress=progress,
        )
    except Refused:
        if record is not None:  # nothing was loaded: no trace but the refusal
            db.session.delete(record)
            db.session.commit()
        raise
    except Exception as error:
        if record is not None:  # the store rolled the load back: say so on the list
            record.status, record.message = FAILED, f"{type(error).__name__}: {error}"
            db.session.commit()
        raise
    if record is not None:
        _finish(record, summary)
        if user_id is not None:
            audit.record(user_id, "data_imported", f"{LABELS[source]} into {site.display_name}")
        db.session.commit()
    return summary.lines(), record


MAX_INFLATED = 1 << 30  # a gzip file that would inflate past 1 GiB is refused (a gzip bomb)


def _lines(data: bytes) -> list[str]:
    if data.startswith(b"\x1f\x8b"):  # gzip (GoatCounter's export, rotated logs): inflated
        data = _gunzip(data)
    if data.startswith(b"PAR1"):  # Parquet (GA4's BigQuery export can be): its rows as JSON
        from flask_tracking.imports.ga4 import parquet_lines

        return parquet_lines(data)
    if data.startswith(b"PK\x03\x04"):  # a ZIP of a CSV (Umami's export)
        from flask_tracking.imports.umami import zip_lines

        return zip_lines(data)
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise Refused(0, "the file is not UTF-8 text") from None


def _gunzip(data: bytes) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as inflating:
            inflated = inflating.read(MAX_INFLATED + 1)
    except (OSError, EOFError) as error:
        raise Refused(0, f"not a readable gzip file ({error})") from None
    if len(inflated) > MAX_INFLATED:
        raise Refused(0, "the file inflates to more than 1 GiB")
    return inflated


def _record(
    site: Site, source: str, kind: str, digest: str, *, filename: str, user_id: int | None
) -> Import:
    record = Import(
        site_id=site.id,
        source=source,
        kind=kind,
        digest=digest,
        filename=filename[:255],
        created_by=user_id,
        status=PENDING,
    )
    db.session.add(record)
    db.session.commit()
    return record


def _finish(record: Import, summary: Summary) -> None:
    record.rows = summary.rows
    record.first_day = summary.first.date() if summary.first else None
    record.last_day = summary.last.date() if summary.last else None
    record.skipped_json = json.dumps(dict(summary.skipped))
    record.first_eid, record.last_eid = summary.eids or (None, None)
    record.status = DONE
    record.done_at = datetime.now(UTC)


def _aggregates(
    site: Site,
    source: str,
    data: bytes,
    *,
    filename: str,
    user_id: int | None,
    store: Readable | None,
    dry_run: bool,
) -> tuple[list[str], Import | None]:
    from flask_tracking.events import current_store

    found = AGGREGATE_SOURCES[source](data)
    all_days = found.days
    start = aggregates.native_start(site.id, site.timezone, store or current_store())
    aggregates.keep_new_days(site.id, found, start)
    days = found.days
    lines = [f"{len(all_days):,} day(s) in the file"]
    if all_days:
        lines[0] += f", {all_days[0]} to {all_days[-1]}"
    lines.append(
        f"{len(days):,} day(s) to import"
        + (f", {days[0]} to {days[-1]}" if days else "")
        + f": {found.visitors():,} visitor(s) in total; tables: {', '.join(found.tables)}"
    )
    lines += [f"skipped {count:,}: {reason}" for reason, count in sorted(found.skipped.items())]
    if dry_run:
        return lines, None
    if not days:
        raise Refused(0, "nothing to import: " + "; ".join(lines[2:] or ["the file has no days"]))
    record = Import(
        site_id=site.id,
        source=source,
        kind=AGGREGATES,
        digest=digest_of(data),
        filename=filename[:255],
        created_by=user_id,
    )
    db.session.add(record)
    db.session.flush()
    aggregates.load(record, found)
    if user_id is not None:
        audit.record(user_id, "data_imported", f"{LABELS[source]} into {site.display_name}")
    db.session.commit()
    return lines, record


# -- uploads, and the writer's job ------------------------------------------------------------


def queue_upload(
    site: Site, source: str, data: bytes, *, filename: str, user_id: int, directory: str
) -> Import:
    """Keep an uploaded file of a row-level source for the writer's `imports` job, once it
    has been read whole: a malformed file is refused now, with its line and reason."""
    if source not in SOURCES:
        raise Refused(0, f"unknown source {source!r}")
    read(functools.partial(SOURCES[source], host=site_info(site).host), _lines(data))
    digest = digest_of(data)
    refuse_twice(site.id, digest)
    record = _record(site, source, EVENTS, digest, filename=filename, user_id=user_id)
    folder = Path(directory) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record.id}-{digest[:16]}.upload"
    path.write_bytes(data)
    record.path = str(path)
    db.session.commit()
    return record


def run_pending(store: EventStore, rollups: RollupBuilder) -> int:
    """Import the uploads waiting and delete the imports being deleted (the writer's
    `imports` job); return how many were handled."""
    handled = 0
    waiting = db.session.scalars(
        select(Import).where(Import.status.in_((PENDING, DELETING))).order_by(Import.id)
    ).all()
    for record in waiting:
        if record.status == DELETING:
            _erase(store, rollups, record)
        elif record.path:
            _import_upload(store, rollups, record)
        else:
            continue  # a command-line import in progress in another process
        handled += 1
    return handled


def _import_upload(store: EventStore, rollups: RollupBuilder, record: Import) -> None:
    site = db.session.get(Site, record.site_id)
    path = Path(record.path)
    try:
        if site is None:
            raise Refused(0, "the site was deleted")
        summary = run(
            store,
            site.id,
            site.timezone,
            functools.partial(SOURCES[record.source], host=site_info(site).host),
            _lines(path.read_bytes()),
            key=f"import:{record.id}:{record.digest}",
        )
    except (Refused, OSError) as error:
        record.status = FAILED
        record.message = str(error)
        record.done_at = datetime.now(UTC)
    else:
        _finish(record, summary)
        store.derive(int(datetime.now(UTC).timestamp() * 1000), rollups)
    record.path = ""
    db.session.commit()
    path.unlink(missing_ok=True)


def delete_import(record: Import, user_id: int) -> None:
    """Delete an import: aggregates at once; a row-level import's events by the writer."""
    site = db.session.get(Site, record.site_id)
    name = site.display_name if site else str(record.site_id)
    audit.record(
        user_id, "import_deleted", f"{LABELS.get(record.source, record.source)} from {name}"
    )
    if record.kind == AGGREGATES or record.first_eid is None:
        if record.path:
            Path(record.path).unlink(missing_ok=True)
        aggregates.remove(record)
    else:
        record.status = DELETING
    db.session.commit()


def _erase(store: EventStore, rollups: RollupBuilder, record: Import) -> None:
    if record.first_eid is not None and record.last_eid is not None:
        vds = store.visitors_of_events(record.site_id, record.first_eid, record.last_eid)
        erased = store.erase_visitors(record.site_id, vds, rollups)
        logger.info(
            "import %s deleted: %s row(s) of %s visitor-day(s)", record.id, erased, len(vds)
        )
    db.session.delete(record)
    db.session.commit()
