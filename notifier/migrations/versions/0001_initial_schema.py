"""initial schema

Revision ID: 0001
Revises: 
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sqlalchemy.dialects import postgresql

import notifier.types

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('admin_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('created_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_users'))
    )
    # Case-insensitive unique email (autogenerate cannot see expression indexes).
    op.create_index('uq_admin_users_email_lower', 'admin_users', [sa.text('lower(email)')], unique=True)
    op.create_table('admin_notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('type', sa.Enum('import_failure', 'order_sync_failure', 'order_exception', 'critical_error', 'store_issue', 'security_alert', 'system_info', name='notification_type', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('priority', sa.Enum('low', 'normal', 'high', 'critical', name='priority', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('is_read', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('read_at', notifier.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('read_by_user_id', sa.Integer(), nullable=True),
    sa.Column('action_required', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('action_url', sa.String(length=500), nullable=True),
    sa.Column('notification_metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=True),
    sa.Column('dedup_key', sa.String(length=255), nullable=True),
    sa.Column('created_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('length(message) <= 10000', name=op.f('ck_admin_notifications_message_length')),
    sa.CheckConstraint('length(title) <= 200', name=op.f('ck_admin_notifications_title_length')),
    sa.ForeignKeyConstraint(['read_by_user_id'], ['admin_users.id'], name=op.f('fk_admin_notifications_read_by_user_id_admin_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_notifications')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_admin_notifications_dedup_key'))
    )
    with op.batch_alter_table('admin_notifications', schema=None) as batch_op:
        batch_op.create_index('ix_admin_notifications_created', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_admin_notifications_priority_created', ['priority', 'created_at'], unique=False)
        batch_op.create_index('ix_admin_notifications_read_created', ['is_read', 'created_at'], unique=False)
        batch_op.create_index('ix_admin_notifications_store_created', ['store_id', 'created_at'], unique=False)
        batch_op.create_index('ix_admin_notifications_type_created', ['type', 'created_at'], unique=False)
        batch_op.create_index('ix_admin_notifications_unread_created', ['created_at', 'id'], unique=False, postgresql_where=sa.text('NOT is_read'), sqlite_where=sa.text('is_read = 0'))

    op.create_table('platform_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_type', sa.Enum('security', 'performance', 'capacity', 'integration', 'database', 'system', name='alert_type', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('severity', sa.Enum('info', 'warning', 'error', 'critical', name='severity', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('affected_stores', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('affected_systems', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('fingerprint', sa.String(length=255), nullable=False),
    sa.Column('occurrence_count', sa.Integer(), nullable=False),
    sa.Column('first_occurred_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_occurred_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('is_resolved', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('resolved_at', notifier.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_by_user_id', sa.Integer(), nullable=True),
    sa.Column('resolution_notes', sa.Text(), nullable=True),
    sa.Column('alert_metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('length(title) <= 200', name=op.f('ck_platform_alerts_title_length')),
    sa.CheckConstraint('occurrence_count >= 1', name=op.f('ck_platform_alerts_occurrence_count_positive')),
    sa.ForeignKeyConstraint(['resolved_by_user_id'], ['admin_users.id'], name=op.f('fk_platform_alerts_resolved_by_user_id_admin_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_platform_alerts'))
    )
    with op.batch_alter_table('platform_alerts', schema=None) as batch_op:
        batch_op.create_index('ix_platform_alerts_fingerprint', ['fingerprint'], unique=False)
        batch_op.create_index('ix_platform_alerts_resolved_at', ['resolved_at'], unique=False)
        batch_op.create_index('ix_platform_alerts_resolved_last', ['is_resolved', 'last_occurred_at'], unique=False)
        batch_op.create_index('ix_platform_alerts_resolved_severity', ['is_resolved', 'severity'], unique=False)
        batch_op.create_index('ix_platform_alerts_resolved_type', ['is_resolved', 'alert_type'], unique=False)
        batch_op.create_index('uq_platform_alerts_open_fingerprint', ['fingerprint'], unique=True, postgresql_where=sa.text('NOT is_resolved'), sqlite_where=sa.text('is_resolved = 0'))



def downgrade() -> None:
    with op.batch_alter_table('platform_alerts', schema=None) as batch_op:
        batch_op.drop_index('uq_platform_alerts_open_fingerprint', postgresql_where=sa.text('NOT is_resolved'), sqlite_where=sa.text('is_resolved = 0'))
        batch_op.drop_index('ix_platform_alerts_resolved_type')
        batch_op.drop_index('ix_platform_alerts_resolved_severity')
        batch_op.drop_index('ix_platform_alerts_resolved_last')
        batch_op.drop_index('ix_platform_alerts_resolved_at')
        batch_op.drop_index('ix_platform_alerts_fingerprint')

    op.drop_table('platform_alerts')
    with op.batch_alter_table('admin_notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_admin_notifications_unread_created', postgresql_where=sa.text('NOT is_read'), sqlite_where=sa.text('is_read = 0'))
        batch_op.drop_index('ix_admin_notifications_type_created')
        batch_op.drop_index('ix_admin_notifications_store_created')
        batch_op.drop_index('ix_admin_notifications_read_created')
        batch_op.drop_index('ix_admin_notifications_priority_created')
        batch_op.drop_index('ix_admin_notifications_created')

    op.drop_table('admin_notifications')
    op.drop_index('uq_admin_users_email_lower', table_name='admin_users')
    op.drop_table('admin_users')
