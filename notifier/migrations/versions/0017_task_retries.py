"""Retry a failed task from its alert: failed runs with encrypted arguments, and retries

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import notifier.types

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, notifier.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        'notifier_failed_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('failure_key', sa.String(length=255), nullable=False),
        sa.Column('task_id', sa.String(length=255), nullable=False),
        sa.Column('task_name', sa.String(length=200), nullable=False),
        sa.Column('exchange', sa.String(length=255), nullable=False),
        sa.Column('routing_key', sa.String(length=255), nullable=False),
        sa.Column('payload', sa.Text(), nullable=True),
        sa.Column('problem', sa.String(length=500), nullable=True),
        sa.Column('alert_id', sa.Integer(), nullable=True),
        sa.Column('storm_fingerprint', sa.String(length=255), nullable=True),
        _when('occurred_at', nullable=False),
        sa.Column('retry_task_id', sa.String(length=255), nullable=True),
        sa.Column('retry_status', sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(['alert_id'], ['notifier_platform_alerts.id'],
                                name='fk_notifier_failed_runs_alert', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_notifier_failed_runs'),
        sa.UniqueConstraint('failure_key', name='uq_notifier_failed_runs_failure_key'),
    )
    op.create_index('ix_notifier_failed_runs_alert', 'notifier_failed_runs',
                    ['alert_id', 'occurred_at'])
    op.create_index('ix_notifier_failed_runs_storm_fingerprint', 'notifier_failed_runs',
                    ['storm_fingerprint', 'occurred_at'])
    op.create_index('ix_notifier_failed_runs_occurred', 'notifier_failed_runs', ['occurred_at'])
    op.create_table(
        'notifier_task_retries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.String(length=255), nullable=False),
        sa.Column('failed_run_id', sa.Integer(), nullable=True),
        sa.Column('failed_task_id', sa.String(length=255), nullable=False),
        sa.Column('task_name', sa.String(length=200), nullable=False),
        sa.Column('requested_by_user_id', sa.Integer(), nullable=True),
        sa.Column('requested_by', sa.String(length=320), nullable=False),
        _when('requested_at', nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        _when('sent_at'),
        _when('finished_at'),
        sa.Column('detail', sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(['failed_run_id'], ['notifier_failed_runs.id'],
                                name='fk_notifier_task_retries_run',
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['requested_by_user_id'], ['notifier_admin_users.id'],
                                name='fk_notifier_task_retries_admin',
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name='pk_notifier_task_retries'),
        sa.UniqueConstraint('task_id', name='uq_notifier_task_retries_task_id'),
    )
    op.create_index('ix_notifier_task_retries_status', 'notifier_task_retries', ['status'])
    op.create_index('ix_notifier_task_retries_failed_run', 'notifier_task_retries',
                    ['failed_run_id', 'requested_at'])
    op.create_index('ix_notifier_task_retries_requested', 'notifier_task_retries',
                    ['requested_at'])


def downgrade() -> None:
    op.drop_table('notifier_task_retries')
    op.drop_table('notifier_failed_runs')
