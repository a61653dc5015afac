"""billing: subscriptions, provider events handled, payments; users.is_admin

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 21:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    # In place (ALTER TABLE ... ADD COLUMN), not a batch copy of `users`: on SQLite that
    # would cascade to every site.
    op.add_column(
        'users', sa.Column('is_admin', sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_table(
        'subscriptions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('plan', sa.String(length=40), nullable=False),
        sa.Column('plan_version', sa.Integer(), nullable=False),
        sa.Column('terms_json', sa.Text(), nullable=False),
        sa.Column('price', sa.String(length=20), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('provider', sa.String(length=16), nullable=False),
        sa.Column('customer_id', sa.String(length=255), nullable=False),
        sa.Column('subscription_id', sa.String(length=255), nullable=False),
        sa.Column('trial_ends_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('current_period_end', sa.DateTime(timezone=True), nullable=True),
        sa.Column('state_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('locked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('quota_state', sa.String(length=8), nullable=False),
        sa.Column('quota_used', sa.BigInteger(), nullable=False),
        sa.Column('quota_checked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_subscriptions_user_id', 'subscriptions', ['user_id'], unique=True)
    op.create_index('ix_subscriptions_customer_id', 'subscriptions', ['customer_id'])
    op.create_index('ix_subscriptions_subscription_id', 'subscriptions', ['subscription_id'])
    op.create_table(
        'billing_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('provider', sa.String(length=16), nullable=False),
        sa.Column('event_id', sa.String(length=255), nullable=False),
        sa.Column('kind', sa.String(length=60), nullable=False),
        sa.Column('subject', sa.String(length=255), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('outcome', sa.String(length=200), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('provider', 'event_id'),
    )
    op.create_table(
        'payments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('provider', sa.String(length=16), nullable=False),
        sa.Column('invoice_id', sa.String(length=255), nullable=False),
        sa.Column('number', sa.String(length=80), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('url', sa.String(length=2048), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('provider', 'invoice_id'),
    )
    op.create_index('ix_payments_user_id', 'payments', ['user_id'])


def downgrade():
    op.drop_index('ix_payments_user_id', table_name='payments')
    op.drop_table('payments')
    op.drop_table('billing_events')
    op.drop_index('ix_subscriptions_subscription_id', table_name='subscriptions')
    op.drop_index('ix_subscriptions_customer_id', table_name='subscriptions')
    op.drop_index('ix_subscriptions_user_id', table_name='subscriptions')
    op.drop_table('subscriptions')
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE users DROP COLUMN is_admin')
    else:
        op.drop_column('users', 'is_admin')
