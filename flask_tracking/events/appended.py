"""Marking what was appended to the open days, without marking its visitors' rows again.

`derive.marked` computes a visitor's sessions, ids and markers from all of the visitor's rows;
a refresh that ran it for every visitor with new events re-marked the whole day of the
returning ones. On real traffic the most frequent visitors return at every refresh (shared
addresses, busy people), so the cost of a refresh followed the size of the day, not what had
arrived. Here the new rows (`fresh`) are marked against what the open days already hold,
and the old rows are only updated where a marker changes:

- A visitor's sessions are ordered in time and only the last one (`S`) can still grow: its
  rows and everything before it keep their sessions as long as no new row comes before S's
  start. Visitors with such a row (a late event) are handed back to the caller to be marked
  whole (`slow`); they are rare.
- A new row at or before S's end joins S (inserting a row cannot split a session); after it,
  rows start a new session wherever the gap to the previous row (a new one, or S's end)
  exceeds 30 minutes, numbered on from S's.
- S's own row is updated (end, counts, exit page); its old events take the new exit page.
- `vm` turns true on the old rows of a visitor-day that now holds a second session.
- `p1` / `n1`: a new row is the first pageview of its page (custom event of its name) in its
  visitor-day unless an old row came before it; an old first that a new row precedes (a row
  that arrived late, within S) loses its marker.

Every definition is derive.py's; tests/ingest/test_writer.py checks, batch after batch, that
this gives exactly the rows a rebuild gives. DuckDB only (the engine that keeps open days
apart); the statements read the temporary table `fresh` (the new rows with their visitor's
`person` number) and `lasts` (each of those visitors' last marked session).
"""

from __future__ import annotations

from collections.abc import Callable

from flask_tracking.events import derive, schema

GAP = derive.GAP_MS
SPV = derive.SESSIONS_PER_VISITOR
CONTEXT = schema.CONTEXT_NAMES
SESSION_COLUMNS = [column.name for column in schema.SESSIONS]
EVENT_COLUMNS = [column.name for column in schema.EVENTS]
EVENT_COPIES = [column.name for column in schema.EVENT_COPIES]

# The new rows (`fresh_rows`: `recent` rows with their UTC day) with their visitor's number.
FRESH = f"""
CREATE OR REPLACE TEMP TABLE fresh AS
SELECT f.*, f.utc_day * {derive.VISITORS_PER_DAY} + n.vnum AS person
FROM fresh_rows f JOIN recent_numbers n
  ON n.site_id = f.site_id AND n.utc_day = f.utc_day AND n.visitor = f.visitor
"""
# The last marked session of each visitor with new rows.
LASTS = f"""
CREATE OR REPLACE TEMP TABLE lasts AS
SELECT s.*, s.sid // {SPV} AS person, s.ts + s.ms AS stop
FROM recent_sessions s
JOIN (SELECT DISTINCT site_id, person FROM fresh) p
  ON p.site_id = s.site_id AND p.person = s.sid // {SPV}
QUALIFY row_number() OVER (PARTITION BY s.site_id, s.sid // {SPV} ORDER BY s.sid DESC) = 1
"""
# Visitors with a new row before the start of their last session: marked whole instead.
SLOW = """
CREATE OR REPLACE TEMP TABLE slow AS
SELECT f.site_id, f.utc_day, f.visitor, f.person
FROM fresh f JOIN lasts l ON l.site_id = f.site_id AND l.person = f.person
GROUP BY ALL
HAVING min(f.ts) < min(l.ts)
"""
# The new rows of the others, with their session and visitor-day.
ROWS = f"""
CREATE OR REPLACE TEMP TABLE fr AS
WITH x AS (
  SELECT f.*, coalesce(l.sid % {SPV}, -1) AS base_sn, l.stop AS base_stop,
         lag(f.ts) OVER (PARTITION BY f.site_id, f.person ORDER BY f.ts, f.eid) AS prev_ts
  FROM fresh f
  LEFT JOIN lasts l ON l.site_id = f.site_id AND l.person = f.person
  ANTI JOIN slow w ON w.site_id = f.site_id AND w.person = f.person
), y AS (
  SELECT *, CASE
    WHEN base_stop IS NOT NULL AND ts <= base_stop THEN 0
    WHEN prev_ts IS NULL AND base_stop IS NULL THEN 1
    WHEN ts - greatest(coalesce(prev_ts, base_stop), coalesce(base_stop, prev_ts)) > {GAP}
      THEN 1
    ELSE 0 END AS new
  FROM x
)
SELECT * EXCLUDE (base_sn, base_stop, prev_ts, new),
  person * {SPV} + base_sn + sum(new) OVER (
    PARTITION BY site_id, person ORDER BY ts, eid
    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS sid,
  person * 4 + (day - utc_day + 1) AS vd
FROM y
"""
# Per visitor-day with new rows: whether it now holds more than one session, and held one.
MULTI = """
CREATE OR REPLACE TEMP TABLE vms AS
WITH n AS (SELECT site_id, vd, min(sid) AS lo, max(sid) AS hi FROM fr GROUP BY ALL),
o AS (
  SELECT e.site_id, e.vd, min(e.sid) AS lo, max(e.sid) AS hi
  FROM recent_events e JOIN n ON n.site_id = e.site_id AND n.vd = e.vd
  GROUP BY ALL
)
SELECT n.site_id, n.vd,
  least(n.lo, coalesce(o.lo, n.lo)) != greatest(n.hi, coalesce(o.hi, n.hi)) AS vm,
  coalesce(o.lo != o.hi, true) AS was
FROM n LEFT JOIN o ON o.site_id = n.site_id AND o.vd = n.vd
"""


