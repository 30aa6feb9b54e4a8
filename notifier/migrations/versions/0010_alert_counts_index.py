"""The alert statistics read from one index: (is_resolved, severity, alert_type) replaces
(is_resolved, severity), of which it is an extension

Revision ID: 0010
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = '0010'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        'ix_platform_alerts_counts', 'platform_alerts', ['is_resolved', 'severity', 'alert_type']
    )
    op.drop_index('ix_platform_alerts_resolved_severity', table_name='platform_alerts')


def downgrade() -> None:
    op.create_index(
        'ix_platform_alerts_resolved_severity', 'platform_alerts', ['is_resolved', 'severity']
    )
    op.drop_index('ix_platform_alerts_counts', table_name='platform_alerts')
