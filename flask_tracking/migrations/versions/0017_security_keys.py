"""security keys

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 10:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'security_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=60), nullable=False),
        sa.Column('credential_id', sa.String(length=1400), nullable=False),
        sa.Column('public_key', sa.LargeBinary(), nullable=False),
        sa.Column('sign_count', sa.BigInteger(), nullable=False),
        sa.Column('transports', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('credential_id'),
    )
    with op.batch_alter_table('security_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_security_keys_user_id'), ['user_id'], unique=False)
    # A plain ADD COLUMN (nullable): SQLite's batch mode would copy the users table, and the
    # copy's drop would cascade to every table that references users.
    op.add_column('users', sa.Column('key_challenge', sa.String(length=80), nullable=True))


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE users DROP COLUMN key_challenge')
    else:
        op.drop_column('users', 'key_challenge')
    with op.batch_alter_table('security_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_security_keys_user_id'))
    op.drop_table('security_keys')
