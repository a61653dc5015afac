"""goals

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 14:00:00.000000

A site's goals (pageview and custom-event conversions, with optional revenue). They are
definitions applied to the events at query time, so nothing else changes: a goal added
after this upgrade counts the conversions already stored.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('goals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('path', sa.String(length=2048), nullable=False),
    sa.Column('event', sa.String(length=120), nullable=False),
    sa.Column('prop_key', sa.String(length=300), nullable=False),
    sa.Column('prop_value', sa.String(length=300), nullable=False),
    sa.Column('revenue_prop', sa.String(length=300), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('site_id', 'name', name='uq_goals_site_id_name')
    )
    with op.batch_alter_table('goals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_goals_site_id'), ['site_id'], unique=False)


def downgrade():
    with op.batch_alter_table('goals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_goals_site_id'))
    op.drop_table('goals')
