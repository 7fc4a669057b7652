"""replica settings: each process's fingerprint of the settings replicas must share

Start-up compares it with the other replicas' and warns when they differ
(service/operations/fingerprints.py). A new table, so nothing in service waits on it.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-14 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.columns

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "replica_settings",
        sa.Column("replica_name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("digests", sa.Text(), nullable=False),
        sa.Column("last_seen_at", service.columns.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("replica_name", "role"),
    )
    with op.batch_alter_table("replica_settings", schema=None) as batch_op:
        batch_op.create_index("ix_replica_settings_last_seen_at", ["last_seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("replica_settings", schema=None) as batch_op:
        batch_op.drop_index("ix_replica_settings_last_seen_at")
    op.drop_table("replica_settings")
