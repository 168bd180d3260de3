"""The address each outbox message was sent to, so a calendar's reply is matched against it

Revision ID: 0009
Revises: 0008
Create Date: 2027-01-05 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outboxmessage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sent_to', sa.String(length=254), nullable=False, server_default=''))
    # Messages sent before this column existed went to the address the contact had then; the
    # address on record now is the best that is known of it.
    op.execute(
        "UPDATE outboxmessage SET sent_to = COALESCE((SELECT CASE WHEN outboxmessage.channel = 'sms' "
        "THEN contact.mobile ELSE contact.email END FROM contact "
        "WHERE contact.id = outboxmessage.recipient_contact_id), '') "
        "WHERE recipient_contact_id IS NOT NULL AND status = 'sent'"
    )


def downgrade() -> None:
    with op.batch_alter_table('outboxmessage', schema=None) as batch_op:
        batch_op.drop_column('sent_to')
