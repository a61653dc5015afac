"""The DuckDB dialect of events/sql.py: SQLAlchemy's PostgreSQL compiler named "duckdb", which
quotes DuckDB's reserved words and loads nothing of DuckDB."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
from sqlalchemy import Column, Integer, MetaData, Table, select

from flask_tracking.events.sql import DuckDBDialect, DuckDBIdentifierPreparer, compile_for, intdiv


def test_every_reserved_word_of_the_installed_duckdb_is_quoted() -> None:
    reserved = {
        word
        for (word,) in duckdb.sql(
            "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'"
        ).fetchall()
    }
    assert len(reserved) > 50
    assert reserved <= DuckDBIdentifierPreparer.reserved_words


def test_a_column_named_like_a_duckdb_keyword_runs() -> None:
    # "pivot" and "qualify" are reserved in DuckDB, not in PostgreSQL: unquoted, DuckDB
    # refuses the statement.
    table = Table("t", MetaData(), Column("pivot", Integer), Column("qualify", Integer))
    sql, params = compile_for(
        select(table.c.pivot, intdiv(table.c.qualify, 2)).where(table.c.pivot > 1),
        DuckDBDialect(),
    )
    assert '"pivot"' in sql and '"qualify"' in sql
    assert params == [1]
    con = duckdb.connect()
    con.execute('CREATE TABLE t ("pivot" INTEGER, "qualify" INTEGER)')
    con.execute("INSERT INTO t VALUES (1, 7), (2, 7), (3, 9)")
    assert sorted(con.execute(sql, params).fetchall()) == [(2, 3), (3, 4)]


def test_the_web_app_does_not_load_duckdb(tmp_path: Path) -> None:
    # What a Granian worker imports (flask_tracking.wsgi builds the app), and a dashboard's
    # statement compiled there, as RemoteStore compiles it before sending it to the owner.
    code = (
        "import sys\n"
        "from flask_tracking import create_app\n"
        "from flask_tracking.events.sql import DuckDBDialect, compile_for\n"
        "from flask_tracking.events.tables import tables\n"
        "from sqlalchemy import func, select\n"
        "app = create_app()\n"
        "s = tables('duckdb').all_sessions\n"
        "compile_for(select(s.c.country, func.count()).group_by(s.c.country), DuckDBDialect())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('duckdb', '_duckdb', "
        "'duckdb_engine', 'stripe')))\n"
    )
    env = {**os.environ, "FLASK_TRACKING_CONFIG": "testing", "DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
