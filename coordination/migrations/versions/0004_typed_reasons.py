"""typed reasons: why the consent policy stopped an outbox row, kept as typed values, not as text

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 22:10:00

The number was handed out before the OIDC migration was written; that one came first, so
this one follows it and the history stays one line.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The rule codes and sectors the outbox page could put in words when this was written; a part
#: of an old text with anything else was never shown, and is not kept.
_CODES = {
    "granted", "narrowed", "not_consented", "child_not_consented", "refused", "withdrawn", "expired",
    "no_daily_care", "party_or_service", "child_talk_private", "child_talk_told", "level_too_low",
    "contact_inactive",
}
_SECTORS = {"family", "child_welfare", "school", "health", "nav", "other"}

_outbox = sa.table(
    'outboxmessage',
    sa.column('id', sa.Integer()),
    sa.column('status', sa.String()),
    sa.column('suppressed_reason', sa.String()),
    sa.column('suppressed_reasons', sa.JSON()),
)


def _parsed(text: str) -> list[dict[str, object]]:
    """The old text ("withdrawn contact=3 sector=school; no_daily_care") read the way the
    outbox page read it."""
    reasons: list[dict[str, object]] = []
    for part in text.split(";"):
        words = part.split()
        if not words or words[0] not in _CODES:
            continue
        values = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        contact = values.get("contact")
        sector = values.get("sector")
        if (contact is not None and not contact.isdigit()) or (sector is not None and sector not in _SECTORS):
            continue
        reasons.append({"code": words[0], "contact_id": int(contact) if contact is not None else None,
                        "sector": sector, "level": None, "on": None})
    return reasons


def upgrade() -> None:
    with op.batch_alter_table('outboxmessage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suppressed_reasons', sa.JSON(), nullable=False, server_default='[]'))
    connection = op.get_bind()
    stopped = connection.execute(
        sa.select(_outbox.c.id, _outbox.c.suppressed_reason).where(_outbox.c.status == 'suppressed')
    ).all()
    for row_id, text in stopped:
        reasons = _parsed(text or "")
        if reasons:
            connection.execute(_outbox.update().where(_outbox.c.id == row_id).values(suppressed_reasons=reasons))


def downgrade() -> None:
    with op.batch_alter_table('outboxmessage', schema=None) as batch_op:
        batch_op.drop_column('suppressed_reasons')
