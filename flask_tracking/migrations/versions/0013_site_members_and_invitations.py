"""site members and invitations

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 07:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    # Every existing site keeps its one owner (sites.owner_id); members are added from here on.
    op.create_table(
        'site_members',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('site_id', 'user_id'),
    )
    with op.batch_alter_table('site_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_site_members_site_id'), ['site_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_site_members_user_id'), ['user_id'], unique=False)
    op.create_table(
        'site_invitations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('invited_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['invited_by_id'], ['users.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    with op.batch_alter_table('site_invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_site_invitations_site_id'), ['site_id'], unique=False)


def downgrade():
    with op.batch_alter_table('site_invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_site_invitations_site_id'))
    op.drop_table('site_invitations')
    with op.batch_alter_table('site_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_site_members_user_id'))
        batch_op.drop_index(batch_op.f('ix_site_members_site_id'))
    op.drop_table('site_members')
