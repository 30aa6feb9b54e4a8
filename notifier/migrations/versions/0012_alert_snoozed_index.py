"""The alert list counts its snoozed alerts from a small partial index

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        'ix_platform_alerts_snoozed',
        'platform_alerts',
        ['snoozed_until', 'is_resolved'],
        postgresql_where=sa.text('snoozed_until IS NOT NULL'),
        sqlite_where=sa.text('snoozed_until IS NOT NULL'),
    )


def downgrade() -> None:
    op.drop_index('ix_platform_alerts_snoozed', table_name='platform_alerts')
