"""oidc identities

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 10:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'oidc_identities',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('issuer', sa.String(length=255), nullable=False),
        sa.Column('subject', sa.String(length=255), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('issuer', 'subject'),
    )
    with op.batch_alter_table('oidc_identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oidc_identities_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('oidc_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oidc_identities_user_id'))
    op.drop_table('oidc_identities')
