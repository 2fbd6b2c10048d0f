"""Approval denials: an approver's reason given with an approval, and the denials of a
rollout (who, when, why, against which content; cleared when the content changes).

Approvals from before this revision carry no reason (empty).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rollout_approvals", sa.Column("reason", sa.Text(), nullable=False,
                                                 server_default=sa.text("''")))
    op.create_table(
        "rollout_denials",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("cleared_at", sa.BigInteger(), nullable=True),
        sa.Column("cleared_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["rollout_id"], ["rollouts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rollout_denials_rollout_id", "rollout_denials", ["rollout_id"])


def downgrade() -> None:
    op.drop_index("ix_rollout_denials_rollout_id", table_name="rollout_denials")
    op.drop_table("rollout_denials")
    # A plain ALTER (SQLite >= 3.35 drops a column in place).
    op.drop_column("rollout_approvals", "reason")
