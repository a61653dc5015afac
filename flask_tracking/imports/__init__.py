"""Importing history from other tools: one framework, each source a small module.

A source reads a file and yields `Imported` rows (a page view or event of one visitor at one
moment), or raises `Refused` naming the line and the reason. `run()` reads the whole file
first — so a malformed file is refused before anything is written — then enriches the rows
as the writer enriches collected events (pages, sources, UTM, browsers, devices; locations
from the address when the source has one, or as the source gives them) and loads them into
the event store as one unit: staged under a key and committed in one transaction
(`stage` / `commit_load`, what `events migrate` uses), so an import is all or nothing, and the
same file imported twice is refused the second time. The store then derives visits, markers
and rollups as for collected events.

Row-level sources (this package): GoatCounter's CSV export, web-server access logs (combined
and common formats, nginx and Caddy JSON).
"""

from __future__ import annotations

from flask_tracking.imports.base import Imported, Refused, Summary, run
from flask_tracking.imports.sources import SOURCES

__all__ = ["SOURCES", "Imported", "Refused", "Summary", "run"]
