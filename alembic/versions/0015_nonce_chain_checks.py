"""nonce chain checks: how many verifies of a nonce have asked the chain, at most three

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds it without rewriting the table, and the nonces
    # already out count no checks yet.
    with op.batch_alter_table("auth_nonces", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("chain_checks", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("auth_nonces", schema=None) as batch_op:
        batch_op.drop_column("chain_checks")
