"""funnels

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 15:00:00.000000

A site's funnels: ordered lists of its goals. Like goals, definitions applied to the events
at query time; a goal a funnel uses cannot be deleted on its own (the check is deferred to
the commit, so deleting the site, which cascades to goals and to funnel steps, still works).
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('funnels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('across_visits', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('site_id', 'name', name='uq_funnels_site_id_name')
    )
    with op.batch_alter_table('funnels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_funnels_site_id'), ['site_id'], unique=False)
    op.create_table('funnel_steps',
    sa.Column('funnel_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('goal_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['funnel_id'], ['funnels.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['goal_id'], ['goals.id'], deferrable=True, initially='DEFERRED'),
    sa.PrimaryKeyConstraint('funnel_id', 'position')
    )
    with op.batch_alter_table('funnel_steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_funnel_steps_goal_id'), ['goal_id'], unique=False)


def downgrade():
    with op.batch_alter_table('funnel_steps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_funnel_steps_goal_id'))
    op.drop_table('funnel_steps')
    with op.batch_alter_table('funnels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_funnels_site_id'))
    op.drop_table('funnels')
