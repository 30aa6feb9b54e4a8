"""admin_users.external_id: the host app's user an admin stands for (host login)

Revision ID: e1b0a5c3d9f2
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'e1b0a5c3d9f2'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('admin_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_id', sa.String(length=255), nullable=True))
        batch_op.create_index('uq_admin_users_external_id', ['external_id'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('admin_users', schema=None) as batch_op:
        batch_op.drop_index('uq_admin_users_external_id')
        batch_op.drop_column('external_id')
