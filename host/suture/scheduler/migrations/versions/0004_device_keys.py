"""Device keys for signed reports and published trust-anchor rotations.

Each device may have its public key registered (``devices.public_key``, the 65-byte SEC1 point
of the key generated at provisioning): once it has, its reports must carry that key's
signature. Each device's last reported trust-store versions (``devices.trust_versions``) and
the signed trust-store updates the scheduler publishes (``trust_rotations``) let the scheduler
serve each rotation to the devices that do not hold it yet.

Devices from before this revision have no key (their reports are accepted on their MAC alone,
as before) and no known trust version.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("devices", sa.Column("public_key", sa.LargeBinary(length=65), nullable=True))
    op.add_column("devices", sa.Column("trust_versions", sa.JSON(), nullable=False,
                                       server_default=sa.text("'{}'")))
    op.create_table(
        "trust_rotations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("document_sha256", sa.String(length=64), nullable=False),
        sa.Column("keys", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("role", "version"),
    )


def downgrade() -> None:
    op.drop_table("trust_rotations")
    # Plain ALTERs (SQLite >= 3.35 drops a column in place): a batch copy would drop `devices`,
    # which the other tables' foreign keys forbid.
    for name in ("trust_versions", "public_key"):
        op.drop_column("devices", name)
