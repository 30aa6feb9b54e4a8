"""job health: the beat entries with their last runs, heartbeats, watcher leases

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import notifier.types

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notifier_schedule_entries',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('task', sa.String(length=200), nullable=False),
    sa.Column('schedule_text', sa.String(length=200), nullable=False),
    sa.Column('period_seconds', sa.Float(), nullable=False),
    sa.Column('grace_seconds', sa.Float(), nullable=False),
    sa.Column('next_due_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_started_at', notifier.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_finished_at', notifier.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', notifier.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_task_id', sa.String(length=64), nullable=True),
    sa.Column('last_state', sa.String(length=16), nullable=True),
    sa.Column('missed_due_at', notifier.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('synced_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_notifier_schedule_entries'))
    )
    op.create_table('notifier_health_heartbeats',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('seen_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('stale_after_seconds', sa.Float(), nullable=False),
    sa.Column('detail', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_notifier_health_heartbeats'))
    )
    op.create_table('notifier_health_leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('expires_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_notifier_health_leases'))
    )


def downgrade() -> None:
    op.drop_table('notifier_health_leases')
    op.drop_table('notifier_health_heartbeats')
    op.drop_table('notifier_schedule_entries')
