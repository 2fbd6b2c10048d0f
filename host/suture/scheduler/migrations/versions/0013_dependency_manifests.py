"""Hospital dependency manifests (SUIT): the hospital's manifest over the vendor's, per rollout.

``rollout_manifests``: one row per rollout, the envelope the scheduler signed over the rollout's
release (its blob, size, the conditions it carries: the number of devices listed, the window,
the approvals' digest, when it was issued; docs/formats/suit-extensions.md). ``devices``: the
device's SUIT device identifier (a UUID, ``suit_device_id``) and whether its loader processes
the hospital's manifest (``hospital_manifest``: false for every device enrolled before, so an
older loader keeps getting the vendor's envelope).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("devices", sa.Column("suit_device_id", sa.String(length=36), nullable=True))
    op.add_column("devices", sa.Column("hospital_manifest", sa.Boolean(), nullable=False,
                                       server_default=sa.false()))
    op.create_table(
        "rollout_manifests",
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("envelope_digest", sa.String(length=64), nullable=False),
        sa.Column("envelope_size", sa.BigInteger(), nullable=False),
        sa.Column("device_count", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.BigInteger(), nullable=True),
        sa.Column("not_after", sa.BigInteger(), nullable=True),
        sa.Column("approvals_digest", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["rollout_id"], ["rollouts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["envelope_digest"], ["blobs.digest"]),
        sa.PrimaryKeyConstraint("rollout_id"),
    )


def downgrade() -> None:
    op.drop_table("rollout_manifests")
    # Plain ALTERs (SQLite >= 3.35 drops a column in place): a batch copy would drop `devices`,
    # which the other tables' foreign keys forbid.
    for name in ("hospital_manifest", "suit_device_id"):
        op.drop_column("devices", name)
