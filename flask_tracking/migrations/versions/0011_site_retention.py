"""site retention

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 03:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    # NULL: the server's default (RETENTION_DAYS), which keeps everything unless set; so every
    # existing site keeps all of its events, as before.
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retention_days', sa.Integer(), nullable=True))


def downgrade():
    # In place, not in batch mode: on SQLite a batch copy of `sites` would drop the old table,
    # and with foreign keys on that cascades to the sites' goals, funnels and shared links.
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE sites DROP COLUMN retention_days')
    else:
        op.drop_column('sites', 'retention_days')
