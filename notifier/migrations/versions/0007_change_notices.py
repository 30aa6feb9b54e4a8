"""PostgreSQL triggers that notify the live stream of changes (ids only, on commit); the
alert list's order as one index

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from notifier.live.changes import CHANNEL

# The triggers as this revision made them, on the tables' names of the time (0013 renames
# the tables and rewrites the function); a revision is a snapshot, it does not follow the code.
POSTGRES_TRIGGERS = (
    f"""
CREATE OR REPLACE FUNCTION notifier_notify_change() RETURNS trigger AS $$
BEGIN
  IF TG_TABLE_NAME = 'admin_notifications' AND TG_LEVEL = 'ROW' THEN
    PERFORM pg_notify('{CHANNEL}', 'n' || NEW.id);
  ELSIF TG_TABLE_NAME = 'admin_notifications' THEN
    PERFORM pg_notify('{CHANNEL}', 'u');
  ELSE
    PERFORM pg_notify('{CHANNEL}', 'a' || NEW.id);
  END IF;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql
""",
    "CREATE TRIGGER notifier_notification_insert AFTER INSERT ON admin_notifications "
    "FOR EACH ROW EXECUTE FUNCTION notifier_notify_change()",
    "CREATE TRIGGER notifier_notification_change AFTER UPDATE OR DELETE ON admin_notifications "
    "FOR EACH STATEMENT EXECUTE FUNCTION notifier_notify_change()",
    "CREATE TRIGGER notifier_alert_change AFTER INSERT OR UPDATE ON platform_alerts "
    "FOR EACH ROW EXECUTE FUNCTION notifier_notify_change()",
)
POSTGRES_DROP_TRIGGERS = (
    "DROP TRIGGER IF EXISTS notifier_alert_change ON platform_alerts",
    "DROP TRIGGER IF EXISTS notifier_notification_change ON admin_notifications",
    "DROP TRIGGER IF EXISTS notifier_notification_insert ON admin_notifications",
    "DROP FUNCTION IF EXISTS notifier_notify_change()",
)

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        'ix_platform_alerts_list_order',
        'platform_alerts',
        ['is_resolved', sa.text('last_occurred_at DESC'), sa.text('id DESC')],
    )
    if op.get_bind().dialect.name != 'postgresql':
        return  # SQLite: one watcher per web process reads the change feed instead
    for statement in POSTGRES_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    op.drop_index('ix_platform_alerts_list_order', table_name='platform_alerts')
    if op.get_bind().dialect.name != 'postgresql':
        return
    for statement in POSTGRES_DROP_TRIGGERS:
        op.execute(statement)
