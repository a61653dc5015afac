"""a site's Umami website id, for events from Umami's trackers

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 14:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ALTER TABLE and an index: a batch copy of `sites` on SQLite would drop the old
    # table, and with it (ON DELETE CASCADE) every site's goals, members and keys.
    op.add_column('sites', sa.Column('umami_id', sa.String(length=36), nullable=True))
    op.create_index('ix_sites_umami_id', 'sites', ['umami_id'], unique=True)


def downgrade():
    op.drop_index('ix_sites_umami_id', table_name='sites')
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE sites DROP COLUMN umami_id')
    else:
        op.drop_column('sites', 'umami_id')
