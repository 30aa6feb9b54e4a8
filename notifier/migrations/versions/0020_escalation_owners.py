"""Escalation policies; an alert's owner, runbook and last escalation step; endpoint owners

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import notifier.types

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
_SEVERITIES = ('info', 'warning', 'error', 'critical')
_ALERT_TYPES = ('security', 'performance', 'capacity', 'integration', 'database', 'system')


def _enum(values: tuple[str, ...], name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade() -> None:
    # Plain nullable columns: SQLite adds them in place (no table copy).
    op.add_column('notifier_platform_alerts', sa.Column('owner', sa.String(length=100), nullable=True))
    op.add_column('notifier_platform_alerts', sa.Column('runbook', sa.String(length=500), nullable=True))
    op.add_column('notifier_platform_alerts', sa.Column('escalation_step', sa.Integer(), nullable=True))
    op.add_column('notifier_platform_alerts', sa.Column(
        'escalation_step_at', notifier.types.UTCDateTime(timezone=True), nullable=True))
    op.create_index('ix_notifier_platform_alerts_owner', 'notifier_platform_alerts', ['owner'])
    op.add_column('notifier_delivery_endpoints', sa.Column(
        'owners', _JSON, nullable=False, server_default=sa.text("'[]'")))
    op.create_table(
        'notifier_escalation_policies',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('severity', _enum(_SEVERITIES, 'severity'), nullable=False),
        sa.Column('alert_type', _enum(_ALERT_TYPES, 'alert_type'), nullable=True),
        sa.Column('owner', sa.String(length=100), nullable=True),
        sa.Column('steps', _JSON, nullable=False),
        sa.Column('repeat', sa.Integer(), nullable=False),
        sa.Column('is_enabled', sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column('created_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint('repeat >= 0', name=op.f('ck_notifier_escalation_policies_repeat_not_negative')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notifier_escalation_policies')),
    )


def downgrade() -> None:
    op.drop_table('notifier_escalation_policies')
    with op.batch_alter_table('notifier_delivery_endpoints') as batch_op:
        batch_op.drop_column('owners')
    op.drop_index('ix_notifier_platform_alerts_owner', table_name='notifier_platform_alerts')
    with op.batch_alter_table('notifier_platform_alerts') as batch_op:
        batch_op.drop_column('escalation_step_at')
        batch_op.drop_column('escalation_step')
        batch_op.drop_column('runbook')
        batch_op.drop_column('owner')
