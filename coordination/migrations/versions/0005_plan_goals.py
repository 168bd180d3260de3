"""plan goals: the goals one by one (indicator, level today, target, deadline) as the guide's template has them

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10 12:00:00

Existing plans get no goals listed (their goals stay in words, in ``goals``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('plan', schema=None) as batch_op:
        batch_op.add_column(sa.Column('smart_goals', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table('plan', schema=None) as batch_op:
        batch_op.drop_column('smart_goals')
