"""Alert lifecycle: acknowledge, snooze, escalation time, reminder claims; two delivery events

Revision ID: 0009
Revises: 0010 (rechain onto the head when merging)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_OLD_EVENTS = ('notification.created', 'alert.opened', 'alert.regressed', 'alert.resolved', 'endpoint.test')
_NEW_EVENTS = _OLD_EVENTS + ('alert.escalated', 'alert.reminder')
_DEFAULT_EMAIL = 'Admins by email'


def _events(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name='event_type', native_enum=False, create_constraint=True, length=32)


def _check(values: tuple[str, ...]) -> str:
    return 'event_type IN (' + ', '.join(f"'{v}'" for v in values) + ')'


def _set_events(values: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_constraint(op.f('ck_deliveries_event_type'), 'deliveries', type_='check')
        op.create_check_constraint('event_type', 'deliveries', _check(values))
        return
    # SQLite cannot alter a CHECK: the batch copies the table with the new one.
    old = _NEW_EVENTS if values == _OLD_EVENTS else _OLD_EVENTS
    with op.batch_alter_table('deliveries', recreate='always') as batch_op:
        batch_op.alter_column('event_type', existing_type=_events(old), type_=_events(values),
                              existing_nullable=False)


def _default_rule_escalations(add: bool) -> None:
    # The default email rule (every admin, critical alerts) also takes escalations to critical.
    bind = op.get_bind()
    endpoints = sa.table('delivery_endpoints', sa.column('id', sa.Integer),
                         sa.column('name', sa.String), sa.column('channel', sa.String),
                         sa.column('event_types', sa.JSON))
    rows = bind.execute(sa.select(endpoints.c.id, endpoints.c.event_types).where(
        endpoints.c.channel == 'email', endpoints.c.name == _DEFAULT_EMAIL)).all()
    for row in rows:
        events = [e for e in (row.event_types or []) if e != 'alert.escalated']
        if add and events and 'alert.opened' in events:
            events.append('alert.escalated')
        elif add:
            continue
        bind.execute(sa.update(endpoints).where(endpoints.c.id == row.id).values(event_types=events))


def _restore_list_order() -> None:
    # SQLite's batch copies the table and reflects the list-order index without its DESC
    # columns; build it again as 0007 made it.
    if op.get_bind().dialect.name != 'sqlite':
        return
    op.drop_index('ix_platform_alerts_list_order', table_name='platform_alerts')
    op.create_index(
        'ix_platform_alerts_list_order',
        'platform_alerts',
        ['is_resolved', sa.text('last_occurred_at DESC'), sa.text('id DESC')],
    )


def upgrade() -> None:
    with op.batch_alter_table('platform_alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_by_user_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('snoozed_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            'fk_platform_alerts_acknowledged_by_user_id_admin_users', 'admin_users',
            ['acknowledged_by_user_id'], ['id'], ondelete='SET NULL')
    _restore_list_order()
    op.create_table(
        'alert_reminders',
        sa.Column('alert_id', sa.Integer(), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['alert_id'], ['platform_alerts.id'],
                                name=op.f('fk_alert_reminders_alert_id_platform_alerts'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('alert_id', 'due_at', name=op.f('pk_alert_reminders')),
    )
    _set_events(_NEW_EVENTS)
    _default_rule_escalations(add=True)


def downgrade() -> None:
    _default_rule_escalations(add=False)
    op.execute("DELETE FROM deliveries WHERE event_type IN ('alert.escalated', 'alert.reminder')")
    _set_events(_OLD_EVENTS)
    op.drop_table('alert_reminders')
    with op.batch_alter_table('platform_alerts', schema=None) as batch_op:
        batch_op.drop_constraint('fk_platform_alerts_acknowledged_by_user_id_admin_users',
                                 type_='foreignkey')
        batch_op.drop_column('escalated_at')
        batch_op.drop_column('snoozed_until')
        batch_op.drop_column('acknowledged_by_user_id')
        batch_op.drop_column('acknowledged_at')
    _restore_list_order()