def _firsts(kind: str, key: str, condition: str) -> str:
    """The first new row per visitor-day and page (or name), and the old row marked first."""
    return f"""
CREATE OR REPLACE TEMP TABLE {kind}s AS
WITH n AS (
  SELECT site_id, vd, {key}, arg_min(eid, (ts, eid)) AS eid, min(ts) AS ts
  FROM fr WHERE {condition} GROUP BY ALL
), o AS (
  SELECT e.site_id, e.vd, e.{key}, e.eid, e.ts
  FROM recent_events e JOIN n ON n.site_id = e.site_id AND n.vd = e.vd AND n.{key} = e.{key}
  WHERE e.{kind} AND {condition.replace("pv", "e.pv")}
)
SELECT n.site_id, n.vd, n.{key}, n.eid AS new_eid, o.eid AS old_eid,
  (o.eid IS NULL OR n.ts < o.ts) AS new_first
FROM n LEFT JOIN o ON o.site_id = n.site_id AND o.vd = n.vd AND o.{key} = n.{key}
"""


FIRST_PAGES = _firsts("p1", "page", "pv")
FIRST_NAMES = _firsts("n1", "name", "NOT pv")

_first = ", ".join(
    f"o.{name}" for name in ("day", "vd", "ref AS referrer", *CONTEXT, "page AS entry")
)
# The sessions the new rows belong to, from the new rows alone: their first row's context
# (one sort, rather than an arg_min per column) and their counts.
PARTS = f"""
CREATE OR REPLACE TEMP TABLE fs AS
WITH firsts AS (
  SELECT DISTINCT ON (site_id, sid) * FROM fr ORDER BY site_id, sid, ts, eid
), counts AS (
  SELECT site_id, sid, min(ts) AS start, max(ts) AS stop,
    count(*) FILTER (WHERE pv) AS pageviews, count(*) AS events,
    arg_max(page, (ts, eid)) FILTER (WHERE pv) AS last_page,
    max(ts) FILTER (WHERE pv) AS last_page_ts
  FROM fr GROUP BY site_id, sid
)
SELECT c.*, {_first}
FROM counts c JOIN firsts o ON o.site_id = c.site_id AND o.sid = c.sid
"""


def _kept(name: str) -> str:
    return f"CASE WHEN l.sid IS NULL THEN f.{name} ELSE l.{name} END AS {name}"


# The rows of those sessions as they are now: new ones, and S grown by its new rows.
_exit = """CASE
    WHEN f.last_page_ts IS NOT NULL AND (l.sid IS NULL OR lp.ts IS NULL OR f.last_page_ts >= lp.ts)
      THEN f.last_page
    WHEN l.sid IS NULL THEN f.entry
    ELSE l.exit END"""
