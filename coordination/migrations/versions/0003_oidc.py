"""sign-in with OpenID Connect: a user's linked identity, the ID token of a web session, sign-ins under way

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import coordination.db

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('oidc_issuer', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('oidc_subject', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('pending_pid', sa.String(length=11), nullable=True))
        batch_op.create_index('ix_user_oidc_identity', ['oidc_issuer', 'oidc_subject'], unique=True)
    with op.batch_alter_table('websession', schema=None) as batch_op:
        batch_op.add_column(sa.Column('id_token', sa.Text(), nullable=True))
    op.create_table('oidclogin',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=64), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('code_verifier', sa.String(length=128), nullable=False),
    sa.Column('next_path', sa.Text(), nullable=False),
    sa.Column('created_at', coordination.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )


def downgrade() -> None:
    op.drop_table('oidclogin')
    with op.batch_alter_table('websession', schema=None) as batch_op:
        batch_op.drop_column('id_token')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_index('ix_user_oidc_identity')
        batch_op.drop_column('pending_pid')
        batch_op.drop_column('oidc_subject')
        batch_op.drop_column('oidc_issuer')
