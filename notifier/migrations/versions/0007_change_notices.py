"""PostgreSQL triggers that notify the live stream of changes (ids only, on commit); the
alert list's order as one index

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from notifier.live.changes import POSTGRES_DROP_TRIGGERS, POSTGRES_TRIGGERS

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        'ix_platform_alerts_list_order',
        'platform_alerts',
        ['is_resolved', sa.text('last_occurred_at DESC'), sa.text('id DESC')],
    )
    if op.get_bind().dialect.name != 'postgresql':
        return  # SQLite: one watcher per web process reads the change feed instead
    for statement in POSTGRES_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    op.drop_index('ix_platform_alerts_list_order', table_name='platform_alerts')
    if op.get_bind().dialect.name != 'postgresql':
        return
    for statement in POSTGRES_DROP_TRIGGERS:
        op.execute(statement)
