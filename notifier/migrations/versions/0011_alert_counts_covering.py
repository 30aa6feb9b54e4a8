"""The alert statistics' one pass reads only an index again: ix_platform_alerts_counts
carries snoozed_until and acknowledged_at (INCLUDE, on PostgreSQL)

Revision ID: 0011
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None

_COLUMNS = ['is_resolved', 'severity', 'alert_type']


def upgrade() -> None:
    # SQLite has no INCLUDE: there the index stays as it was (SQLAlchemy leaves it out).
    op.drop_index('ix_platform_alerts_counts', table_name='platform_alerts')
    op.create_index(
        'ix_platform_alerts_counts',
        'platform_alerts',
        _COLUMNS,
        postgresql_include=['snoozed_until', 'acknowledged_at'],
    )


def downgrade() -> None:
    op.drop_index('ix_platform_alerts_counts', table_name='platform_alerts')
    op.create_index('ix_platform_alerts_counts', 'platform_alerts', _COLUMNS)
