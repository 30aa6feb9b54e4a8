"""admin preferences, digests, held emails, the unsubscribe links' key

Revision ID: 0008
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sqlalchemy.dialects import postgresql

import notifier.types

revision = '0008'
down_revision = '0010'  # after 0010 (which revises 0007); 0009 follows
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('admin_preferences',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('rules', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('channels', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('quiet_windows', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('digest_frequency', sa.Enum('off', 'hourly', 'daily', name='digest_frequency', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('digest_hour', sa.Integer(), nullable=False),
    sa.Column('updated_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('digest_hour >= 0 AND digest_hour <= 23', name=op.f('ck_admin_preferences_digest_hour_range')),
    sa.ForeignKeyConstraint(['user_id'], ['admin_users.id'], name=op.f('fk_admin_preferences_user_id_admin_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_admin_preferences'))
    )
    op.create_table('digests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('period_key', sa.String(length=32), nullable=False),
    sa.Column('covered_from', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('covered_until', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('item_count', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('created_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', notifier.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['admin_users.id'], name=op.f('fk_digests_user_id_admin_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_digests'))
    )
    with op.batch_alter_table('digests', schema=None) as batch_op:
        batch_op.create_index('ix_digests_user_until', ['user_id', 'covered_until'], unique=False)
        batch_op.create_index('uq_digests_user_period', ['user_id', 'period_key'], unique=True)

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hold', sa.String(length=16), nullable=True))

    op.create_table('notifier_keys',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('value', sa.String(length=128), nullable=False),
    sa.Column('created_at', notifier.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_notifier_keys'))
    )



def downgrade() -> None:
    op.drop_table('notifier_keys')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('hold')

    with op.batch_alter_table('digests', schema=None) as batch_op:
        batch_op.drop_index('uq_digests_user_period')
        batch_op.drop_index('ix_digests_user_until')

    op.drop_table('digests')
    op.drop_table('admin_preferences')
