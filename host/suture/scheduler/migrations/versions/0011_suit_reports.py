"""SUIT reports: what a device did with an update, as draft-ietf-suit-report records it.

``suit_reports``: one row per verified report (services/suit_reports.py,
docs/formats/suit-report.md): the device, when, the bytes as received (a COSE_Sign1 under the
device key, or the bare report of a device without one) and their SHA-256 (unique per device:
a report sent again is stored once), the manifest it is about, whether the update succeeded,
the error code, and the decoded records (``summary``).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suit_reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("manifest_digest", sa.String(length=128), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("result_code", sa.Integer(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device_id", "digest"),
    )
    op.create_index("ix_suit_reports_device_at", "suit_reports", ["device_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_suit_reports_device_at", table_name="suit_reports")
    op.drop_table("suit_reports")
