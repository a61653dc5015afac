"""events move to the event store

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 16:00:00.000000

The first version kept events in this database (visits, sessions, rollups). They move to the
event store (flask_tracking/events): the old rows are copied there first — the same code as
`flask-tracking events migrate`, verified per site — and only then are the old tables dropped.
The store derives sessions, visitor-days and rollups for the copied days before this ends.
"""
import time

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

OLD = ('rollup_dirty', 'rollup_states', 'rollup_months', 'rollup_days', 'rollup_hours',
       'spool_checkpoints', 'dropped_events', 'sessions', 'visits')


def upgrade():
    from flask import current_app

    from flask_tracking.events import owned_store
    from flask_tracking.events.migrate import migrate
    from flask_tracking.reports import rollups

    connection = op.get_bind()
    existing = set(sa.inspect(connection).get_table_names())
    holding = [
        name for name in ('visits', 'dropped_events', 'spool_checkpoints')
        if name in existing
        and connection.execute(sa.text(f'SELECT 1 FROM {name} LIMIT 1')).first() is not None
    ]
    if holding:  # a new database has nothing to move, and needs no store to upgrade
        store = owned_store(current_app)
        result = migrate(connection, store, progress=print)
        if result.events:
            print(f"Moved {result.events} events of {result.sites} site(s) into the event store.")
        store.derive(int(time.time() * 1000), rollups.build)
        compact = getattr(store, 'compact', None)
        if compact is not None:  # the bulk move leaves free blocks behind
            compact()
    for name in OLD:
        if name in existing:
            op.drop_table(name)


def downgrade():
    raise RuntimeError(
        "The events moved to the event store; this database cannot hold them again. "
        "Restore a backup taken before the upgrade to go back."
    )
