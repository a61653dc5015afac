"""report schedules, and extra headers on outgoing mail

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 11:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'report_schedules',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('frequency', sa.String(length=10), nullable=False),
        sa.Column('weekday', sa.Integer(), nullable=False),
        sa.Column('hour', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('site_id', 'email', 'frequency'),
        sa.UniqueConstraint('token_hash'),
    )
    with op.batch_alter_table('report_schedules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_schedules_site_id'), ['site_id'], unique=False)
    op.create_table(
        'report_sent',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('schedule_id', sa.Integer(), nullable=False),
        sa.Column('first_day', sa.Date(), nullable=False),
        sa.Column('last_day', sa.Date(), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['schedule_id'], ['report_schedules.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('schedule_id', 'first_day'),
    )
    with op.batch_alter_table('report_sent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_sent_schedule_id'), ['schedule_id'], unique=False)
    # Messages queued before this version have no extra headers.
    op.add_column(
        'mail_outbox', sa.Column('headers', sa.Text(), server_default='', nullable=False)
    )


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE mail_outbox DROP COLUMN headers')
    else:
        op.drop_column('mail_outbox', 'headers')
    with op.batch_alter_table('report_sent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_sent_schedule_id'))
    op.drop_table('report_sent')
    with op.batch_alter_table('report_schedules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_schedules_site_id'))
    op.drop_table('report_schedules')
