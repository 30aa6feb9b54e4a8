"""PagerDuty and Apprise endpoint kinds; the alert.acknowledged delivery event

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

_OLD_CHANNELS = ('webhook', 'slack', 'teams', 'email')
_NEW_CHANNELS = _OLD_CHANNELS + ('pagerduty', 'apprise')
_OLD_EVENTS = (
    'notification.created',
    'alert.opened',
    'alert.regressed',
    'alert.resolved',
    'alert.escalated',
    'alert.reminder',
    'endpoint.test',
)
# In the models' order (the CHECK lists the values as the enum does).
_NEW_EVENTS = _OLD_EVENTS[:-1] + ('alert.acknowledged', 'endpoint.test')

# (table, column, constraint name) of every CHECK this revision widens.
_CHECKS = (
    ('notifier_delivery_endpoints', 'channel'),
    ('notifier_deliveries', 'channel'),
    ('notifier_deliveries', 'event_type'),
)


def _enum(column: str, values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name=column, native_enum=False, create_constraint=True, length=32)


def _values(column: str, new: bool) -> tuple[str, ...]:
    if column == 'channel':
        return _NEW_CHANNELS if new else _OLD_CHANNELS
    return _NEW_EVENTS if new else _OLD_EVENTS


def _set(new: bool) -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table, column in _CHECKS:
            values = ', '.join(f"'{v}'" for v in _values(column, new))
            name = f'ck_{table}_{column}'
            op.execute(
                f'ALTER TABLE {table} DROP CONSTRAINT {name},'
                f' ADD CONSTRAINT {name} CHECK ({column} IN ({values}))'
            )
        return
    # SQLite cannot alter a CHECK: the batch copies the table with the new one.
    for table in ('notifier_delivery_endpoints', 'notifier_deliveries'):
        with op.batch_alter_table(table, recreate='always') as batch_op:
            for checked_table, column in _CHECKS:
                if checked_table == table:
                    batch_op.alter_column(
                        column,
                        existing_type=_enum(column, _values(column, not new)),
                        type_=_enum(column, _values(column, new)),
                        existing_nullable=False,
                    )


def upgrade() -> None:
    _set(True)


def downgrade() -> None:
    op.execute(
        "DELETE FROM notifier_deliveries WHERE channel IN ('pagerduty', 'apprise')"
        " OR event_type = 'alert.acknowledged'"
    )
    op.execute("DELETE FROM notifier_delivery_endpoints WHERE channel IN ('pagerduty', 'apprise')")
    _set(False)
