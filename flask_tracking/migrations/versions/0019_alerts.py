"""alerts: channels, rules (with their debounce state) and deliveries

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 14:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'alert_channels',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('target', sa.String(length=2000), nullable=False),
        sa.Column('secret', sa.String(length=80), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_alert_channels_site_id', 'alert_channels', ['site_id'])
    op.create_table(
        'alert_rules',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('threshold', sa.Float(), nullable=False),
        sa.Column('hours', sa.Integer(), nullable=False),
        sa.Column('subject', sa.String(length=120), nullable=False),
        sa.Column('below', sa.Boolean(), nullable=False),
        sa.Column('consecutive', sa.Integer(), nullable=False),
        sa.Column('quiet_minutes', sa.Integer(), nullable=False),
        sa.Column('streak', sa.Integer(), nullable=False),
        sa.Column('firing', sa.Boolean(), nullable=False),
        sa.Column('fired_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_value', sa.Float(), nullable=True),
        sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_alert_rules_site_id', 'alert_rules', ['site_id'])
    op.create_table(
        'alert_rule_channels',
        sa.Column('rule_id', sa.Integer(), nullable=False),
        sa.Column('channel_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['rule_id'], ['alert_rules.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['channel_id'], ['alert_channels.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('rule_id', 'channel_id'),
    )
    op.create_table(
        'alert_deliveries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('channel_id', sa.Integer(), nullable=False),
        sa.Column('rule_id', sa.Integer(), nullable=True),
        sa.Column('event', sa.String(length=10), nullable=False),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.String(length=500), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['channel_id'], ['alert_channels.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['rule_id'], ['alert_rules.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_alert_deliveries_site_id', 'alert_deliveries', ['site_id'])
    op.create_index('ix_alert_deliveries_channel_id', 'alert_deliveries', ['channel_id'])
    op.create_index(
        'ix_alert_deliveries_next_attempt_at', 'alert_deliveries', ['next_attempt_at']
    )


def downgrade():
    op.drop_table('alert_deliveries')
    op.drop_table('alert_rule_channels')
    op.drop_table('alert_rules')
    op.drop_table('alert_channels')
