"""imports: every import of a site, and the daily aggregates of aggregate sources

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 18:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'imports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=40), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('first_day', sa.Date(), nullable=True),
        sa.Column('last_day', sa.Date(), nullable=True),
        sa.Column('skipped_json', sa.Text(), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('first_eid', sa.BigInteger(), nullable=True),
        sa.Column('last_eid', sa.BigInteger(), nullable=True),
        sa.Column('path', sa.String(length=1024), nullable=False),
        sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_imports_site_id', 'imports', ['site_id'])
    op.create_table(
        'imported_days',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('import_id', sa.Integer(), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('dimension', sa.Integer(), nullable=False),
        sa.Column('value', sa.String(length=2048), nullable=False),
        sa.Column('visitors', sa.Integer(), nullable=False),
        sa.Column('visits', sa.Integer(), nullable=False),
        sa.Column('pageviews', sa.Integer(), nullable=False),
        sa.Column('events', sa.Integer(), nullable=False),
        sa.Column('bounces', sa.Integer(), nullable=False),
        sa.Column('duration', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['import_id'], ['imports.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_imported_days_import_id', 'imported_days', ['import_id'])
    op.create_index('ix_imported_days_site_day', 'imported_days', ['site_id', 'day'])


def downgrade():
    op.drop_index('ix_imported_days_site_day', table_name='imported_days')
    op.drop_index('ix_imported_days_import_id', table_name='imported_days')
    op.drop_table('imported_days')
    op.drop_index('ix_imports_site_id', table_name='imports')
    op.drop_table('imports')
