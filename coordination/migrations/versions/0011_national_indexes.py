"""Indexes a country's data needs: the contact and alert an outbox row points at, the contact an
answer token belongs to

Deleting a contact or an alert (the retention purge deletes a closed case's) makes PostgreSQL
check every row that points at it; without an index on the pointing column that is a scan of the
whole outbox (1.8 million rows for a year of mail at national scale) per contact deleted: 2.5 s
for one case's nine contacts, measured on bench/national_data.py's data set (issue 17). The same
columns join the outbox to its recipients (``replies``, ``outbox.queue``).

Revision ID: 0011
Revises: 0010
Create Date: 2027-01-07 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ('ix_outboxmessage_recipient_contact_id', 'outboxmessage', 'recipient_contact_id'),
    ('ix_outboxmessage_alert_id', 'outboxmessage', 'alert_id'),
    ('ix_answertoken_contact_id', 'answertoken', 'contact_id'),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column], unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
