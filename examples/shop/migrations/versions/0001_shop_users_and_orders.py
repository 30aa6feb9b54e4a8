"""shop users and orders

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

# "0001" like the notifier's own first revision: the two histories never meet.
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "shop_users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(200), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "shop_orders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("number", sa.String(40), nullable=False, unique=True),
        sa.Column("total_cents", sa.Integer(), nullable=False),
        sa.Column("placed_by", sa.Integer(), sa.ForeignKey("shop_users.id"), nullable=True),
    )


def downgrade():
    op.drop_table("shop_orders")
    op.drop_table("shop_users")
