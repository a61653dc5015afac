"""experiments

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 20:00:00.000000

A site's A/B experiments: variants with weights, the goals they are judged on (the primary
first), a window and a status. Their exposures are ordinary events in the event store.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('experiments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('variants', sa.JSON(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('site_id', 'key', name='uq_experiments_site_id_key')
    )
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_experiments_site_id'), ['site_id'], unique=False)
    op.create_table('experiment_goals',
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('goal_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['goal_id'], ['goals.id'], deferrable=True, initially='DEFERRED'),
    sa.PrimaryKeyConstraint('experiment_id', 'position')
    )
    with op.batch_alter_table('experiment_goals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_experiment_goals_goal_id'), ['goal_id'], unique=False)


def downgrade():
    with op.batch_alter_table('experiment_goals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_experiment_goals_goal_id'))
    op.drop_table('experiment_goals')
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_experiments_site_id'))
    op.drop_table('experiments')
