"""hawkBit DDI: each device's kind and tenant, its target token (hash) and attributes, the
tenants' gateway tokens, and the DDI actions (a device's step in a rollout, under a small id).

Devices from before this revision are ``mcu`` devices of tenant ``DEFAULT`` with no target
token: nothing changes for them until an operator issues one.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("devices", sa.Column("kind", sa.String(length=16), nullable=False,
                                       server_default="mcu"))
    op.add_column("devices", sa.Column("tenant", sa.String(length=64), nullable=False,
                                       server_default="DEFAULT"))
    op.add_column("devices", sa.Column("ddi_token_hash", sa.String(length=64), nullable=True))
    op.add_column("devices", sa.Column("attributes", sa.JSON(), nullable=False,
                                       server_default=sa.text("'{}'")))
    op.create_table(
        "ddi_tenants",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("gateway_token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "ddi_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("finished", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"]),
        sa.ForeignKeyConstraint(["rollout_id"], ["rollouts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device_id", "rollout_id", "release_id"),
    )


def downgrade() -> None:
    op.drop_table("ddi_actions")
    op.drop_table("ddi_tenants")
    # Plain ALTERs (SQLite >= 3.35 drops a column in place): a batch copy would drop `devices`,
    # which the other tables' foreign keys forbid.
    for name in ("attributes", "ddi_token_hash", "tenant", "kind"):
        op.drop_column("devices", name)
