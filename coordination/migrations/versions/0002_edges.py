"""confidentiality at the edges: server-side web sessions; one answer link per invitation

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import coordination.db

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('websession',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', coordination.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', coordination.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', coordination.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('websession', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_websession_token_hash'), ['token_hash'], unique=True)
        batch_op.create_index(batch_op.f('ix_websession_user_id'), ['user_id'], unique=False)
    # The salt an answer link is derived from; rows from before have none and get one (a new
    # link) when their invitation is next sent.
    with op.batch_alter_table('answertoken', schema=None) as batch_op:
        batch_op.add_column(sa.Column('salt', sa.String(length=32), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('answertoken', schema=None) as batch_op:
        batch_op.drop_column('salt')
    with op.batch_alter_table('websession', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_websession_user_id'))
        batch_op.drop_index(batch_op.f('ix_websession_token_hash'))
    op.drop_table('websession')
