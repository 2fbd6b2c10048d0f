"""The vendor in the loop: each rollout's grant from the vendor (its verdict, rights and
reference), the vendor's metadata and recall of mirrored releases, and the biscuits devices
download from the vendor with.

Releases from before this revision are the hospital's own (no vendor, no metadata).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_RELEASE_COLUMNS = ("vendor_recall", "vendor_metadata", "vendor_release", "vendor")


def upgrade() -> None:
    op.add_column("releases", sa.Column("vendor", sa.String(length=64), nullable=True))
    op.add_column("releases", sa.Column("vendor_release", sa.String(length=64), nullable=True))
    op.add_column("releases", sa.Column("vendor_metadata", sa.JSON(), nullable=False,
                                        server_default=sa.text("'{}'")))
    op.add_column("releases", sa.Column("vendor_recall", sa.JSON(), nullable=True))
    op.create_table(
        "rollout_grants",
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("vendor", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("rights", sa.JSON(), nullable=False),
        sa.Column("reference", sa.String(length=512), nullable=False),
        sa.Column("continue_token", sa.String(length=128), nullable=False),
        sa.Column("direct_url", sa.String(length=512), nullable=False),
        sa.Column("checked_at", sa.BigInteger(), nullable=False),
        sa.Column("checked_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["rollout_id"], ["rollouts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rollout_id"),
    )
    op.create_table(
        "device_biscuits",
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("revocation_id", sa.String(length=128), nullable=False),
        sa.Column("not_before", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["rollout_id"], ["rollouts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rollout_id", "device_id"),
    )


def downgrade() -> None:
    op.drop_table("device_biscuits")
    op.drop_table("rollout_grants")
    # Plain ALTERs (SQLite >= 3.35 drops a column in place): a batch copy would drop
    # `releases`, which the other tables' foreign keys forbid.
    for name in _RELEASE_COLUMNS:
        op.drop_column("releases", name)
