"""Job health: worker heartbeats (queues consumed, runs past their limit) and queue states

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import notifier.types

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('notifier_worker_heartbeats',
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('queues', _json(), nullable=False),
    sa.Column('overdue_runs', _json(), nullable=False),
    sa.Column('seen_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('hostname', name=op.f('pk_notifier_worker_heartbeats'))
    )
    op.create_table('notifier_queue_states',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.Column('consumers', sa.Integer(), nullable=False),
    sa.Column('head', sa.String(length=64), nullable=True),
    sa.Column('head_since', notifier.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('checked_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_notifier_queue_states'))
    )


def downgrade() -> None:
    op.drop_table('notifier_queue_states')
    op.drop_table('notifier_worker_heartbeats')
