"""SMS: a contact's mobile number (E.164) and how they want to be told; an outbox row's channel

Revision ID: 0008
Revises: 0007
Create Date: 2027-01-04 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mobile', sa.String(length=16), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('notify_by', sa.String(length=10), nullable=False, server_default='email'))
    with op.batch_alter_table('outboxmessage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=10), nullable=False, server_default='email'))


def downgrade() -> None:
    with op.batch_alter_table('outboxmessage', schema=None) as batch_op:
        batch_op.drop_column('channel')
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_column('notify_by')
        batch_op.drop_column('mobile')
