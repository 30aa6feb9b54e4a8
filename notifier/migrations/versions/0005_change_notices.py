"""PostgreSQL triggers that notify the live stream of changes (ids only, on commit)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

from notifier.changes import POSTGRES_DROP_TRIGGERS, POSTGRES_TRIGGERS

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return  # SQLite: one watcher per web process reads the change feed instead
    for statement in POSTGRES_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for statement in POSTGRES_DROP_TRIGGERS:
        op.execute(statement)
