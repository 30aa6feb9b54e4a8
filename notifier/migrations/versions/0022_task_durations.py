"""Job health: observed durations per task, shared by the workers for the p99 run limit

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import notifier.types

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notifier_task_durations',
    sa.Column('task_name', sa.String(length=200), nullable=False),
    sa.Column('durations', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('p99_seconds', sa.Float(), nullable=True),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.Column('updated_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('task_name', name=op.f('pk_notifier_task_durations'))
    )


def downgrade() -> None:
    op.drop_table('notifier_task_durations')
