"""closing a case: its status (open, closed, purged), when its record was produced, when its data was deleted

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import coordination.db

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=10), nullable=False, server_default='open'))
        batch_op.add_column(sa.Column('record_produced_at', coordination.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('purged_at', coordination.db.UTCDateTime(timezone=True), nullable=True))
    # A case closed before this migration (closed_at set by hand) is closed.
    op.execute("UPDATE \"case\" SET status = 'closed' WHERE closed_at IS NOT NULL")
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.alter_column('status', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_column('purged_at')
        batch_op.drop_column('record_produced_at')
        batch_op.drop_column('status')
