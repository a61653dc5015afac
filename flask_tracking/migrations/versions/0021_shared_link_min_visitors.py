"""k-anonymity on shared links: the smallest group of visitors a link shows

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 15:05:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    # Existing links get the default, 5: from this version on no shared dashboard singles out
    # fewer than 5 visitors unless its owner lowers it (plain ALTER TABLE: no batch copy).
    op.add_column(
        'shared_links',
        sa.Column('min_visitors', sa.Integer(), server_default='5', nullable=False),
    )


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE shared_links DROP COLUMN min_visitors')
    else:
        op.drop_column('shared_links', 'min_visitors')
