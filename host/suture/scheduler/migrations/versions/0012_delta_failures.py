"""Delta failures: a device's report that a delta of a release failed to apply.

``delta_failures``: one row per device and release (the delta it was served, when, the device's
error code and message). The scheduler serves that device the release's full payload from then
on, never the delta again (services/deltas.py, docs/formats/delta.md).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delta_failures",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("delta_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"]),
        sa.ForeignKeyConstraint(["delta_id"], ["deltas.id"]),
        sa.PrimaryKeyConstraint("device_id", "release_id"),
    )
    op.create_index("ix_delta_failures_delta_id", "delta_failures", ["delta_id"])


def downgrade() -> None:
    op.drop_index("ix_delta_failures_delta_id", table_name="delta_failures")
    op.drop_table("delta_failures")
