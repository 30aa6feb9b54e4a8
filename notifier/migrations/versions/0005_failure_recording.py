"""alert fingerprint column on notifications (backfilled); processed failure keys (revision id 0003, applied after 0004)

Revision ID: 0003
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import notifier.types

revision = '0003'
down_revision = '0004'
branch_labels = None
depends_on = None

# Notifications written before this revision kept the fingerprint inside their metadata,
# at the top (import, sync, generic jobs) or under "details" (notify_critical_error).
_BACKFILL = {
    "postgresql": (
        "UPDATE admin_notifications SET alert_fingerprint = left(COALESCE("
        "notification_metadata->>'alert_fingerprint', "
        "notification_metadata->'details'->>'alert_fingerprint'), 255) "
        "WHERE alert_fingerprint IS NULL AND COALESCE("
        "notification_metadata->>'alert_fingerprint', "
        "notification_metadata->'details'->>'alert_fingerprint') IS NOT NULL"
    ),
    "sqlite": (
        "UPDATE admin_notifications SET alert_fingerprint = substr(CAST(COALESCE("
        "json_extract(notification_metadata, '$.alert_fingerprint'), "
        "json_extract(notification_metadata, '$.details.alert_fingerprint')) AS TEXT), 1, 255) "
        "WHERE alert_fingerprint IS NULL AND json_valid(notification_metadata) AND COALESCE("
        "json_extract(notification_metadata, '$.alert_fingerprint'), "
        "json_extract(notification_metadata, '$.details.alert_fingerprint')) IS NOT NULL"
    ),
}
# Failures recorded before this revision are known by their notification's dedup key.
_PROCESSED = (
    "INSERT INTO processed_failures (key, processed_at) SELECT dedup_key, created_at "
    "FROM admin_notifications WHERE substr(dedup_key, 1, 7) = 'celery:'"
)


def upgrade() -> None:
    op.create_table('processed_failures',
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('processed_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_processed_failures'))
    )
    with op.batch_alter_table('processed_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_processed_failures_processed_at'), ['processed_at'], unique=False)

    with op.batch_alter_table('admin_notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alert_fingerprint', sa.String(length=255), nullable=True))
        batch_op.create_index('ix_admin_notifications_fingerprint_created', ['alert_fingerprint', 'created_at'], unique=False)

    bind = op.get_bind()
    op.execute(sa.text(_BACKFILL[bind.dialect.name]))
    op.execute(sa.text(_PROCESSED))


def downgrade() -> None:
    with op.batch_alter_table('admin_notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_admin_notifications_fingerprint_created')
        batch_op.drop_column('alert_fingerprint')

    with op.batch_alter_table('processed_failures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_processed_failures_processed_at'))

    op.drop_table('processed_failures')
