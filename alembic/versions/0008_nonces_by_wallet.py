"""nonces by wallet and asker: each client keeps only its newest few unused nonces for a wallet

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 05:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("auth_nonces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("requested_by", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ix_auth_nonces_wallet_asker_issued",
            ["wallet_address", "requested_by", "issued_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("auth_nonces", schema=None) as batch_op:
        batch_op.drop_index("ix_auth_nonces_wallet_asker_issued")
        batch_op.drop_column("requested_by")
