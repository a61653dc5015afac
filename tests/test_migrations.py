"""The migrations build exactly the schema the models describe (SQLite here, PostgreSQL in CI).

A model changed without a migration (or a hand-written migration that differs from its model,
like 0005_api_keys) would pass every other test on a database made from the models; this
compares the migrated database with the models, column types included.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask

from flask_tracking.extensions import db


def test_migrated_database_matches_the_models(app: Flask) -> None:
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []
