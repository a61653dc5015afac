"""What was imported into which site (every import, listed and deletable), and the daily
aggregates of the sources that have no rows of visits to give (Plausible's export, GA's).

Row-level imports (GoatCounter, GA4 BigQuery, access logs) become ordinary events in the event
store; their `Import` row keeps the range of event ids they were given, so deleting the import
erases exactly those visitors. Aggregate imports live here, beside the sites they belong to,
in rollup form: per site, local day, dimension (the rollups' numbers, 0 the day's total) and
value, the counts reports add to native ones (reports/stats.py, docs/imports.md).
"""

from __future__ import annotations

import json
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flask_tracking.extensions import db
from flask_tracking.users.models import utcnow

# An import's life: an upload waits for the writer (row-level sources), then is done or failed;
# deleting a row-level import waits for the writer too.
PENDING, DONE, FAILED, DELETING = "pending", "done", "failed", "deleting"
EVENTS, AGGREGATES = "events", "aggregates"


class Import(db.Model):  # type: ignore[name-defined]
    """One file imported (or being imported) into a site."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(255), default="")
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the file
    kind: Mapped[str] = mapped_column(String(12))  # EVENTS or AGGREGATES
    status: Mapped[str] = mapped_column(String(12), default=PENDING)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rows: Mapped[int] = mapped_column(Integer, default=0)  # events, or visitors of the days
    first_day: Mapped[date | None] = mapped_column(Date)
    last_day: Mapped[date | None] = mapped_column(Date)
    skipped_json: Mapped[str] = mapped_column(Text, default="{}")  # reason -> count
    message: Mapped[str] = mapped_column(Text, default="")  # why it failed
    # Row-level imports: the event ids the store gave their rows (first, last), inclusive.
    first_eid: Mapped[int | None] = mapped_column(BigInteger)
    last_eid: Mapped[int | None] = mapped_column(BigInteger)
    # An upload waiting for the writer: where its file is (deleted once imported).
    path: Mapped[str] = mapped_column(String(1024), default="")

    @property
    def skipped(self) -> dict[str, int]:
        found = json.loads(self.skipped_json or "{}")
        return {str(k): int(v) for k, v in found.items()} if isinstance(found, dict) else {}


class ImportedDay(db.Model):  # type: ignore[name-defined]
    """One aggregate of an imported day: a dimension's value (or the day's total)."""

    __tablename__ = "imported_days"
    __table_args__ = (Index("ix_imported_days_site_day", "site_id", "day"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    dimension: Mapped[int] = mapped_column(Integer)  # reports/rollups.py numbers; 0: total
    value: Mapped[str] = mapped_column(String(2048), default="")
    visitors: Mapped[int] = mapped_column(Integer, default=0)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    pageviews: Mapped[int] = mapped_column(Integer, default=0)
    events: Mapped[int] = mapped_column(Integer, default=0)
    bounces: Mapped[int] = mapped_column(Integer, default=0)
    duration: Mapped[float] = mapped_column(Float, default=0.0)  # seconds, summed
