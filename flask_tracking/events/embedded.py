"""The embedded event store: one DuckDB file, owned by the process that writes it.

DuckDB lets one process open a file read-write, and no other process at all while it does. So
the writing process (the `serve` supervisor, `flask-tracking writer`, or the development
server) owns the store; its threads share one database instance (a cursor each), and the
worker processes read through it (remote.py). See docs/architecture/event-store.md.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import os
import threading
import time
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    Table,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)

from flask_tracking.events import appended, derive, schema
from flask_tracking.events.encoding import Codes
from flask_tracking.events.sql import DuckDBDialect, compile_for, intdiv
from flask_tracking.events.store import Batch, Closing, RollupBuilder
from flask_tracking.events.tables import tables, view_sql
from flask_tracking.events.zones import local_day_sql

logger = logging.getLogger("flask_tracking.events")
SCHEMA_VERSION = 1
# A refresh marks the rows of this many events at a time, at most (memory stays bounded).
REFRESH_PART_ROWS = 200_000
TYPES = {
    "dim": "INTEGER",
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "uint64": "UBIGINT",
    "bool": "BOOLEAN",
    "text": "VARCHAR",
    "float64": "DOUBLE",
}
# A UTC day is closed this long after it ends: its last sessions have ended (30 minutes of
# inactivity), and the writer has had time to store what was spooled before midnight.
CLOSE_AFTER_MS = derive.GAP_MS + 15 * 60 * 1000
# Dimension values' codes kept in memory by the writer (URLs and pages are most of them).
CODE_CACHE_SIZE = 500_000
CLOSE_CHUNK_DAYS = 31  # closing many days (a migration, a backlog) marks this many at once


class EmbeddedStore:
    """DuckDB: a file (or ":memory:"), with integer codes for dimension values."""

    engine = "duckdb"

    def __init__(
        self, path: str, *, memory_limit: str = "", threads: int = 0, checkpoint: str = ""
    ) -> None:
        config: dict[str, Any] = {}
        if memory_limit:
            config["memory_limit"] = memory_limit
        if threads:
            config["threads"] = threads
        if checkpoint:
            config["checkpoint_threshold"] = checkpoint
        self.path = path
        self.config = config
        self.con = duckdb.connect(path, config=config)
        self.dialect = DuckDBDialect(paramstyle="qmark")
        self.encoding = Codes()
        self.t = tables("duckdb")
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._write = threading.RLock()  # one writing transaction at a time in this process
        self._codes: dict[int, dict[str | None, int]] = {}  # per dictionary: value -> code
        self._next: dict[int, int] = {}
        self._changed = True  # `recent` changed since the open days were last marked
        # Per site: the last event id the open days' marked rows include; None: rebuild them
        # all (at start, and after any change to `recent` but appends).
        self._marked_through: dict[int, int] | None = None
        self._eids: dict[int, int] = {}  # per site: the last event id given
        self.refresh_part_rows = REFRESH_PART_ROWS
        self.migrate()

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> None:
        """Create what is missing of the schema (version 1: the first)."""
        con = self.cursor()
        con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        for name, columns in schema.TABLES.items():
            spec = ", ".join(f'"{c.name}" {TYPES[c.kind]}' for c in columns)
            con.execute(f'CREATE TABLE IF NOT EXISTS "{name}" ({spec})')
        con.execute(
            "CREATE TABLE IF NOT EXISTS dict "
            "(dictionary SMALLINT, code INTEGER, value VARCHAR, PRIMARY KEY (dictionary, code))"
        )
        for view in ("all_events", "all_sessions"):
            con.execute(f"CREATE OR REPLACE VIEW {view} AS {view_sql(view, 'duckdb')}")
        con.execute(
            "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING",
            [str(SCHEMA_VERSION)],
        )

    # -- reading --------------------------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """Return this thread's cursor (DuckDB connections are not shared between threads)."""
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._local.cursor = self.con.cursor()
            self._cursors.append(cursor)
        return cursor

    def fetch(self, statement: Any) -> list[tuple[Any, ...]]:
        """Run a SELECT and return its rows."""
        sql, params = compile_for(statement, self.dialect)
        return self.cursor().execute(sql, params).fetchall()

    def close(self) -> None:
        """Close the database (every thread's cursor too: they keep it open)."""
        for cursor in self._cursors:
            with contextlib.suppress(duckdb.Error):
                cursor.close()
        self._cursors.clear()
        with contextlib.suppress(duckdb.Error):
            self.con.close()

    def copy_to(self, path: str) -> None:
        """Write a consistent copy of the whole store to a new DuckDB file at `path` (a backup:
        one transaction's snapshot, while readers and the writer go on)."""
        if os.path.exists(path):
            raise FileExistsError(path)
        with self._write:  # no write transaction is half done in this process meanwhile
            cursor = self.con.cursor()
            try:
                (source,) = cursor.execute("SELECT current_database()").fetchone() or ("",)
                quoted = "'" + path.replace("'", "''") + "'"
                cursor.execute(f"ATTACH {quoted} AS flask_tracking_backup")
                try:
                    cursor.execute(f'COPY FROM DATABASE "{source}" TO flask_tracking_backup')
                finally:
                    cursor.execute("DETACH flask_tracking_backup")
            finally:
                cursor.close()

    # -- writing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a cursor in a write transaction, committed at the end (or rolled back)."""
        with self._write:
            cursor = self.con.cursor()
            cursor.execute("BEGIN TRANSACTION")
            try:
                yield cursor
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                self._codes.clear()  # codes assigned in the rolled-back transaction are void
                self._next.clear()
                self._eids.clear()
                raise
            finally:
                cursor.close()

    def run(self, cursor: duckdb.DuckDBPyConnection, statement: Any) -> None:
        """Execute a SQLAlchemy statement on a cursor."""
        sql, params = compile_for(statement, self.dialect)
        cursor.execute(sql, params)

    def append(self, batch: Batch) -> None:
        """Store the batch's events, drop counts and spool position in one transaction."""
        with self.transaction() as cursor:
            if batch.rows:
                columns: dict[str, Any] = {"eid": self._event_ids(cursor, batch.rows)}
                columns.update(_transposed(batch.rows, _APPENDED))
                for name, number in schema.DICTIONARY_IDS.items():
                    dims = [c.name for c in schema.RECENT if c.is_dim and c.dictionary == name]
                    if dims:
                        codes = self._encode(cursor, number, [columns[d] for d in dims])
                        columns.update(zip(dims, codes, strict=True))
                _insert_columns(cursor, "recent", schema.RECENT, columns)
            for (site_id, day, reason), count in batch.drops.items():
                self._count_drop(cursor, site_id, day, reason, count)
            for (account_id, month), count in batch.usage.items():
                self._count_usage(cursor, account_id, month, count)
            self._changed = self._changed or bool(batch.rows)
            c = self.t.checkpoints
            self.run(cursor, delete(c).where(c.c.segment == batch.segment))
            self.run(
                cursor,
                insert(c).values(node=batch.node, segment=batch.segment, offset=batch.offset),
            )

    def loaded(self, key: str) -> bool:
        """Tell whether a load under `key` was committed (loads are idempotent by key)."""
        found = self.cursor().execute("SELECT 1 FROM meta WHERE key = ?", ["loaded:" + key])
        return found.fetchone() is not None

    def stage(self, key: str, columns: dict[str, list[Any]]) -> None:
        """Add a chunk of rows for `recent` (dimension values as text) to the load `key`."""
        with self.transaction() as cursor:
            spec = ", ".join(
                f'"{c.name}" {"VARCHAR" if c.is_dim else TYPES[c.kind]}' for c in schema.RECENT
            )
            cursor.execute(f"CREATE TABLE IF NOT EXISTS loading (load_key VARCHAR, {spec})")
            values = {"load_key": [key] * len(columns["ts"]), **columns}
            key_column = schema.Column("load_key", "text")
            _insert_columns(cursor, "loading", (key_column, *schema.RECENT), values, text_dims=True)

    def discard(self, key: str) -> None:
        """Forget the staged chunks of a load that will not be committed (a new attempt)."""
        with self.transaction() as cursor:
            if self._has_table(cursor, "loading"):
                cursor.execute("DELETE FROM loading WHERE load_key = ?", [key])

    def commit_load(self, key: str) -> int:
        """Move a load's staged rows into `recent`, encoded, and record it: all or nothing.

        Values are encoded in SQL, one statement per dictionary for the new ones. Return the
        rows moved.
        """
        with self.transaction() as cursor:
            if not self._has_table(cursor, "loading"):
                return 0
            # The SQL below is assembled from the schema's own column names and dictionary
            # numbers (schema.py), never from data: values travel as parameters.
            staged = "(SELECT * FROM loading WHERE load_key = ?)"
            for name, number in schema.DICTIONARY_IDS.items():
                sources = [c.name for c in schema.RECENT if c.is_dim and c.dictionary == name]
                if not sources:
                    continue
                values = " UNION ".join(
                    f'SELECT "{c}" AS v FROM {staged}'  # noqa: S608 (schema names)
                    for c in sources
                )
                cursor.execute(
                    "INSERT INTO dict SELECT ?, coalesce((SELECT max(code) FROM dict WHERE "  # noqa: S608
                    "dictionary = ?), 0) + row_number() OVER (ORDER BY v), v FROM ("
                    f"SELECT DISTINCT v FROM ({values}) WHERE v IS NOT NULL AND v <> '' "
                    "AND v NOT IN (SELECT value FROM dict WHERE dictionary = ?))",
                    [number, number, *([key] * len(sources)), number],
                )
            outputs = []
            joins = []
            for index, c in enumerate(schema.RECENT):
                if c.is_dim:
                    number = schema.DICTIONARY_IDS[c.dictionary]
                    joins.append(
                        f"LEFT JOIN dict d{index} ON d{index}.dictionary = {number} "
                        f'AND d{index}.value = s."{c.name}"'
                    )
                    outputs.append(f"coalesce(d{index}.code, 0)")
                else:
                    outputs.append(f's."{c.name}"')
            # Rows staged without ids get the next ones of their site, in time order.
            cursor.execute(
                "UPDATE loading SET eid = n.eid FROM (SELECT rowid AS r, "
                "(SELECT coalesce(max(eid), 0) FROM (SELECT eid FROM recent "
                "WHERE site_id = l.site_id UNION ALL SELECT eid FROM events "
                "WHERE site_id = l.site_id)) + row_number() OVER (PARTITION BY site_id "
                "ORDER BY ts) AS eid FROM loading l "
                "WHERE load_key = ? AND (eid IS NULL OR eid = 0)) n "
                "WHERE loading.rowid = n.r",
                [key],
            )
            moved = cursor.execute(
                f"INSERT INTO recent SELECT {', '.join(outputs)} "  # noqa: S608 (schema names)
                f"FROM {staged} s {' '.join(joins)}",
                [key],
            ).fetchone()
            self._eids.clear()
            cursor.execute("DELETE FROM loading WHERE load_key = ?", [key])
            cursor.execute("INSERT INTO meta VALUES (?, 'yes')", ["loaded:" + key])
            self._rewritten()
        self._codes.clear()
        self._next.clear()
        return int(moved[0]) if moved else 0

    @staticmethod
    def _has_table(cursor: duckdb.DuckDBPyConnection, name: str) -> bool:
        found = cursor.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchone()
        return found is not None

    def add_drops(self, key: str, drops: dict[tuple[int, int, str], int]) -> bool:
        """Add drop counts once under `key` (a migration's); False if already added."""
        with self.transaction() as cursor:
            if cursor.execute("SELECT 1 FROM meta WHERE key = ?", ["loaded:" + key]).fetchone():
                return False
            for (site_id, day, reason), count in drops.items():
                self._count_drop(cursor, site_id, day, reason, count)
            cursor.execute("INSERT INTO meta VALUES (?, 'yes')", ["loaded:" + key])
        return True

    def add_checkpoints(self, offsets: dict[str, int]) -> None:
        """Record spool positions reached elsewhere (an old writer's), keeping known ones."""
        known = self.offsets()
        c = self.t.checkpoints
        with self.transaction() as cursor:
            for segment, offset in offsets.items():
                if segment not in known:
                    self.run(cursor, insert(c).values(node="", segment=segment, offset=offset))

    def _event_ids(
        self, cursor: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]
    ) -> list[int]:
        """Give each row the next id of its site (ids only grow: see schema.RECENT)."""
        ids = []
        for row in rows:
            site_id = int(row["site_id"])
            last = self._eids.get(site_id)
            if last is None:
                found = cursor.execute(
                    "SELECT max(eid) FROM (SELECT eid FROM recent WHERE site_id = ? "
                    "UNION ALL SELECT eid FROM events WHERE site_id = ?)",
                    [site_id, site_id],
                ).fetchone()
                last = int(found[0] or 0) if found else 0
            self._eids[site_id] = last + 1
            ids.append(last + 1)
        return ids

    def _encode(
        self, cursor: duckdb.DuckDBPyConnection, dictionary: int, columns: list[list[Any]]
    ) -> list[list[int]]:
        """Return the codes of columns of values drawing from one dictionary (0 for "not
        set"), adding the new values to `dict` in this transaction: one query finds the
        batch's values that are not cached, one statement adds the new ones."""
        if sum(len(known) for known in self._codes.values()) > CODE_CACHE_SIZE:
            self._codes.clear()
        codes = self._codes.get(dictionary)
        if codes is None:
            codes = self._codes[dictionary] = {None: 0, "": 0}  # "not set"
        wanted = sorted(set().union(*columns).difference(codes))
        if wanted:
            found = cursor.execute(
                "SELECT value, code FROM dict WHERE dictionary = ? "
                "AND value IN (SELECT unnest(?::VARCHAR[]))",
                [dictionary, wanted],
            ).fetchall()
            codes.update((value, int(code)) for value, code in found)
            new = [value for value in wanted if value not in codes]
            if new:
                if dictionary not in self._next:
                    top = cursor.execute(
                        "SELECT coalesce(max(code), 0) FROM dict WHERE dictionary = ?", [dictionary]
                    ).fetchone()
                    self._next[dictionary] = int(top[0] if top else 0) + 1
                first = self._next[dictionary]
                self._next[dictionary] = first + len(new)
                numbers = list(range(first, first + len(new)))
                cursor.execute(
                    "INSERT INTO dict SELECT ?, unnest(?::INTEGER[]), unnest(?::VARCHAR[])",
                    [dictionary, numbers, new],
                )
                codes.update(zip(new, numbers, strict=True))
        return [list(map(codes.__getitem__, values)) for values in columns]

    def _count_drop(
        self, cursor: duckdb.DuckDBPyConnection, site_id: int, day: int, reason: str, count: int
    ) -> None:
        key = {"site_id": site_id, "day": day, "reason": reason}
        self._add_to(cursor, self.t.drops, key, "count", count)

    def _count_usage(
        self, cursor: duckdb.DuckDBPyConnection, account_id: int, month: int, count: int
    ) -> None:
        key = {"account_id": account_id, "month": month}
        self._add_to(cursor, self.t.usage, key, "events", count)

    def _add_to(
        self,
        cursor: duckdb.DuckDBPyConnection,
        table: Any,
        key: dict[str, Any],
        column: str,
        count: int,
    ) -> None:
        """Add `count` to the counter row of `key` (drops, usage), making it if missing."""
        where = and_(*(table.c[name] == value for name, value in key.items()))
        sql, params = compile_for(select(table.c[column]).where(where), self.dialect)
        if cursor.execute(sql, params).fetchone() is None:
            statement: Any = insert(table).values(**key, **{column: count})
        else:
            statement = update(table).where(where).values({column: table.c[column] + count})
        self.run(cursor, statement)

    def offsets(self) -> dict[str, int]:
        """Return how far each spool segment is stored (segment names are unique)."""
        c = self.t.checkpoints.c
        return {
            str(segment): int(offset) for segment, offset in self.fetch(select(c.segment, c.offset))
        }

    def forget(self, segment: str) -> None:
        """Drop a stored and deleted segment's checkpoint."""
        c = self.t.checkpoints
        with self.transaction() as cursor:
            self.run(cursor, delete(c).where(c.c.segment == segment))

    # -- deriving sessions, markers and rollups -------------------------------------------

    def derive(self, now_ms: int, rollups: RollupBuilder) -> int:
        """Close the UTC days that have ended, then refresh the open days' marked rows.

        A day already closed that gets late events is reopened first (its closed rows go back
        to `recent`), so it is closed again as a whole.
        """
        last = (now_ms - CLOSE_AFTER_MS) // derive.DAY_MS - 1
        r = self.t.recent.c
        utc_day = intdiv(r.ts, derive.DAY_MS)
        found = self.fetch(
            select(r.site_id, utc_day).where(r.ts < (last + 1) * derive.DAY_MS).distinct()
        )
        for site_id, day in sorted(found):
            self.reopen(int(site_id), int(day))
        days = sorted({int(day) for _site, day in found})
        chunk: list[int] = []
        for day in days:
            if chunk and day - chunk[0] >= CLOSE_CHUNK_DAYS:
                self.close_days(chunk[0], chunk[-1], rollups, now_ms)
                chunk = []
            chunk.append(day)
        if chunk:
            self.close_days(chunk[0], chunk[-1], rollups, now_ms)
        v = self.t.day_visitors
        forget = delete(v).where(v.c.closed_at < now_ms - derive.LATE_DAYS_MS)
        with self.transaction() as cursor:
            self.run(cursor, forget)
        self.refresh()
        return len(days)

    def reopen(self, site_id: int, utc_day: int) -> None:
        """Put a closed UTC day of a site back into `recent` (nothing if it is not closed)."""
        t = self.t
        s = t.sessions.c
        with self.transaction() as cursor:
            closed = select(s.sid).where(
                s.site_id == site_id,
                s.ts >= utc_day * derive.DAY_MS,
                s.ts < (utc_day + 1) * derive.DAY_MS,
            )
            sql, params = compile_for(closed.limit(1), self.dialect)
            if cursor.execute(sql, params).fetchone() is None:
                return
            rows = derive.reopened(t.events, t.sessions, t.day_visitors, site_id, utc_day)
            self.run(cursor, insert(t.recent).from_select(_names(schema.RECENT), rows))
            span = (utc_day * derive.DAY_MS, (utc_day + 1) * derive.DAY_MS)
            for table in (t.events, t.sessions):
                self.run(
                    cursor,
                    delete(table).where(
                        table.c.site_id == site_id, table.c.ts >= span[0], table.c.ts < span[1]
                    ),
                )
            for table in (t.rollups, t.day_visitors):
                self.run(
                    cursor,
                    delete(table).where(table.c.site_id == site_id, table.c.utc_day == utc_day),
                )
            self._rewritten()
        logger.info("reopened UTC day %s of site %s for late events", utc_day, site_id)

    def _rewritten(self) -> None:
        """`recent` changed otherwise than by appends: the next refresh rebuilds every mark."""
        self._changed = True
        self._marked_through = None

    def refresh(self) -> None:
        """Bring the marked rows of the open days (recent_sessions, recent_events) up to date
        with `recent`, if it changed since the last time.

        After appends, only the visitors with new events are marked again (their visitor
        numbers stay: schema.RECENT_NUMBERS), so a refresh costs what arrived, not the size
        of the day; after any other change, everything is rebuilt.
        """
        if not self._changed:
            return
        try:
            self._marked_through = self._refresh(self._marked_through)
        except BaseException:
            self._changed = True  # try again (a rebuild: _marked_through is None)
            raise

    def _refresh(self, through: dict[int, int] | None) -> dict[int, int]:
        t = self.t
        self._marked_through = None  # until this transaction commits
        with self.transaction() as cursor:
            self._changed = False  # a change from now on (another thread) calls for another
            r = t.recent.c
            if through is None:
                for table in (t.recent_numbers, t.recent_sessions, t.recent_events):
                    self.run(cursor, delete(table))
                touched = select(r.site_id, intdiv(r.ts, derive.DAY_MS).label("utc_day"), r.visitor)
                sql, params = compile_for(touched.distinct(), self.dialect)
                cursor.execute(f"CREATE OR REPLACE TEMP TABLE touched_visitors AS {sql}", params)
                self._mark_touched(cursor, full=True)
            else:
                self._mark_appended(cursor, through)
            marks = cursor.execute("SELECT site_id, max(eid) FROM recent GROUP BY site_id")
            return {int(site): int(eid) for site, eid in marks.fetchall()}

    def _mark_appended(self, cursor: duckdb.DuckDBPyConnection, through: dict[int, int]) -> None:
        """Mark the rows appended since `through` (per site, the last event id marked) against
        the marked rows (appended.py); visitors with a row before their last session's start
        are marked whole."""
        r = self.t.recent.c
        beyond = [and_(r.site_id == site, r.eid > eid) for site, eid in through.items()]
        beyond.append(r.site_id.not_in(list(through)))
        rows = select(*r, intdiv(r.ts, derive.DAY_MS).label("utc_day")).where(or_(*beyond))
        sql, params = compile_for(rows, self.dialect)
        cursor.execute(f"CREATE OR REPLACE TEMP TABLE fresh_rows AS {sql}", params)
        cursor.execute(
            "CREATE OR REPLACE TEMP TABLE touched_visitors AS "
            "SELECT DISTINCT site_id, utc_day, visitor FROM fresh_rows"
        )
        self._number_new(cursor)
        cursor.execute(appended.FRESH)
        cursor.execute(appended.LASTS)
        cursor.execute(appended.SLOW)
        appended.mark_appended(cursor.execute)
        cursor.execute(
            "CREATE OR REPLACE TEMP TABLE touched_visitors AS "
            "SELECT site_id, utc_day, visitor FROM slow"
        )
        slow = cursor.execute("SELECT count(*) FROM touched_visitors").fetchall()
        if slow[0][0]:
            self._mark_touched(cursor, full=False, numbered=True)

    def _number_new(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Number the visitors of `touched_visitors` that have no number yet."""
        t = self.t
        self.run(
            cursor,
            insert(t.recent_numbers).from_select(
                _names(schema.RECENT_NUMBERS),
                derive.new_numbers(t.recent, t.recent_numbers, TOUCHED),
            ),
        )

    def _mark_touched(
        self, cursor: duckdb.DuckDBPyConnection, *, full: bool, numbered: bool = False
    ) -> None:
        """Number the new visitors of `touched_visitors` (unless `numbered` already), then
        replace the marked rows of all its visitors (computed from all their rows in `recent`)."""
        t = self.t
        n = t.recent_numbers.c
        if not numbered:
            self._number_new(cursor)
        if not full:
            person = n.utc_day * derive.VISITORS_PER_DAY + n.vnum
            theirs = (
                select(n.site_id, person.label("person"))
                .join_from(
                    TOUCHED,
                    t.recent_numbers,
                    and_(
                        n.site_id == TOUCHED.c.site_id,
                        n.utc_day == TOUCHED.c.utc_day,
                        n.visitor == TOUCHED.c.visitor,
                    ),
                )
                .subquery("theirs")
            )
            for table in (t.recent_sessions, t.recent_events):
                c = table.c
                ours = and_(
                    theirs.c.site_id == c.site_id,
                    theirs.c.person == intdiv(c.sid, derive.SESSIONS_PER_VISITOR),
                )
                self.run(cursor, delete(table).where(ours))
        # Marked a part at a time, so that the memory it takes is bounded whatever the size of
        # the day (a day of a million rows marked at once ran out of a 500 MB limit).
        found = cursor.execute(
            "SELECT count(*) FROM recent r JOIN touched_visitors t ON t.site_id = r.site_id "
            "AND t.visitor = r.visitor AND t.utc_day = r.ts // 86400000"
        ).fetchall()
        parts = max(1, -(-int(found[0][0]) // self.refresh_part_rows))
        sessions, events, _numbers = derive.marked(
            t.recent, literal(True), t.recent_numbers, TOUCHED_PART
        )
        for part in range(parts):
            cursor.execute(
                "CREATE OR REPLACE TEMP TABLE touched_part AS SELECT * FROM touched_visitors "
                "WHERE ((visitor % ?) + ?) % ? = ?",
                [parts, parts, parts, part],
            )
            self.run(
                cursor, insert(t.recent_sessions).from_select(_names(schema.SESSIONS), sessions)
            )
            self.run(cursor, insert(t.recent_events).from_select(_names(schema.EVENTS), events))

    def close_days(self, first: int, last: int, rollups: RollupBuilder, now_ms: int) -> None:
        """Move UTC days first..last from `recent` into `sessions` and `events`, with rollups;
        their visitors' hashes are kept (for late events) from `now_ms` on."""
        began = time.monotonic()
        where = derive.utc_days(self.t.recent, None, first, last)
        sessions, events, visitors = derive.marked(self.t.recent, where)
        with self.transaction() as cursor:
            staged = self._stage(cursor, f"{first}_{last}", sessions, events)
            self._keep(cursor, staged, rollups)
            kept = select(*visitors.selected_columns, literal(now_ms))
            names = _names(schema.DAY_VISITORS)
            self.run(cursor, insert(self.t.day_visitors).from_select(names, kept))
            self.run(cursor, delete(self.t.recent).where(where))
            self._rewritten()
        logger.info("closed UTC days %s..%s in %.2fs", first, last, time.monotonic() - began)

    def _stage(
        self, cursor: duckdb.DuckDBPyConnection, label: str, sessions: Any, events: Any
    ) -> Closing:
        staged = {}
        for kind, statement in (("sessions", sessions), ("events", events)):
            name = f"staged_{kind}_{label}"
            sql, params = compile_for(statement, self.dialect)
            cursor.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}", params)
            staged[kind] = _table_like(name, getattr(self.t, kind))
        return Closing(staged["sessions"], staged["events"])

    def _keep(
        self, cursor: duckdb.DuckDBPyConnection, staged: Closing, rollups: RollupBuilder
    ) -> None:
        """Append staged rows (in time order) and their rollups; drop the staging tables."""
        rows = rollups(_Staged(self, cursor), staged)
        for target, source in ((self.t.sessions, staged.sessions), (self.t.events, staged.events)):
            ordered = select(source).order_by(source.c.site_id, source.c.ts)
            self.run(cursor, insert(target).from_select(_names_of(target), ordered))
            cursor.execute(f'DROP TABLE "{source.name}"')  # our own name: staged_…
        if rows:
            columns = {c.name: [row[i] for row in rows] for i, c in enumerate(schema.ROLLUPS)}
            _insert_columns(cursor, "rollups", schema.ROLLUPS, columns)

    def compact(self) -> tuple[int, int]:
        """Rewrite the file without its free blocks; return its size before and after.

        Rows deleted or moved (days closed, sites deleted, a bulk load) leave blocks that
        DuckDB reuses for new rows but never gives back to the file system. This copies every
        table, in order, into a new file and puts it in place of the old one; only the owner
        may do it, with nobody reading (a command, with the server stopped).
        """
        if self.path == ":memory:":
            return 0, 0
        with self._write:
            before = on_disk(self.path)
            partial = self.path + ".compacting"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
            cursor = self.cursor()
            cursor.execute("CHECKPOINT")
            (name,) = cursor.execute("SELECT current_database()").fetchone() or ("",)
            cursor.execute("ATTACH ? AS compacted", [partial])
            cursor.execute(f'COPY FROM DATABASE "{name}" TO compacted')
            cursor.execute("DETACH compacted")
            self.close()
            os.replace(partial, self.path)
            self.con = duckdb.connect(self.path, config=self.config)
            self._local = threading.local()
            return before, on_disk(self.path)

    def delete_site(self, site_id: int) -> None:
        """Delete everything of a site (its dictionary values stay: they are shared)."""
        with self.transaction() as cursor:
            self._rewritten()
            for name in schema.TABLES:
                table = getattr(self.t, name)
                if "site_id" in table.c:
                    self.run(cursor, delete(table).where(table.c.site_id == site_id))

    def purge(
        self, site_id: int, before_day: int, *, keep_rollups: bool, max_days: int
    ) -> tuple[int, bool]:
        """Delete a site's closed events and sessions of local days before `before_day`, the
        oldest `max_days` days of them in one transaction (a bounded batch: the writer's
        appends wait for one batch at most); its rollups and drop counts too unless
        `keep_rollups`. Return the rows deleted and whether older days are left."""
        t = self.t
        tables = [t.events, t.sessions] if keep_rollups else [t.events, t.sessions, t.rollups]
        firsts = [
            row[0]
            for table in tables
            for row in self.fetch(select(func.min(table.c.day)).where(table.c.site_id == site_id))
            if row[0] is not None
        ]
        if not firsts or min(firsts) >= before_day:
            return 0, False
        end = min(min(firsts) + max_days, before_day)
        deleted = 0
        with self.transaction() as cursor:
            for table in tables:
                sql, params = compile_for(
                    delete(table).where(table.c.site_id == site_id, table.c.day < end),
                    self.dialect,
                )
                deleted += int((cursor.execute(sql, params).fetchone() or (0,))[0])
            if not keep_rollups:
                d = self.t.drops  # by UTC day: within a day of the local cut
                self.run(cursor, delete(d).where(d.c.site_id == site_id, d.c.day < end))
        return deleted, end < before_day

    def visitors_seen(self, site_id: int, page: str, start_ms: int, end_ms: int) -> list[int]:
        """The visitor-days (`vd`) of a site with an event on `page` in [start_ms, end_ms)."""
        found: set[int] = set()
        for table in (self.t.events, self.t.recent_events):
            c = table.c
            rows = self.fetch(
                select(c.vd)
                .where(
                    c.site_id == site_id,
                    self.encoding.codes(c.page, "page", [page]),
                    c.ts >= start_ms,
                    c.ts < end_ms,
                )
                .distinct()
            )
            found.update(int(row[0]) for row in rows)
        return sorted(found)

    def visitors_of_events(self, site_id: int, first_eid: int, last_eid: int) -> list[int]:
        """The visitor-days of a site's events with ids in [first_eid, last_eid] (an import's)."""
        found: set[int] = set()
        for table in (self.t.events, self.t.recent_events):
            c = table.c
            rows = self.fetch(
                select(c.vd)
                .where(c.site_id == site_id, c.eid >= first_eid, c.eid <= last_eid)
                .distinct()
            )
            found.update(int(row[0]) for row in rows)
        return sorted(found)

    def last_eid(self, site_id: int) -> int:
        """The highest event id a site's rows have (0: none)."""
        highest = 0
        for table in (self.t.events, self.t.recent):
            found = self.fetch(select(func.max(table.c.eid)).where(table.c.site_id == site_id))
            highest = max(highest, int(found[0][0] or 0))
        return highest

    def erase_visitors(self, site_id: int, vds: list[int], rollups: RollupBuilder) -> int:
        """Delete every row of these visitor-days of a site, wherever it is stored, and return
        how many: closed rows (events, sessions; the rollups of their UTC days recomputed from
        what remains, and the visitors' kept hashes forgotten) and open rows (the visitor's
        events of that UTC day in `recent`, re-marked at once)."""
        if not vds:
            return 0
        t = self.t
        days = sorted({vd // 4 // derive.VISITORS_PER_DAY for vd in vds})
        deleted = 0
        with self.transaction() as cursor:
            for table in (t.events, t.sessions):
                sql, params = compile_for(
                    delete(table).where(table.c.site_id == site_id, table.c.vd.in_(vds)),
                    self.dialect,
                )
                deleted += int((cursor.execute(sql, params).fetchone() or (0,))[0])
            for utc_day in days:
                numbers = [vd // 4 % derive.VISITORS_PER_DAY for vd in vds
                           if vd // 4 // derive.VISITORS_PER_DAY == utc_day]  # fmt: skip
                deleted += self._erase_open(cursor, site_id, utc_day, numbers)
                self._recount_closed(cursor, site_id, utc_day, rollups)
                dv = t.day_visitors.c
                self.run(
                    cursor,
                    delete(t.day_visitors).where(
                        dv.site_id == site_id, dv.utc_day == utc_day, dv.vnum.in_(numbers)
                    ),
                )
            self._rewritten()
        self.refresh()
        logger.info("erased %d row(s) of %d visitor-day(s) of site %s", deleted, len(vds), site_id)
        return deleted

    def _erase_open(
        self, cursor: duckdb.DuckDBPyConnection, site_id: int, utc_day: int, numbers: list[int]
    ) -> int:
        """Delete the open rows of these visitor numbers of a UTC day (their hashes' events)."""
        n, r = self.t.recent_numbers.c, self.t.recent
        hashes = select(n.visitor).where(
            n.site_id == site_id, n.utc_day == utc_day, n.vnum.in_(numbers)
        )
        sql, params = compile_for(
            delete(r).where(
                r.c.site_id == site_id,
                r.c.ts >= utc_day * derive.DAY_MS,
                r.c.ts < (utc_day + 1) * derive.DAY_MS,
                r.c.visitor.in_(hashes),
            ),
            self.dialect,
        )
        return int((cursor.execute(sql, params).fetchone() or (0,))[0])

    def _recount_closed(
        self, cursor: duckdb.DuckDBPyConnection, site_id: int, utc_day: int, rollups: RollupBuilder
    ) -> None:
        """Recompute a closed UTC day's rollups from the rows it has left (as closing it did:
        its rows restaged, the day's rollups replaced)."""
        t = self.t
        span = (utc_day * derive.DAY_MS, (utc_day + 1) * derive.DAY_MS)
        if not self._has_rows(cursor, t.rollups, site_id, utc_day=utc_day):
            return  # not closed (or nothing counted): nothing to recount

        def of_day(table: Any) -> Any:
            return and_(table.c.site_id == site_id, table.c.ts >= span[0], table.c.ts < span[1])

        staged = self._stage(
            cursor,
            f"erase{site_id}_{utc_day}",
            select(t.sessions).where(of_day(t.sessions)),
            select(t.events).where(of_day(t.events)),
        )
        for table in (t.sessions, t.events):
            self.run(cursor, delete(table).where(of_day(table)))
        r = t.rollups.c
        self.run(cursor, delete(t.rollups).where(r.site_id == site_id, r.utc_day == utc_day))
        self._keep(cursor, staged, rollups)

    def _has_rows(
        self, cursor: duckdb.DuckDBPyConnection, table: Any, site_id: int, *, utc_day: int
    ) -> bool:
        probe = select(literal(1)).where(table.c.site_id == site_id, table.c.utc_day == utc_day)
        sql, params = compile_for(probe.limit(1), self.dialect)
        return cursor.execute(sql, params).fetchone() is not None

    def rezone(self, site_id: int, zone_name: str, rollups: RollupBuilder) -> None:
        """Recompute a site's local days, visitor-days, markers and rollups in a new zone."""
        zone = ZoneInfo(zone_name)
        began = time.monotonic()
        t = self.t
        with self.transaction() as cursor:
            span = cursor.execute(
                "SELECT min(ts), max(ts) FROM (SELECT ts FROM recent WHERE site_id = ? "
                "UNION ALL SELECT ts FROM events WHERE site_id = ?)",
                [site_id, site_id],
            ).fetchone()
            if span is not None and span[0] is not None:
                self._rewritten()
                low, high = int(span[0]) - derive.DAY_MS, int(span[1]) + derive.DAY_MS

                def day_of(ts: Any) -> Any:
                    return local_day_sql(ts, zone, low, high)

                r = t.recent
                self.run(cursor, update(r).where(r.c.site_id == site_id).values(day=day_of(r.c.ts)))
                sessions, events = derive.remarked(t.events, t.sessions, site_id, day_of)
                staged = self._stage(cursor, f"site{site_id}", sessions, events)
                for table in (t.sessions, t.events, t.rollups):
                    self.run(cursor, delete(table).where(table.c.site_id == site_id))
                self._keep(cursor, staged, rollups)
            s = t.site_state
            self.run(cursor, delete(s).where(s.c.site_id == site_id))
            self.run(
                cursor, insert(s).values(site_id=site_id, timezone=zone_name, closed_through=0)
            )
        self.refresh()
        logger.info(
            "site %s re-marked for %s in %.2fs", site_id, zone_name, time.monotonic() - began
        )

    def add_rollups(self, rows: list[tuple[Any, ...]]) -> None:
        """Store rollup rows computed after their days closed (a goal's), in one transaction,
        replacing any row of the same (site, UTC day, local day, dimension, value)."""
        if not rows:
            return
        columns = {c.name: [row[i] for row in rows] for i, c in enumerate(schema.ROLLUPS)}
        r = self.t.rollups.c
        groups: dict[tuple[Any, ...], set[tuple[int, int]]] = {}
        for row in rows:
            groups.setdefault((row[0], row[3], row[4]), set()).add((row[1], row[2]))
        with self.transaction() as cursor:
            for (site_id, dimension, value), slices in groups.items():
                replaced = delete(self.t.rollups).where(
                    r.site_id == site_id,
                    r.dimension == dimension,
                    r.value == value,
                    tuple_(r.utc_day, r.day).in_(sorted(slices)),
                )
                self.run(cursor, replaced)
            _insert_columns(cursor, "rollups", schema.ROLLUPS, columns)

    def zones(self) -> dict[int, str]:
        """Return the zone each site's stored rows are marked in."""
        c = self.t.site_state.c
        return {int(site): str(zone) for site, zone in self.fetch(select(c.site_id, c.timezone))}


# The visitors whose marked rows a refresh recomputes (a temporary table of the refresh), and
# the part of them being marked.
TOUCHED, TOUCHED_PART = (
    Table(
        name,
        MetaData(),
        Column("site_id", Integer),
        Column("utc_day", BigInteger),
        Column("visitor", BigInteger),
    )
    for name in ("touched_visitors", "touched_part")
)


def on_disk(path: str) -> int:
    """The bytes a store file takes: the file and its write-ahead log (not yet checkpointed)."""
    wal = path + ".wal"
    return os.path.getsize(path) + (os.path.getsize(wal) if os.path.exists(wal) else 0)


# The columns of `recent` a batch's rows hold (all but the id, which the store gives).
_APPENDED = tuple(column.name for column in schema.RECENT if column.name != "eid")


def _transposed(rows: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, Any]:
    """The rows' values column by column (a missing key is None)."""
    try:
        values = zip(*map(operator.itemgetter(*names), rows), strict=True)
        return dict(zip(names, values, strict=True))
    except KeyError:  # rows not made by enrich(): some columns left out
        return {name: [row.get(name) for row in rows] for name in names}


def _insert_columns(
    cursor: duckdb.DuckDBPyConnection,
    table: str,
    columns: tuple[schema.Column, ...],
    values: dict[str, list[Any]],
    *,
    text_dims: bool = False,
) -> None:
    """Insert column lists in one statement, DuckDB scanning them as NumPy arrays.

    About 1.5 µs a row for the `recent` table's 33 columns; passing the lists as SQL list
    parameters (unnest(?::INTEGER[])) cost 20 µs a row, the writer's largest single cost.
    """

    def kind(column: schema.Column) -> str:
        return "VARCHAR" if text_dims and column.is_dim else TYPES[column.kind]

    # DuckDB finds `insert_batch` among this frame's variables (a replacement scan): unlike
    # cursor.register(), that works while an earlier result of the cursor is not fully read.
    insert_batch = {c.name: _array(values[c.name], kind(c)) for c in columns}
    names = ", ".join(f'"{c.name}"' for c in columns)
    casts = ", ".join(f'CAST("{c.name}" AS {kind(c)})' for c in columns)
    # Table and column names come from the schema, never from input.
    cursor.execute(f"INSERT INTO {table} ({names}) SELECT {casts} FROM insert_batch")  # noqa: S608
    del insert_batch


_NUMPY_TYPES = {
    "SMALLINT": numpy.int16,
    "INTEGER": numpy.int32,
    "BIGINT": numpy.int64,
    "UBIGINT": numpy.uint64,
    "BOOLEAN": numpy.bool_,
    "DOUBLE": numpy.float64,
}


def _array(values: list[Any], sql_type: str) -> numpy.ndarray[Any, Any]:
    """A column as a typed array; as Python objects when it holds text or NULLs (None)."""
    numeric = _NUMPY_TYPES.get(sql_type)
    if numeric is not None and None not in values:
        return numpy.array(values, dtype=numeric)
    return numpy.array(values, dtype=object)


def _names(columns: tuple[schema.Column, ...]) -> list[str]:
    return [column.name for column in columns]


def _names_of(table: Table) -> list[str]:
    return [column.name for column in table.columns]


def _table_like(name: str, source: Table) -> Table:
    """A Table object named `name` with the columns of `source` (to query a staged copy)."""
    return Table(name, MetaData(), *(Column(column.name, column.type) for column in source.columns))


class _Staged:
    """The store, seen from inside a closing transaction (rollups read the staged tables)."""

    def __init__(self, store: EmbeddedStore, cursor: duckdb.DuckDBPyConnection) -> None:
        self.engine = store.engine
        self.dialect = store.dialect
        self.encoding = store.encoding
        self._cursor = cursor

    def fetch(self, statement: Any) -> list[tuple[Any, ...]]:
        """Run a SELECT in the closing transaction."""
        sql, params = compile_for(statement, self.dialect)
        return self._cursor.execute(sql, params).fetchall()