SESSIONS = f"""
CREATE OR REPLACE TEMP TABLE ns AS
WITH lp AS (
  SELECT e.site_id, e.sid, max(e.ts) AS ts
  FROM recent_events e JOIN lasts l ON l.site_id = e.site_id AND l.sid = e.sid
  WHERE e.pv GROUP BY ALL
), merged AS (
  SELECT f.site_id, f.sid,
    coalesce(l.ts, f.start) AS ts,
    greatest(coalesce(l.stop, f.stop), f.stop) AS stop,
    {_kept("day")}, {_kept("vd")},
    coalesce(l.pageviews, 0) + f.pageviews AS pageviews,
    coalesce(l.events, 0) + f.events AS events,
    {", ".join(_kept(name) for name in ("referrer", *CONTEXT, "entry"))},
    {_exit} AS exit,
    l.sid IS NOT NULL AS grown, l.v1 AS old_v1, l.vm AS old_vm
  FROM fs f
  LEFT JOIN lasts l ON l.site_id = f.site_id AND l.sid = f.sid
  LEFT JOIN lp ON lp.site_id = f.site_id AND lp.sid = f.sid
), before AS (
  SELECT DISTINCT s.site_id, s.vd
  FROM recent_sessions s JOIN merged m ON m.site_id = s.site_id AND m.vd = s.vd
)
SELECT m.site_id, m.ts, m.day, m.sid, m.vd,
  coalesce(v.vm, m.old_vm) AS vm,
  CASE WHEN m.grown THEN m.old_v1 ELSE b.vd IS NULL AND row_number() OVER (
    PARTITION BY m.site_id, m.vd ORDER BY m.ts, m.sid) = 1 END AS v1,
  m.pageviews <= 1 AS bounce, m.stop - m.ts AS ms, m.pageviews, m.events,
  {", ".join(f"m.{name}" for name in ("referrer", *CONTEXT, "entry", "exit"))},
  m.grown
FROM merged m
LEFT JOIN vms v ON v.site_id = m.site_id AND v.vd = m.vd
LEFT JOIN before b ON b.site_id = m.site_id AND b.vd = m.vd
"""

UPDATES = (
    # S's old events take its new exit page.
    """UPDATE recent_events SET exit = ns.exit FROM ns
    WHERE ns.grown AND recent_events.site_id = ns.site_id
      AND recent_events.sid = ns.sid AND recent_events.exit != ns.exit""",
    # A visitor-day that now holds a second session.
    """UPDATE recent_events SET vm = true FROM vms
    WHERE vms.vm AND NOT vms.was AND recent_events.site_id = vms.site_id
      AND recent_events.vd = vms.vd AND NOT recent_events.vm""",
    """UPDATE recent_sessions SET vm = true FROM vms
    WHERE vms.vm AND NOT vms.was AND recent_sessions.site_id = vms.site_id
      AND recent_sessions.vd = vms.vd AND NOT recent_sessions.vm""",
    # Old firsts that a new row now precedes.
    """UPDATE recent_events SET p1 = false FROM p1s
    WHERE p1s.new_first AND p1s.old_eid IS NOT NULL
      AND recent_events.site_id = p1s.site_id AND recent_events.eid = p1s.old_eid""",
    """UPDATE recent_events SET n1 = false FROM n1s
    WHERE n1s.new_first AND n1s.old_eid IS NOT NULL
      AND recent_events.site_id = n1s.site_id AND recent_events.eid = n1s.old_eid""",
    # S's row is replaced by its grown one.
    """DELETE FROM recent_sessions USING ns
    WHERE ns.grown AND recent_sessions.site_id = ns.site_id AND recent_sessions.sid = ns.sid""",
    f"""INSERT INTO recent_sessions ({", ".join(SESSION_COLUMNS)})
    SELECT {", ".join(SESSION_COLUMNS)} FROM ns""",
)

_event_values = {
    **{name: f"f.{name}" for name in EVENT_COLUMNS},
    "vm": "v.vm",
    "p1": "coalesce(p.new_first AND p.new_eid = f.eid, false)",
    "n1": "coalesce(q.new_first AND q.new_eid = f.eid, false)",
    **{name: f"s.{name}" for name in EVENT_COPIES},
}
EVENTS = f"""
INSERT INTO recent_events ({", ".join(EVENT_COLUMNS)})
SELECT {", ".join(_event_values[name] for name in EVENT_COLUMNS)}
FROM fr f
JOIN vms v ON v.site_id = f.site_id AND v.vd = f.vd
JOIN ns s ON s.site_id = f.site_id AND s.sid = f.sid
LEFT JOIN p1s p ON f.pv AND p.site_id = f.site_id AND p.vd = f.vd AND p.page = f.page
LEFT JOIN n1s q ON NOT f.pv AND q.site_id = f.site_id AND q.vd = f.vd AND q.name = f.name
"""


def mark_appended(execute: Callable[[str], object]) -> None:
    """Mark the rows of `fresh` whose visitors are not in `slow` (see the module's doc);
    LASTS and SLOW must have run first."""
    for statement in (ROWS, MULTI, FIRST_PAGES, FIRST_NAMES, PARTS, SESSIONS, *UPDATES, EVENTS):
        execute(statement)
