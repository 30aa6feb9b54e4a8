"""Job health: root causes hold back their symptoms; alerts that resolve on recovery

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('notifier_platform_alerts', sa.Column('explains', sa.String(255), nullable=True))
    op.add_column('notifier_platform_alerts', sa.Column('held_back_by_id', sa.Integer(), nullable=True))
    op.add_column('notifier_platform_alerts', sa.Column(
        'held_back_count', sa.Integer(), nullable=False, server_default=sa.text('0')))
    op.add_column('notifier_platform_alerts', sa.Column('recovery_task', sa.String(200), nullable=True))
    op.add_column('notifier_admin_notifications', sa.Column('held_back_by_id', sa.Integer(), nullable=True))
    op.add_column('notifier_deliveries', sa.Column(
        'scopes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
        nullable=True))
    op.create_index('ix_notifier_platform_alerts_held_back_by_id', 'notifier_platform_alerts',
                    ['held_back_by_id'])
    op.create_index('ix_notifier_admin_notifications_held_back_by_id',
                    'notifier_admin_notifications', ['held_back_by_id'])
    op.create_index(
        'ix_notifier_platform_alerts_open_explains', 'notifier_platform_alerts', ['explains'],
        postgresql_where=sa.text('explains IS NOT NULL AND NOT is_resolved'),
        sqlite_where=sa.text('explains IS NOT NULL AND is_resolved = 0'),
    )
    op.create_index(
        'ix_notifier_platform_alerts_open_recovery', 'notifier_platform_alerts', ['recovery_task'],
        postgresql_where=sa.text('recovery_task IS NOT NULL AND NOT is_resolved'),
        sqlite_where=sa.text('recovery_task IS NOT NULL AND is_resolved = 0'),
    )


def downgrade() -> None:
    op.drop_index('ix_notifier_platform_alerts_open_recovery', table_name='notifier_platform_alerts')
    op.drop_index('ix_notifier_platform_alerts_open_explains', table_name='notifier_platform_alerts')
    op.drop_index('ix_notifier_admin_notifications_held_back_by_id',
                  table_name='notifier_admin_notifications')
    op.drop_index('ix_notifier_platform_alerts_held_back_by_id', table_name='notifier_platform_alerts')
    with op.batch_alter_table('notifier_deliveries') as batch_op:
        batch_op.drop_column('scopes')
    with op.batch_alter_table('notifier_admin_notifications') as batch_op:
        batch_op.drop_column('held_back_by_id')
    with op.batch_alter_table('notifier_platform_alerts') as batch_op:
        batch_op.drop_column('recovery_task')
        batch_op.drop_column('held_back_count')
        batch_op.drop_column('held_back_by_id')
        batch_op.drop_column('explains')
