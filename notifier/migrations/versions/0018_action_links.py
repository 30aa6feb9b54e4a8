"""Act from the message: where an acknowledgment came from, and the once-only record of
action links

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import notifier.types

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column is added in place on SQLite too (no table copy).
    with op.batch_alter_table('notifier_platform_alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acknowledged_via', sa.String(length=16), nullable=True))
    op.create_table(
        'notifier_action_uses',
        sa.Column('token_digest', sa.String(length=64), nullable=False),
        sa.Column('alert_id', sa.Integer(), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('used_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['alert_id'], ['notifier_platform_alerts.id'],
                                name=op.f('fk_notifier_action_uses_alert_id_notifier_platform_alerts'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['notifier_admin_users.id'],
                                name=op.f('fk_notifier_action_uses_user_id_notifier_admin_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('token_digest', name=op.f('pk_notifier_action_uses')),
    )
    op.create_index('ix_notifier_action_uses_used_at', 'notifier_action_uses', ['used_at'])


def downgrade() -> None:
    op.drop_index('ix_notifier_action_uses_used_at', table_name='notifier_action_uses')
    op.drop_table('notifier_action_uses')
    with op.batch_alter_table('notifier_platform_alerts', schema=None) as batch_op:
        batch_op.drop_column('acknowledged_via')
