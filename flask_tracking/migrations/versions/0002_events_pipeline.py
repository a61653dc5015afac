"""events pipeline

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 12:53:37.196761

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('rejected_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rejected_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('salts',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('salt', sa.LargeBinary(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('day')
    )
    op.create_table('spool_checkpoints',
    sa.Column('segment', sa.String(length=255), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('segment')
    )
    op.create_table('dropped_events',
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('site_id', 'day', 'reason')
    )
    op.create_table('sessions',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('visitor_id', sa.BigInteger(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('entry_page', sa.String(length=2048), nullable=True),
    sa.Column('exit_page', sa.String(length=2048), nullable=True),
    sa.Column('pageviews', sa.Integer(), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('is_bounce', sa.Boolean(), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=True),
    sa.Column('referrer', sa.Text(), nullable=True),
    sa.Column('referrer_source', sa.String(length=255), nullable=True),
    sa.Column('utm_source', sa.String(length=256), nullable=True),
    sa.Column('utm_medium', sa.String(length=256), nullable=True),
    sa.Column('utm_campaign', sa.String(length=256), nullable=True),
    sa.Column('utm_term', sa.String(length=256), nullable=True),
    sa.Column('utm_content', sa.String(length=256), nullable=True),
    sa.Column('country_code', sa.String(length=2), nullable=True),
    sa.Column('region', sa.String(length=128), nullable=True),
    sa.Column('city', sa.String(length=128), nullable=True),
    sa.Column('browser', sa.String(length=64), nullable=True),
    sa.Column('os', sa.String(length=64), nullable=True),
    sa.Column('device', sa.String(length=16), nullable=True),
    sa.Column('screen_size', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index('ix_sessions_site_start', ['site_id', 'started_at'], unique=False)
        batch_op.create_index('ix_sessions_site_visitor_end', ['site_id', 'visitor_id', 'ended_at'], unique=False)

    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.add_column(sa.Column('excluded_ips', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('excluded_paths', sa.Text(), server_default='', nullable=False))

    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('hostname', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('pathname', sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column('os_version', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('referrer_source', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('utm_source', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('utm_medium', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('utm_campaign', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('utm_term', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('utm_content', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('screen_width', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('screen_size', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('visitor_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('session_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('props', sa.JSON(), nullable=True))
        batch_op.create_index('ux_visits_event_id', ['event_id'], unique=True)

    if op.get_bind().dialect.name == 'postgresql':
        # Tens of millions of events outgrow a 32-bit key; SQLite's rowid is 64-bit already.
        op.alter_column('visits', 'id', type_=sa.BigInteger())



def downgrade():
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.drop_index('ux_visits_event_id')
        batch_op.drop_column('props')
        batch_op.drop_column('session_id')
        batch_op.drop_column('visitor_id')
        batch_op.drop_column('screen_size')
        batch_op.drop_column('screen_width')
        batch_op.drop_column('utm_content')
        batch_op.drop_column('utm_term')
        batch_op.drop_column('utm_campaign')
        batch_op.drop_column('utm_medium')
        batch_op.drop_column('utm_source')
        batch_op.drop_column('referrer_source')
        batch_op.drop_column('os_version')
        batch_op.drop_column('pathname')
        batch_op.drop_column('hostname')
        batch_op.drop_column('event_id')

    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.drop_column('excluded_paths')
        batch_op.drop_column('excluded_ips')

    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_sessions_site_visitor_end')
        batch_op.drop_index('ix_sessions_site_start')

    op.drop_table('sessions')
    op.drop_table('dropped_events')
    op.drop_table('spool_checkpoints')
    op.drop_table('salts')
    op.drop_table('rejected_events')
