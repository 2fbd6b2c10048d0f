"""Delta payloads: patches from one installed image to a release's image.

``deltas``: a signed delta release (its own envelope, the patch as its payload) for a release,
from the image of an earlier release (``source_release_id``, ``source_digest``). The scheduler
serves it instead of the full payload to a device whose installed release is that source
(services/deltas.py, docs/formats/delta.md).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deltas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("source_release_id", sa.Integer(), nullable=False),
        sa.Column("source_digest", sa.String(length=64), nullable=False),
        sa.Column("envelope_digest", sa.String(length=64), nullable=False),
        sa.Column("envelope_size", sa.BigInteger(), nullable=False),
        sa.Column("payload_digest", sa.String(length=64), nullable=False),
        sa.Column("payload_size", sa.BigInteger(), nullable=False),
        sa.Column("imported_at", sa.BigInteger(), nullable=False),
        sa.Column("imported_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"]),
        sa.ForeignKeyConstraint(["source_release_id"], ["releases.id"]),
        sa.ForeignKeyConstraint(["envelope_digest"], ["blobs.digest"]),
        sa.ForeignKeyConstraint(["payload_digest"], ["blobs.digest"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("release_id", "source_digest"),
    )
    op.create_index("ix_deltas_release_id", "deltas", ["release_id"])


def downgrade() -> None:
    op.drop_index("ix_deltas_release_id", table_name="deltas")
    op.drop_table("deltas")
