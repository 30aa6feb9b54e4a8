"""Every table the notifier owns is named notifier_*, with its indexes, constraints and
sequences, so it cannot meet a host's own `deliveries` or `admin_users`

Revision ID: 0013
Revises: 0012

Data is kept: PostgreSQL renames in place (a serial column's default follows its renamed
sequence, triggers follow their table); SQLite, which cannot rename an index or a
constraint, copies each table into one created from its own DDL with the names rewritten.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

from notifier.live.changes import CHANNEL

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

# Parents before children, so copies and drops respect the foreign keys.
_OLD = (
    'admin_users',
    'delivery_endpoints',
    'platform_alerts',
    'admin_notifications',
    'alert_reminders',
    'processed_failures',
    'api_tokens',
    'deliveries',
    'delivery_attempts',
    'admin_sessions',
    'admin_preferences',
    'digests',
)
_NEW = {old: f'notifier_{old}' for old in _OLD}
_POSTGRES_MAX = 63

_FUNCTION = """
CREATE OR REPLACE FUNCTION notifier_notify_change() RETURNS trigger AS $$
BEGIN
  IF TG_TABLE_NAME = '{notifications}' AND TG_LEVEL = 'ROW' THEN
    PERFORM pg_notify('{channel}', 'n' || NEW.id);
  ELSIF TG_TABLE_NAME = '{notifications}' THEN
    PERFORM pg_notify('{channel}', 'u');
  ELSE
    PERFORM pg_notify('{channel}', 'a' || NEW.id);
  END IF;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


def _renamer(names: dict[str, str]) -> Callable[[str], str]:
    # A table's name inside another name ("pk_deliveries", "ix_deliveries_due",
    # "fk_digests_user_id_admin_users") or in DDL: between non-alphanumerics, and never
    # the tail of a name that already carries the prefix.
    alternatives = '|'.join(sorted(map(re.escape, names), key=len, reverse=True))
    pattern = re.compile(rf'(?<![A-Za-z0-9])(?<!notifier_)({alternatives})(?![A-Za-z0-9])')
    return lambda text: pattern.sub(lambda match: names[match.group(1)], text)


def _fit(name: str) -> str:
    # What SQLAlchemy makes of a naming-convention name too long for PostgreSQL.
    if len(name) <= _POSTGRES_MAX:
        return name
    return name[: _POSTGRES_MAX - 8] + '_' + hashlib.md5(name.encode()).hexdigest()[-4:]  # noqa: S324


def _rename_postgresql(names: dict[str, str]) -> None:
    conn = op.get_bind()
    rename = _renamer(names)
    for old, new in names.items():
        op.rename_table(old, new)
    for new in names.values():
        table = {'t': new}
        # Indexes of their own first; a primary key's or unique constraint's index is
        # renamed with its constraint.
        indexes = conn.scalars(
            sa.text(
                'SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid'
                ' WHERE x.indrelid = CAST(:t AS regclass) AND NOT EXISTS (SELECT 1 FROM'
                ' pg_constraint c WHERE c.conrelid = x.indrelid AND c.conindid = x.indexrelid)'
            ),
            table,
        ).all()
        for name in indexes:
            op.execute(f'ALTER INDEX "{name}" RENAME TO "{_fit(rename(name))}"')
        constraints = conn.scalars(
            sa.text('SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass)'),
            table,
        ).all()
        for name in constraints:
            op.execute(f'ALTER TABLE {new} RENAME CONSTRAINT "{name}" TO "{_fit(rename(name))}"')
        # The serial columns' sequences (admin_users_id_seq): the defaults name them by oid.
        sequences = conn.scalars(
            sa.text(
                "SELECT s.relname FROM pg_class s JOIN pg_depend d ON d.objid = s.oid"
                " AND d.classid = 'pg_class'::regclass WHERE s.relkind = 'S'"
                " AND d.refobjid = CAST(:t AS regclass)"
            ),
            table,
        ).all()
        for name in sequences:
            op.execute(f'ALTER SEQUENCE "{name}" RENAME TO "{rename(name)}"')
    # The triggers followed their tables; the function tells the tables apart by name.
    notifications = names.get('admin_notifications', 'admin_notifications')
    op.execute(_FUNCTION.format(notifications=notifications, channel=CHANNEL))


def _rename_sqlite(names: dict[str, str]) -> None:
    conn = op.get_bind()
    rename = _renamer(names)

    def ddl(type_: str, table: str) -> list[str]:
        query = sa.text(
            'SELECT sql FROM sqlite_master WHERE type = :type AND tbl_name = :t'
            ' AND sql IS NOT NULL ORDER BY name'
        )
        return list(conn.scalars(query, {'type': type_, 't': table}))

    indexes: list[str] = []
    for old, new in names.items():
        [create] = ddl('table', old)
        op.execute(rename(create))
        op.execute(f'INSERT INTO {new} SELECT * FROM {old}')  # the same DDL: same columns
        indexes += ddl('index', old)
    for old in reversed(list(names)):  # children first: nothing left refers to a table dropped
        op.execute(f'DROP TABLE {old}')
    for create in indexes:
        op.execute(rename(create))


def _rename(names: dict[str, str]) -> None:
    if op.get_bind().dialect.name == 'postgresql':
        _rename_postgresql(names)
    else:
        _rename_sqlite(names)


# 0009 appended two events to the check; on PostgreSQL it is rewritten in the order the
# models list them, as a new database has it (same values, same meaning).
_EVENTS = (
    'notification.created',
    'alert.opened',
    'alert.regressed',
    'alert.resolved',
    'alert.escalated',
    'alert.reminder',
    'endpoint.test',
)


def upgrade() -> None:
    _rename(_NEW)
    if op.get_bind().dialect.name == 'postgresql':
        values = ', '.join(f"'{event}'" for event in _EVENTS)
        op.execute(
            'ALTER TABLE notifier_deliveries DROP CONSTRAINT ck_notifier_deliveries_event_type,'
            f' ADD CONSTRAINT ck_notifier_deliveries_event_type CHECK (event_type IN ({values}))'
        )


def downgrade() -> None:
    _rename({new: old for old, new in _NEW.items()})
