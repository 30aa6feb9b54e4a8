"""delivery outbox: endpoints, deliveries, attempts

Revision ID: 0006
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sqlalchemy.dialects import postgresql

import notifier.types

revision = '0006'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('delivery_endpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.Enum('webhook', 'slack', 'teams', 'email', name='channel', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('secret', sa.String(length=100), nullable=True),
    sa.Column('previous_secret', sa.String(length=100), nullable=True),
    sa.Column('previous_secret_expires_at', notifier.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('event_types', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('notification_types', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('alert_types', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('store_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('min_priority', sa.Enum('low', 'normal', 'high', 'critical', name='min_priority', native_enum=False, create_constraint=True, length=32), nullable=True),
    sa.Column('min_severity', sa.Enum('info', 'warning', 'error', 'critical', name='min_severity', native_enum=False, create_constraint=True, length=32), nullable=True),
    sa.Column('is_enabled', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('disabled_reason', sa.String(length=200), nullable=True),
    sa.Column('failing_since', notifier.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', notifier.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_endpoints'))
    )
    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=False),
    sa.Column('event_id', sa.String(length=40), nullable=False),
    sa.Column('event_type', sa.Enum('notification.created', 'alert.opened', 'alert.regressed', 'alert.resolved', 'endpoint.test', name='event_type', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('channel', sa.Enum('webhook', 'slack', 'teams', 'email', name='channel', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=True),
    sa.Column('recipient_user_id', sa.Integer(), nullable=True),
    sa.Column('notification_id', sa.Integer(), nullable=True),
    sa.Column('alert_id', sa.Integer(), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('occurred_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.Enum('pending', 'succeeded', 'failed', name='delivery_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('attempt_count', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_until', notifier.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', notifier.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['delivery_endpoints.id'], name=op.f('fk_deliveries_endpoint_id_delivery_endpoints'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recipient_user_id'], ['admin_users.id'], name=op.f('fk_deliveries_recipient_user_id_admin_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries')),
    sa.UniqueConstraint('message_id', name=op.f('uq_deliveries_message_id'))
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_due', ['next_attempt_at'], unique=False, postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
        batch_op.create_index('ix_deliveries_endpoint_created', ['endpoint_id', 'created_at'], unique=False)
        batch_op.create_index('ix_deliveries_recipient_created', ['recipient_user_id', 'created_at'], unique=False)
        batch_op.create_index('ix_deliveries_status_created', ['status', 'created_at'], unique=False)

    op.create_table('delivery_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('attempted_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('error_class', sa.String(length=100), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_body', sa.String(length=1024), nullable=True),
    sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], name=op.f('fk_delivery_attempts_delivery_id_deliveries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_attempts'))
    )
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_attempts_delivery_id'), ['delivery_id'], unique=False)




def downgrade() -> None:
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_attempts_delivery_id'))

    op.drop_table('delivery_attempts')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_status_created')
        batch_op.drop_index('ix_deliveries_recipient_created')
        batch_op.drop_index('ix_deliveries_endpoint_created')
        batch_op.drop_index('ix_deliveries_due', postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))

    op.drop_table('deliveries')
    op.drop_table('delivery_endpoints')

