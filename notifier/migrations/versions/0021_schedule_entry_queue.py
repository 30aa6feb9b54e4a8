"""The queue a beat entry is sent to (its missed runs are symptoms of that queue)

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain nullable column: SQLite adds it in place (no table copy).
    op.add_column('notifier_schedule_entries', sa.Column('queue', sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('notifier_schedule_entries') as batch_op:
        batch_op.drop_column('queue')
